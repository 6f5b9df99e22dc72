// The Explorer: lays out its parts (map, query panel, grid and an optional diagnostics
// widget), each rendered by its own front-end module through anywidget's host API
// (`host.getWidget`), so the same page works in JupyterLab, Notebook 7, Voila, marimo and
// VS Code. A part that is not an anywidget (an ipywidgets diagnostics widget) is shown
// with the Jupyter widget manager where there is one, else a note says where it runs.

const SLOTS = [
  ["map", "cs-slot-map"],
  ["query", "cs-slot-query"],
  ["grid", "cs-slot-grid"],
  ["diagnostics", "cs-slot-diagnostics"],
];

function div(cls) {
  const el = document.createElement("div");
  el.className = cls;
  return el;
}

function modelId(ref) {
  return typeof ref === "string" && ref.startsWith("anywidget:") ? ref.slice("anywidget:".length) : null;
}

/** Render the child widget `ref` into `slot`; returns a promise that settles when it is shown (or cannot be). */
async function renderChild({ model, host, ref, slot, signal }) {
  if (host && typeof host.getWidget === "function") {
    try {
      const child = await host.getWidget(ref);
      await child.render({ el: slot, signal });
      return;
    } catch (err) {
      if (signal.aborted) return;
      // not an anywidget (no binding): try the Jupyter widget manager below
      if (!/No binding|binding/i.test(String(err && err.message))) throw err;
    }
  }
  const manager = model.widget_manager;
  const id = modelId(ref);
  if (manager && typeof manager.create_view === "function" && id) {
    const childModel = await manager.get_model(id);
    const view = await manager.create_view(childModel);
    if (signal.aborted) { view.remove(); return; }
    slot.append(view.el);
    signal.addEventListener("abort", () => view.remove(), { once: true });
    return;
  }
  const note = div("cs-muted cs-note");
  note.textContent = "This part is an ipywidgets widget, which this client cannot show; open it in Jupyter.";
  slot.append(note);
}

async function render({ model, el, host }) {
  const controller = new AbortController();
  const signal = controller.signal;
  const root = div("cirscope cirscope-explorer");
  const tabs = div("cs-tabs");
  tabs.setAttribute("role", "tablist");
  const explore = div("cs-pane cs-pane-explore");
  const top = div("cs-explorer-top");
  const slots = Object.fromEntries(SLOTS.map(([name, cls]) => [name, div(`cs-slot ${cls}`)]));
  top.append(slots.map, slots.query);
  explore.append(top, slots.grid);
  const diagnostics = div("cs-pane cs-pane-diagnostics");
  diagnostics.append(slots.diagnostics);
  root.append(tabs, explore, diagnostics);
  el.append(root);

  const buttons = {};
  for (const [key, label] of [["explore", "Explore"], ["diagnostics", "Diagnostics"]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.tab = key;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => { model.set("tab", key); model.save_changes(); });
    buttons[key] = b;
    tabs.append(b);
  }
  function showTab() {
    const hasDiagnostics = !!model.get("diagnostics");
    const tab = hasDiagnostics ? model.get("tab") : "explore";
    tabs.style.display = hasDiagnostics ? "" : "none";
    explore.style.display = tab === "explore" ? "" : "none";
    diagnostics.style.display = tab === "diagnostics" ? "" : "none";
    root.dataset.tab = tab;
    for (const [key, b] of Object.entries(buttons)) {
      b.setAttribute("aria-selected", String(key === tab));
      b.classList.toggle("cs-active", key === tab);
    }
  }
  model.on("change:tab", showTab);
  showTab();

  const shown = SLOTS.filter(([name]) => model.get(name)).map(([name]) =>
    renderChild({ model, host, ref: model.get(name), slot: slots[name], signal }).catch((err) => {
      if (signal.aborted) return;
      const note = div("cs-error");
      note.textContent = `Could not show the ${name} part: ${err && err.message ? err.message : err}`;
      slots[name].append(note);
    }),
  );
  Promise.all(shown).then(() => { if (!signal.aborted) root.dataset.ready = "true"; });

  return () => {
    controller.abort();
    model.off("change:tab", showTab);
    root.remove();
  };
}

export default { render };
