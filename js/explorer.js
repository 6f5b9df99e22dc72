// The Explorer: lays out its parts (map, query panel, grid and an optional diagnostics
// widget), each rendered by its own front-end module through anywidget's host API
// (`host.getWidget`), so the same page works in JupyterLab, Notebook 7, Voila, marimo and
// VS Code. A part that is not an anywidget (an ipywidgets diagnostics widget) is shown
// with the Jupyter widget manager where there is one, else a note says where it runs.

const SLOTS = [
  ["map", "cs-slot-map"],
  ["query", "cs-slot-query"],
  ["grid", "cs-slot-grid"],
  ["curation", "cs-slot-curation"],
  ["diagnostics", "cs-slot-diagnostics"],
  ["compare", "cs-slot-compare"],
  ["analysis", "cs-slot-analysis"],
  ["detail", "cs-slot-detail"],
  ["filter_panel", "cs-slot-filters"],
];
// below this width (px) the filters sidebar goes above the map: beside a 210 px sidebar the
// map (3/5 of the rest, next to the query panel) would be narrower than 480 px
const NARROW = 1030;
// the tabs besides "explore": each shows when the Explorer has that part
const EXTRA_TABS = [["diagnostics", "Diagnostics"], ["compare", "Compare"]];

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

async function render({ model, el, host }) {
  const controller = new AbortController();
  const signal = controller.signal;
  const root = h("div", "cirscope cirscope-explorer");
  const tabs = h("div", "cs-tabs");
  tabs.setAttribute("role", "tablist");
  const explore = h("div", "cs-pane cs-pane-explore");
  const top = h("div", "cs-explorer-top");
  const slots = Object.fromEntries(SLOTS.map(([name, cls]) => [name, h("div", `cs-slot ${cls}`)]));
  top.append(slots.map, slots.query);
  // the analysis view (skew along the slider, paraphrases) sits under the query panel
  slots.query.style.display = "flex";
  slots.query.style.flexDirection = "column";
  slots.analysis.style.order = "1";
  slots.query.append(slots.analysis);
  explore.append(slots.filter_panel, top, slots.curation, slots.grid);
  // the detail view lies over the explore pane's right side (it positions itself; empty when closed)
  explore.append(slots.detail);
  // the metadata filters: a sidebar left of the map (above it when the Explorer is narrow)
  const withFilters = !!model.get("filter_panel");
  explore.classList.toggle("cs-with-filters", withFilters);
  slots.filter_panel.hidden = !withFilters;
  const narrow = new ResizeObserver(() => explore.classList.toggle("cs-narrow", root.clientWidth < NARROW));
  if (withFilters) narrow.observe(root);
  // a button folds the filters away (the map takes their room) and brings them back
  const fold = button("", "");
  fold.className = "cs-filters-fold";
  fold.dataset.role = "fold-filters";
  function setFolded(folded) {
    explore.classList.toggle("cs-filters-folded", folded);
    fold.textContent = folded ? "▸ Filters" : "◂ Hide filters";
    fold.title = folded ? "show the metadata filters" : "hide the metadata filters (the map takes their room)";
    fold.setAttribute("aria-expanded", String(!folded));
  }
  fold.addEventListener("click", () => setFolded(!explore.classList.contains("cs-filters-folded")));
  setFolded(false);
  if (withFilters) slots.filter_panel.append(fold);
  const diagnostics = h("div", "cs-pane cs-pane-diagnostics");
  diagnostics.append(slots.diagnostics);
  const compare = h("div", "cs-pane cs-pane-compare");
  compare.append(slots.compare);
  root.append(tabs, explore, diagnostics, compare);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  const buttons = {};
  for (const [key, label] of [["explore", "Explore"], ...EXTRA_TABS]) {
    const b = button(label);
    b.dataset.tab = key;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => { model.set("tab", key); model.save_changes(); });
    buttons[key] = b;
    tabs.append(b);
  }
  function showTab() {
    const present = EXTRA_TABS.filter(([key]) => !!model.get(key)).map(([key]) => key);
    const tab = present.includes(model.get("tab")) ? model.get("tab") : "explore";
    tabs.style.display = present.length ? "" : "none";
    explore.style.display = tab === "explore" ? "" : "none";
    diagnostics.style.display = tab === "diagnostics" ? "" : "none";
    compare.style.display = tab === "compare" ? "" : "none";
    root.dataset.tab = tab;
    for (const [key, b] of Object.entries(buttons)) {
      b.hidden = key !== "explore" && !present.includes(key);
      b.setAttribute("aria-selected", String(key === tab));
      b.classList.toggle("cs-active", key === tab);
    }
  }
  model.on("change:tab", showTab);
  showTab();

  const shown = SLOTS.filter(([name]) => model.get(name)).map(([name]) =>
    renderChild({ model, host, ref: model.get(name), slot: slots[name], signal }).catch((err) => {
      if (signal.aborted) return;
      slots[name].append(h("div", "cs-error", `Could not show the ${name} part: ${err && err.message ? err.message : err}`));
    }),
  );
  Promise.all(shown).then(() => { if (!signal.aborted) root.dataset.ready = "true"; });

  return () => {
    unwatchKernel();
    narrow.disconnect();
    controller.abort();
    model.off("change:tab", showTab);
    root.remove();
  };
}

export default { render };
