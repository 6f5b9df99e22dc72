// cirscope FilterPanel: one small chart per metadata column (bars of the top values and "other",
// or a binned histogram), the active filters as chips with a ×, and "Clear all". A click on a bar
// (or a drag across histogram bins) is sent to Python, which keeps the filters and answers with
// the counts (one list of integers per chart: no rows travel). Each chart draws its counts within
// the other columns' filters over a faint bar of the whole gallery's count. Every label (values,
// column names) is set with textContent, never parsed as HTML.
// The pure helpers (no DOM) are exported by name for tests in node.

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

// ---------------------------------------------------------------------- pure helpers

/** Bar lengths in percent of the chart's largest whole-gallery count (so the faint bar is the total). */
function barPercents(counts, totals) {
  const max = Math.max(1, ...totals);
  return counts.map((c) => (100 * Math.max(0, c)) / max);
}

/** The histogram bin under x (px from the histogram's left edge, `width` px wide, `bins` bins). */
function binAt(x, width, bins) {
  if (bins <= 0 || width <= 0) return -1;
  return Math.min(bins - 1, Math.max(0, Math.floor((x / width) * bins)));
}

/** A number as the axis shows it (4 significant digits). */
function axisText(v) {
  return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : "";
}

/** What a drag over histogram bins from `first` to `last` sends ("toggle" for one bin: a click). */
function dragMessage(column, first, last) {
  if (first === last) return { event: "toggle", column, key: String(first) };
  return { event: "bins", column, first: Math.min(first, last), last: Math.max(first, last) };
}

// ---------------------------------------------------------------------- the charts

function barButton(spec, bar, send) {
  const b = button("");
  b.className = "cs-bar";
  b.dataset.key = bar.key;
  b.title = bar.label;
  const back = h("span", "cs-bar-back");
  const fill = h("span", "cs-bar-fill");
  const label = h("span", "cs-bar-label", bar.label);
  const count = h("span", "cs-bar-count");
  b.append(back, fill, label, count);
  b.addEventListener("click", () => send({ event: "toggle", column: spec.column, key: bar.key }));
  return { key: bar.key, el: b, back, fill, count };
}

function categoryChart(spec, body, send) {
  const list = h("div", "cs-bars");
  const bars = spec.bars.map((bar) => barButton(spec, bar, send));
  list.append(...bars.map((b) => b.el));
  body.append(list);
  return bars;
}

function histogramChart(spec, body, send) {
  const hist = h("div", "cs-hist");
  hist.setAttribute("role", "group");
  hist.setAttribute("aria-label", `${spec.column}: click a bin or drag across bins`);
  const bins = spec.bars.filter((bar) => bar.key !== "missing");
  const bars = bins.map((bar) => {
    const b = button("");
    b.className = "cs-bin";
    b.dataset.key = bar.key;
    const back = h("span", "cs-bar-back");
    const fill = h("span", "cs-bar-fill");
    b.append(back, fill);
    // keyboard: Enter / Space on a focused bin (a pointer click is handled by the drag below)
    b.addEventListener("click", (ev) => { if (ev.detail === 0) send({ event: "toggle", column: spec.column, key: bar.key }); });
    return { key: bar.key, el: b, back, fill, count: null, label: bar.label };
  });
  hist.append(...bars.map((b) => b.el));
  let drag = null;
  const binOf = (ev) => binAt(ev.clientX - hist.getBoundingClientRect().left, hist.clientWidth, bins.length);
  const mark = () => bars.forEach((b, i) => b.el.classList.toggle("cs-dragging",
    !!drag && i >= Math.min(drag.first, drag.last) && i <= Math.max(drag.first, drag.last)));
  hist.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    drag = { first: binOf(ev), last: binOf(ev) };
    hist.setPointerCapture(ev.pointerId);
    mark();
  });
  hist.addEventListener("pointermove", (ev) => { if (drag) { drag.last = binOf(ev); mark(); } });
  hist.addEventListener("pointerup", (ev) => {
    if (!drag) return;
    drag.last = binOf(ev);
    const msg = dragMessage(spec.column, drag.first, drag.last);
    drag = null;
    mark();
    send(msg);
  });
  hist.addEventListener("pointercancel", () => { drag = null; mark(); });
  const axis = h("div", "cs-axis");
  const [lo, hi] = spec.range || [NaN, NaN];
  axis.append(h("span", null, axisText(lo)), h("span", null, axisText(hi)));
  body.append(hist, axis);
  const missing = spec.bars.find((bar) => bar.key === "missing");
  if (missing) {
    const m = barButton(spec, missing, send);
    m.el.classList.add("cs-missing");
    body.append(m.el);
    bars.push(m);
  }
  return bars;
}

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-filters");
  const head = h("div", "cs-filters-head");
  const summary = h("span", "cs-muted cs-filters-summary");
  const clear = button("Clear all", "remove every filter");
  clear.dataset.role = "clear";
  head.append(h("span", "cs-label", "Filters"), summary, clear);
  const chips = h("div", "cs-chips");
  chips.setAttribute("aria-label", "active filters");
  const error = h("div", "cs-error");
  const charts = h("div", "cs-charts");
  root.append(head, chips, error, charts);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);
  const send = (msg) => model.send(msg);
  clear.addEventListener("click", () => send({ event: "clear" }));

  let built = []; // [{spec, section, bars: [{key, el, back, fill, count}]}]
  function build() {
    charts.replaceChildren();
    const specs = model.get("charts") || [];
    if (!specs.length) charts.append(h("div", "cs-muted", "No metadata columns to filter by."));
    built = specs.map((spec) => {
      const section = h("section", "cs-chart-col");
      section.dataset.column = spec.column;
      section.dataset.kind = spec.kind;
      const body = h("div", "cs-chart-body");
      section.append(h("div", "cs-chart-title", spec.column), body);
      charts.append(section);
      const bars = spec.kind === "histogram" ? histogramChart(spec, body, send) : categoryChart(spec, body, send);
      return { spec, section, bars };
    });
  }
  function update() {
    const counts = model.get("counts") || {};
    const active = model.get("active") || {};
    for (const { spec, section, bars } of built) {
      const total = spec.total || [];
      const now = counts[spec.column] || total;
      const on = new Set((active[spec.column] || {}).on || []);
      const partial = new Set((active[spec.column] || {}).partial || []);
      const backs = barPercents(total, total), fills = barPercents(now, total);
      const vertical = spec.kind === "histogram";
      bars.forEach((bar, j) => {
        const horizontal = !vertical || bar.key === "missing";
        bar.back.style[horizontal ? "width" : "height"] = `${backs[j]}%`;
        bar.fill.style[horizontal ? "width" : "height"] = `${fills[j]}%`;
        if (bar.count) bar.count.textContent = (now[j] || 0).toLocaleString();
        else bar.el.title = `${bar.label}: ${(now[j] || 0).toLocaleString()} of ${(total[j] || 0).toLocaleString()}`;
        bar.el.setAttribute("aria-label", `${spec.column} ${bar.label || bar.el.title}: ${(now[j] || 0).toLocaleString()}`);
        bar.el.classList.toggle("cs-on", on.has(bar.key));
        bar.el.classList.toggle("cs-partial", partial.has(bar.key));
        bar.el.setAttribute("aria-pressed", String(on.has(bar.key)));
      });
      section.dataset.counts = now.join(",");
      section.classList.toggle("cs-filtered", on.size + partial.size > 0);
    }
    chips.replaceChildren(...(model.get("chips") || []).map((chip) => {
      const c = h("span", "cs-chip");
      c.dataset.column = chip.column;
      const x = button("×", `remove the filter on ${chip.column}`);
      x.setAttribute("aria-label", `remove the filter on ${chip.column}`);
      x.addEventListener("click", () => send({ event: "remove", column: chip.column }));
      const words = h("span", "cs-chip-text");
      words.append(h("b", null, chip.column), document.createTextNode(`: ${chip.text}`));
      c.append(words, x);
      return c;
    }));
    const n = model.get("n_matching"), total = model.get("n_total");
    summary.textContent = `${n.toLocaleString()} of ${total.toLocaleString()}`;
    clear.disabled = !(model.get("chips") || []).length;
    root.dataset.matching = String(n);
    root.dataset.version = String(model.get("version"));
  }
  // a kernel update changes several traits at once: draw once for all of them
  let pending = false;
  function scheduleUpdate() {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; update(); });
  }
  function showError() { error.textContent = model.get("error") || ""; }
  function sizeCharts() {
    const mh = model.get("max_height");
    charts.style.maxHeight = mh > 0 ? `${mh}px` : "";
    charts.style.overflowY = mh > 0 ? "auto" : "";
  }
  const unlisten = listen(model, {
    "change:charts": () => { build(); update(); },
    "change:counts change:active change:chips change:n_matching change:n_total change:version": scheduleUpdate,
    "change:error": showError,
    "change:max_height": sizeCharts,
  });
  build();
  update();
  showError();
  sizeCharts();
  root.dataset.ready = "true";

  return () => {
    unwatchKernel();
    unlisten();
    root.remove();
  };
}

export default { render };
// the helpers, for tests in node (anywidget uses the default export only)
export { axisText, barPercents, binAt, dragMessage };
