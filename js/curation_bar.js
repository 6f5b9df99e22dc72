// cirscope CurationBar: tag the selection or the results, filter searches by column == value,
// export (CSV, Parquet, a folder of links, FiftyOne) and save / restore views. Actions are sent
// to Python as messages; Python answers in `message` / `error`. Every text (tag names, columns,
// paths) is set with textContent or as an input's value, never parsed as HTML.

// shared:dom begin: copied from js/_shared/dom.js by `python -m cirscope.widgets._sync_js`; edit it there
/** An element with an optional class name and text (set as textContent, never parsed as HTML). */
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A <button type="button"> with a label and an optional tooltip. */
function button(label, title) {
  const b = h("button", null, label);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

/**
 * Subscribe `handlers` ({"change:a change:b": callback, ...}) to the model's events; returns
 * the function that unsubscribes them all (for render's cleanup).
 */
function listen(model, handlers) {
  const each = (fn) => Object.entries(handlers).forEach(([evs, cb]) => evs.split(" ").forEach((ev) => fn(ev, cb)));
  each((ev, cb) => model.on(ev, cb));
  return () => each((ev, cb) => model.off(ev, cb));
}

/**
 * The left edge (px) of a card `width` wide beside an item: at `right` when it fits inside a
 * stage `W` wide, else ending at `left` (never past the stage's left edge).
 */
function cardLeft(left, right, width, W) {
  return right + width > W ? Math.max(0, left - width) : right;
}
// shared:dom end

// shared:kernel begin: copied from js/_shared/kernel.js by `python -m cirscope.widgets._sync_js`; edit it there
/** What a view says when no Python kernel answers it (a page saved with its widget state). */
const SNAPSHOT_NOTE = "Snapshot: no Python kernel answers, so this is the view as saved with the page; " +
  "clicks and typing do nothing. To make it live, open the notebook in JupyterLab, Notebook 7, VS Code, " +
  "Voila or marimo and run it.";

/**
 * Ask the kernel for a "pong" and show the snapshot note at the top of `root` if none comes
 * within `ms` (it goes again when one comes later: a busy kernel answers late). Views drawn
 * inside an Explorer leave the note to it. Returns the cleanup function.
 */
function watchKernel(model, root, el, ms = 5000) {
  if (el.parentElement && el.parentElement.closest(".cirscope-explorer")) return () => {};
  const note = document.createElement("div");
  note.className = "cs-live-note";
  note.setAttribute("role", "status");
  note.textContent = SNAPSHOT_NOTE;
  note.hidden = true;
  root.prepend(note);
  let answered = false;
  const onMessage = (msg) => {
    if (!msg || msg.event !== "pong") return;
    answered = true;
    note.hidden = true;
    root.dataset.kernel = "live";
  };
  model.on("msg:custom", onMessage);
  const timer = setTimeout(() => {
    if (answered) return;
    note.hidden = false;
    root.dataset.kernel = "none";
  }, ms);
  try {
    model.send({ event: "ping" });
  } catch (err) {
    // no comm to send on (a saved page): the timer shows the note
  }
  return () => {
    clearTimeout(timer);
    model.off("msg:custom", onMessage);
    note.remove();
  };
}
// shared:kernel end

function labelled(text, input, role) {
  input.dataset.role = role;
  input.setAttribute("aria-label", text);
  return input;
}

function textInput(placeholder, role, label) {
  const input = h("input");
  input.type = "text";
  input.placeholder = placeholder;
  return labelled(label, input, role);
}

function fillSelect(select, options) {
  const keep = select.value;
  select.replaceChildren();
  for (const [value, label] of options) {
    const o = h("option", null, label);
    o.value = value;
    select.append(o);
  }
  if (options.some(([value]) => value === keep)) select.value = keep;
}

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-curation");
  // tags
  const tagRow = h("div", "cs-row");
  const tagName = textInput("tag name, e.g. duplicate", "tag-name", "tag name");
  const tagSel = button("Tag selection", "tag the images selected on the map");
  tagSel.dataset.role = "tag-selection";
  const tagRes = button("Tag results", "tag the current results");
  tagRes.dataset.role = "tag-results";
  const chips = h("span", "cs-chips");
  chips.dataset.role = "tags";
  tagRow.append(h("span", "cs-label", "Tags"), tagName, tagSel, tagRes, chips);
  // filter
  const filterRow = h("div", "cs-row");
  const filterColumn = labelled("filter column", h("select"), "filter-column");
  const filterValue = textInput("value", "filter-value", "filter value");
  const filterApply = button("Filter", "searches rank only the images where column == value");
  filterApply.dataset.role = "filter-apply";
  const filterClear = button("Clear", "no filter");
  filterClear.dataset.role = "filter-clear";
  filterRow.append(h("span", "cs-label", "Filter"), filterColumn, h("span", "cs-muted", "=="), filterValue,
    filterApply, filterClear);
  // export
  const exportRow = h("div", "cs-row");
  const scope = labelled("rows to export", h("select"), "export-scope");
  const format = labelled("export format", h("select"), "export-format");
  const exportPath = textInput("path, e.g. picked.csv", "export-path", "export path");
  const exportButton = button("Export");
  exportButton.dataset.role = "export";
  exportRow.append(h("span", "cs-label", "Export"), scope, format, exportPath, exportButton);
  // views
  const viewRow = h("div", "cs-row");
  const viewPath = textInput("view file, e.g. audit-view.json", "view-path", "view file");
  const save = button("Save view", "save the query, sliders, colours, filter, selection and tags");
  save.dataset.role = "save-view";
  const restore = button("Restore view");
  restore.dataset.role = "restore-view";
  viewRow.append(h("span", "cs-label", "View"), viewPath, save, restore);
  const message = h("div", "cs-muted cs-message");
  message.dataset.role = "message";
  message.setAttribute("aria-live", "polite");
  const error = h("div", "cs-error");
  error.dataset.role = "error";
  root.append(tagRow, filterRow, exportRow, viewRow, message, error);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  function renderTags() {
    chips.replaceChildren();
    for (const tag of model.get("tags") || []) {
      const chip = h("span", "cs-chip", `${tag.name} (${tag.count})`);
      chip.dataset.tag = tag.name;
      chip.title = "click: use this name";
      chip.addEventListener("click", () => { tagName.value = tag.name; });
      chips.append(chip);
    }
    const scopes = [["selection", `selection (${model.get("n_selected")})`], ["results", `results (${model.get("n_results")})`]];
    for (const tag of model.get("tags") || []) scopes.push([`tag:${tag.name}`, `tag: ${tag.name} (${tag.count})`]);
    fillSelect(scope, scopes);
    tagSel.disabled = !model.get("n_selected");
    tagRes.disabled = !model.get("n_results");
  }
  function renderColumns() {
    fillSelect(filterColumn, [["", "(column)"], ...(model.get("columns") || []).map((c) => [c, c])]);
    filterColumn.value = model.get("filter_column");
    if (document.activeElement !== filterValue) filterValue.value = model.get("filter_value");
    root.dataset.filter = model.get("filter_column") ? "on" : "off";
  }
  function renderFormats() {
    fillSelect(format, (model.get("formats") || []).map((f) => [f, f]));
  }
  function renderMessage() {
    message.textContent = model.get("message");
    error.textContent = model.get("error");
  }
  const act = (event, extra) => model.send({ event, ...extra });
  tagSel.addEventListener("click", () => act("tag", { scope: "selection", name: tagName.value }));
  tagRes.addEventListener("click", () => act("tag", { scope: "results", name: tagName.value }));
  tagName.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); act("tag", { scope: "selection", name: tagName.value }); }
  });
  const applyFilter = (column, value) => {
    model.set("filter_column", column);
    model.set("filter_value", value);
    model.save_changes();
  };
  filterApply.addEventListener("click", () => applyFilter(filterColumn.value, filterValue.value));
  filterValue.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); applyFilter(filterColumn.value, filterValue.value); }
  });
  filterClear.addEventListener("click", () => applyFilter("", ""));
  exportButton.addEventListener("click", () => act("export", { scope: scope.value, format: format.value, path: exportPath.value }));
  save.addEventListener("click", () => act("save_view", { path: viewPath.value }));
  restore.addEventListener("click", () => act("restore_view", { path: viewPath.value }));

  const unlisten = listen(model, {
    "change:tags change:n_selected change:n_results": renderTags,
    "change:columns change:filter_column change:filter_value": renderColumns,
    "change:formats": renderFormats,
    "change:message change:error": renderMessage,
  });
  renderTags();
  renderColumns();
  renderFormats();
  renderMessage();
  root.dataset.ready = "true";
  return () => {
    unwatchKernel();
    unlisten();
    root.remove();
  };
}

export default { render };
