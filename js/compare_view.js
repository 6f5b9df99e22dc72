// cirscope CompareView: two maps of one gallery side by side (each drawn by map_view.js through
// anywidget's host API), linked in Python (a selection in one selects the same images in the
// other), a table of the images whose neighbourhoods changed most (click: pick that image, it
// is outlined on both maps with its neighbours in each space) and the diagnostics side by side.
// Every string from Python (ids, names) is set as textContent, never parsed as HTML.

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

// shared:children begin: copied from js/_shared/children.js by `python -m cirscope.widgets._sync_js`; edit it there
/**
 * Render the child widget `ref` ("anywidget:<model id>") into `slot` until `signal` aborts.
 * An anywidget is drawn by its own module through anywidget's host API (every client:
 * JupyterLab, Notebook 7, Voila, VS Code, marimo); another Jupyter widget through the
 * Jupyter widget manager where there is one; elsewhere a note says where it shows.
 */
async function renderChild({ model, host, ref, slot, signal }) {
  if (host && typeof host.getWidget === "function") {
    try {
      const child = await host.getWidget(ref);
      await child.render({ el: slot, signal });
      return;
    } catch (err) {
      if (signal.aborted) return;
      if (!/binding/i.test(String(err && err.message))) throw err; // not an anywidget: try the manager
    }
  }
  const manager = model.widget_manager;
  const id = typeof ref === "string" && ref.startsWith("anywidget:") ? ref.slice("anywidget:".length) : null;
  if (manager && typeof manager.create_view === "function" && id) {
    const view = await manager.create_view(await manager.get_model(id));
    if (signal.aborted) { view.remove(); return; }
    slot.append(view.el);
    signal.addEventListener("abort", () => view.remove(), { once: true });
    return;
  }
  const note = document.createElement("div");
  note.className = "cs-muted cs-note";
  note.textContent = "This part is an ipywidgets widget, which this client cannot show; open it in Jupyter.";
  slot.append(note);
}
// shared:children end

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

/** A <table> with a header row `head` and one row per item of `rows` (arrays of cell texts). */
function textTable(head, rows) {
  const table = h("table", "cs-compare-table");
  table.style.borderCollapse = "collapse";
  table.style.fontSize = "12px";
  const tr = h("tr");
  for (const name of head) {
    const th = h("th", null, name);
    th.style.textAlign = "left";
    th.style.padding = "2px 8px";
    tr.append(th);
  }
  table.append(tr);
  for (const cells of rows) {
    const row = h("tr");
    for (const text of cells) {
      const td = h("td", null, String(text));
      td.style.padding = "2px 8px";
      row.append(td);
    }
    table.append(row);
  }
  return table;
}

async function render({ model, el, host }) {
  const controller = new AbortController();
  const signal = controller.signal;
  const root = h("div", "cirscope cirscope-compare");
  const header = h("div", "cs-compare-summary cs-muted");
  const maps = h("div", "cs-compare-maps");
  maps.style.display = "flex";
  maps.style.gap = "8px";
  const slots = {};
  const labels = {};
  for (const name of ["map_a", "map_b"]) {
    const col = h("div", `cs-slot cs-slot-${name}`);
    col.style.flex = "1 1 0%";
    col.style.minWidth = "280px";
    labels[name] = h("div", "cs-label");
    slots[name] = h("div");
    col.append(labels[name], slots[name]);
    maps.append(col);
  }
  const tables = h("div", "cs-compare-tables");
  tables.style.display = "flex";
  tables.style.gap = "16px";
  tables.style.marginTop = "8px";
  tables.style.alignItems = "flex-start";
  const changedBox = h("div", "cs-compare-changed");
  changedBox.style.maxHeight = "260px";
  changedBox.style.overflowY = "auto";
  const diagBox = h("div", "cs-compare-diagnostics");
  tables.append(changedBox, diagBox);
  root.append(header, maps, tables);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  function renderNames() {
    const [a, b] = model.get("names") || ["A", "B"];
    labels.map_a.textContent = a;
    labels.map_b.textContent = b;
  }
  function renderSummary() {
    const s = model.get("summary") || {};
    header.textContent = Object.entries(s).map(([key, value]) => `${key}: ${value}`).join(" · ");
  }
  function renderChanged() {
    const items = model.get("changed") || [];
    const focus = model.get("focus");
    changedBox.replaceChildren(h("div", "cs-label", "Neighbourhoods changed most"));
    const table = textTable(["row", "id", "shared", "overlap"], items.map((c) => [c.row, c.id, c.shared, c.overlap]));
    table.querySelectorAll("tr").forEach((tr, j) => {
      if (j === 0) return;
      const item = items[j - 1];
      tr.dataset.row = String(item.row);
      tr.style.cursor = "pointer";
      tr.tabIndex = 0;
      if (item.row === focus) { tr.classList.add("cs-active"); tr.style.background = "var(--cs-focus-bg,#ffe0b2)"; }
      const pick = () => { model.set("focus", item.row); model.save_changes(); };
      tr.addEventListener("click", pick);
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") pick(); });
    });
    changedBox.append(table);
    root.dataset.focus = String(focus);
  }
  function renderDiagnostics() {
    const [a, b] = model.get("names") || ["A", "B"];
    const rows = (model.get("diagnostics") || []).map((d) => [d.quantity, d.a, d.b]);
    diagBox.replaceChildren(h("div", "cs-label", "Diagnostics side by side"), textTable(["", a, b], rows));
  }
  const unlisten = listen(model, {
    "change:names": () => { renderNames(); renderDiagnostics(); },
    "change:summary": renderSummary,
    "change:changed change:focus": renderChanged,
    "change:diagnostics": renderDiagnostics,
  });
  renderNames();
  renderSummary();
  renderChanged();
  renderDiagnostics();

  const shown = ["map_a", "map_b"].filter((name) => model.get(name)).map((name) =>
    renderChild({ model, host, ref: model.get(name), slot: slots[name], signal }).catch((err) => {
      if (signal.aborted) return;
      slots[name].append(h("div", "cs-error", `Could not show the map: ${err && err.message ? err.message : err}`));
    }),
  );
  Promise.all(shown).then(() => { if (!signal.aborted) root.dataset.ready = "true"; });

  return () => {
    unwatchKernel();
    unlisten();
    controller.abort();
    root.remove();
  };
}

export default { render };
