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
