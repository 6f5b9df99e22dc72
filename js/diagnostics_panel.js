// cirscope DiagnosticsPanel: a diagnostic and attribute menu, the skew queries, a status line,
// the chart (plotly's own FigureWidget, drawn through anywidget's host API) and a caption.
// Python runs the diagnostic and sends plain data; every text is set with textContent.

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

function render({ model, el, host }) {
  const root = h("div", "cirscope cirscope-diagnostics");
  const bar = h("div", "cs-toolbar");
  const menuLabel = h("label", null, "Diagnostic ");
  const menu = h("select");
  menu.dataset.role = "diagnostic";
  menuLabel.append(menu);
  const attrLabel = h("label", null, "Attribute ");
  const attr = h("select");
  attr.dataset.role = "attribute";
  attrLabel.append(attr);
  bar.append(menuLabel, attrLabel);
  const queriesRow = h("label", "cs-queries", "Queries ");
  const queries = h("input");
  queries.type = "text";
  queries.dataset.role = "queries";
  queries.placeholder = "default: a prompt per word of the other columns; separate with ;";
  queriesRow.append(queries);
  const status = h("div", "cs-status");
  const chart = h("div", "cs-chart");
  const caption = h("div", "cs-caption cs-muted");
  root.append(bar, queriesRow, status, chart, caption);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  function spec() {
    return (model.get("menu") || []).find((m) => m.name === model.get("diagnostic")) || {};
  }
  function renderControls() {
    menu.replaceChildren(...(model.get("menu") || []).map((m) => {
      const o = h("option", null, m.title);
      o.value = m.name;
      return o;
    }));
    menu.value = model.get("diagnostic");
    attr.replaceChildren(...(model.get("attributes") || []).map((a) => {
      const o = h("option", null, a);
      o.value = a;
      return o;
    }));
    attr.value = model.get("attribute");
    attr.disabled = !spec().needs_attribute;
    queriesRow.style.display = spec().uses_queries ? "" : "none";
    if (document.activeElement !== queries) queries.value = (model.get("queries") || []).join("; ");
  }
  function renderStatus() {
    const s = model.get("status") || {};
    status.replaceChildren();
    if (s.error) {
      status.append(h("span", "cs-error", s.error));
    } else if (s.computing) {
      status.append(h("i", null, `Computing ${s.computing}…`));
    } else if (s.title) {
      status.append(h("b", null, s.title), document.createTextNode(`: ${s.numbers || ""}`));
      for (const note of s.notes || []) status.append(h("br"), h("i", null, note));
      if (s.sentence) status.append(h("div", "cs-sentence", s.sentence));
      if ((s.readings || []).length) {
        const box = h("details", "cs-readings");
        box.append(h("summary", null, "Reading the numbers"));
        const list = h("ul");
        for (const line of s.readings) list.append(h("li", null, line));
        box.append(list);
        status.append(box);
      }
    }
    root.dataset.diagnostic = model.get("diagnostic");
  }
  function renderCaption() { caption.textContent = model.get("caption"); }

  let chartControl = null;
  function renderChart() {
    if (chartControl) chartControl.abort();
    chartControl = new AbortController();
    const signal = chartControl.signal;
    chart.replaceChildren();
    const ref = model.get("figure");
    if (!ref) return;
    renderChild({ model, host, ref, slot: chart, signal }).catch((err) => {
      if (!signal.aborted) chart.append(h("div", "cs-error", `Could not show the chart: ${err && err.message ? err.message : err}`));
    });
  }

  menu.addEventListener("change", () => { model.set("diagnostic", menu.value); model.save_changes(); });
  attr.addEventListener("change", () => { model.set("attribute", attr.value); model.save_changes(); });
  queries.addEventListener("change", () => {
    model.set("queries", queries.value.split(";").map((q) => q.trim()).filter((q) => q));
    model.save_changes();
  });

  const unlisten = listen(model, {
    "change:menu change:attributes change:diagnostic change:attribute change:queries": renderControls,
    "change:status change:diagnostic": renderStatus,
    "change:caption": renderCaption,
    "change:figure": renderChart,
  });
  renderControls();
  renderStatus();
  renderCaption();
  renderChart();
  return () => {
    unwatchKernel();
    unlisten();
    if (chartControl) chartControl.abort();
    root.remove();
  };
}

export default { render };
