// cirscope AnalysisView: bias along the slider (an SVG chart of MaxSkew@K and NDKL against
// PDV's alpha, the current alpha marked) and a paraphrase table. The curve arrives once per
// query; a slider move changes `current_alpha` and only the marker moves. Every text from
// Python (labels, wordings, statuses) is set with textContent, never parsed as HTML.

// shared:codec begin: copied from js/_shared/codec.js by `python -m cirscope.widgets._sync_js`; edit it there
const ARRAY_TYPES = {
  float32: Float32Array, int32: Int32Array, uint32: Uint32Array, int16: Int16Array,
  uint16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
};

/** Decode a {dtype, shape, data} message into {data: TypedArray, shape}; null stays null. */
function decodeArray(msg) {
  if (!msg || !msg.data) return null;
  const Type = ARRAY_TYPES[msg.dtype];
  if (!Type) throw new Error(`cirscope: unsupported array dtype ${msg.dtype}`);
  const view = msg.data;
  const copy = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
  return { data: new Type(copy), shape: msg.shape };
}

/** Encode a typed array as a {dtype, shape, data} message. */
function encodeArray(typed, shape) {
  const dtype = Object.keys(ARRAY_TYPES).find((k) => typed instanceof ARRAY_TYPES[k]);
  return { dtype, shape: shape || [typed.length], data: new DataView(typed.buffer, typed.byteOffset, typed.byteLength) };
}
// shared:codec end

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

const SVG = "http://www.w3.org/2000/svg";
const W = 360, H = 190, PAD = { l: 38, r: 10, t: 10, b: 30 };
const COLORS = { skew: "#d73027", ndkl: "#4575b4", marker: "currentColor" }; // currentColor: the theme's text colour

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-analysis");
  root.style.cssText = "font-size:12px;margin-top:6px;border-top:1px solid var(--cs-border, #ddd);padding-top:4px";
  const tabs = h("div", "cs-toolbar");
  tabs.setAttribute("role", "tablist");
  const panes = {};
  const tabButtons = {};
  for (const [key, label] of [["bias", "Bias along the slider"], ["paraphrase", "Paraphrases"]]) {
    const b = button(label);
    b.dataset.tab = key;
    b.setAttribute("role", "tab");
    b.addEventListener("click", () => { model.set("tab", key); model.save_changes(); });
    tabButtons[key] = b;
    tabs.append(b);
    panes[key] = h("div", `cs-pane cs-pane-${key}`);
  }
  root.append(tabs, panes.bias, panes.paraphrase);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  // ------------------------------------------------------------------ bias tab
  const controls = h("div", "cs-toolbar");
  const attrSelect = h("select");
  attrSelect.setAttribute("aria-label", "attribute whose skew is charted");
  const legend = h("span", "cs-muted");
  const skewKey = h("span", null, "\u25A0 MaxSkew@K");
  skewKey.style.color = COLORS.skew;
  const ndklKey = h("span", null, " \u25A0 NDKL@K");
  ndklKey.style.color = COLORS.ndkl;
  legend.append(skewKey, ndklKey);
  controls.append(h("span", "cs-label", "Attribute"), attrSelect, legend);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  chart.classList.add("cs-bias-chart");
  const status = h("div", "cs-muted cs-bias-status");
  status.setAttribute("role", "status");
  panes.bias.append(controls, chart, status);
  attrSelect.addEventListener("change", () => { model.set("attribute", attrSelect.value); model.save_changes(); });

  let scale = null; // x(alpha) -> px for the marker
  const marker = svg("line", { stroke: COLORS.marker, "stroke-width": 2, "stroke-dasharray": "4 2" });
  marker.classList.add("cs-marker");
  const markerText = svg("text", { "font-size": 10, fill: COLORS.marker });

  function renderControls() {
    const choices = model.get("attributes") || [];
    attrSelect.replaceChildren(...choices.map((c) => { const o = h("option", null, c); o.value = c; return o; }));
    attrSelect.value = model.get("attribute");
    status.textContent = model.get("status");
  }

  function drawCurve() {
    const a = decodeArray(model.get("alphas"));
    const s = decodeArray(model.get("max_skew"));
    const n = decodeArray(model.get("ndkl"));
    chart.replaceChildren();
    scale = null;
    if (!a || a.data.length < 2) {
      chart.dataset.points = "0";
      return;
    }
    const xs = a.data, ys = [...s.data, ...n.data, 0];
    const x0 = xs[0], x1 = xs[xs.length - 1];
    const y0 = Math.min(...ys), y1 = Math.max(...ys) || 1;
    const X = (x) => PAD.l + ((x - x0) / (x1 - x0 || 1)) * (W - PAD.l - PAD.r);
    const Y = (y) => H - PAD.b - ((y - y0) / (y1 - y0 || 1)) * (H - PAD.t - PAD.b);
    scale = X;
    const axis = svg("g", { stroke: "#999", "stroke-width": 1 });
    axis.append(svg("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }),
                svg("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }));
    if (y0 < 0) axis.append(svg("line", { x1: PAD.l, y1: Y(0), x2: W - PAD.r, y2: Y(0), "stroke-dasharray": "2 2" }));
    chart.append(axis);
    const ticks = svg("g", { "font-size": 10, style: "fill:var(--cs-fg2,#555)" });
    for (const t of [-0.5, 0, 0.5, 1, 1.5, 2]) {
      if (t < x0 || t > x1) continue;
      const label = svg("text", { x: X(t), y: H - PAD.b + 12, "text-anchor": "middle" });
      label.textContent = String(t);
      ticks.append(label);
    }
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      const label = svg("text", { x: PAD.l - 4, y: Y(v) + 3, "text-anchor": "end" });
      label.textContent = v.toFixed(2);
      ticks.append(label);
    }
    const title = svg("text", { x: (W + PAD.l) / 2, y: H - 4, "text-anchor": "middle" });
    title.textContent = "alpha (PDV scale)";
    ticks.append(title);
    chart.append(ticks);
    const labels = model.get("max_labels") || [];
    for (const [data, color, name] of [[s.data, COLORS.skew, "MaxSkew"], [n.data, COLORS.ndkl, "NDKL"]]) {
      const pts = Array.from(xs, (x, i) => `${X(x).toFixed(1)},${Y(data[i]).toFixed(1)}`).join(" ");
      chart.append(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2 }));
      xs.forEach((x, i) => {
        const dot = svg("circle", { cx: X(x), cy: Y(data[i]), r: 2.5, fill: color });
        const tip = svg("title");
        tip.textContent = `alpha ${x.toFixed(2)}: ${name} ${data[i].toFixed(3)}` +
          (name === "MaxSkew" && labels[i] ? ` (${labels[i]} over-represented)` : "");
        dot.append(tip);
        chart.append(dot);
      });
    }
    chart.append(marker, markerText);
    chart.dataset.points = String(xs.length);
    chart.dataset.version = String(model.get("curve_version"));
    moveMarker();
  }

  function moveMarker() {
    const alpha = model.get("current_alpha");
    chart.dataset.alpha = String(alpha);
    if (!scale) return;
    const x = scale(alpha);
    for (const [k, v] of Object.entries({ x1: x, x2: x, y1: PAD.t, y2: H - PAD.b })) marker.setAttribute(k, String(v));
    markerText.setAttribute("x", String(x + 3));
    markerText.setAttribute("y", String(PAD.t + 9));
    markerText.textContent = `alpha ${alpha.toFixed(2)}`;
    marker.dataset.x = x.toFixed(1);
  }

  // ------------------------------------------------------------------ paraphrase tab
  const pControls = h("div", "cs-toolbar");
  const nInput = h("input");
  nInput.type = "number";
  nInput.min = "2";
  nInput.max = "40";
  nInput.setAttribute("aria-label", "how many wordings to generate");
  nInput.style.width = "4em";
  const compute = button("Compute", "Rank the gallery for every wording with every method");
  compute.className = "cs-compute";
  const progress = h("progress");
  progress.style.width = "80px";
  pControls.append(h("span", "cs-label", "Wordings"), nInput, compute, progress);
  const typed = h("textarea");
  typed.rows = 2;
  typed.placeholder = "your own rewordings, one per line (empty: drawn from the phrasing templates)";
  typed.style.cssText = "width:100%;box-sizing:border-box;font-size:12px";
  const pStatus = h("div", "cs-muted cs-paraphrase-status");
  pStatus.setAttribute("role", "status");
  const table = h("table", "cs-paraphrase-table");
  table.style.cssText = "border-collapse:collapse;margin-top:4px;font-variant-numeric:tabular-nums";
  const texts = h("details");
  const textsList = h("ol");
  texts.append(h("summary", null, "wordings"), textsList);
  panes.paraphrase.append(pControls, typed, pStatus, table, texts);
  nInput.addEventListener("change", () => {
    const v = Math.max(2, Math.min(40, Number(nInput.value) || 8));
    model.set("paraphrase_n", v);
    model.save_changes();
  });
  typed.addEventListener("change", () => { model.set("paraphrase_input", typed.value); model.save_changes(); });
  compute.addEventListener("click", () => {
    model.set("paraphrase_input", typed.value);
    model.set("paraphrase_request", model.get("paraphrase_request") + 1);
    model.save_changes();
  });

  function renderParaphrases() {
    nInput.value = String(model.get("paraphrase_n"));
    if (document.activeElement !== typed) typed.value = model.get("paraphrase_input");
    pStatus.textContent = model.get("paraphrase_status");
    const total = model.get("paraphrase_total");
    progress.max = Math.max(1, total);
    progress.value = model.get("paraphrase_done");
    const rows = model.get("paraphrase_rows") || [];
    const head = h("tr");
    for (const c of ["method", "Jaccard of top 10", "rank std", "rank IQR"]) {
      const th = h("th", null, c);
      th.style.cssText = "text-align:left;padding:1px 8px 1px 0;border-bottom:1px solid var(--cs-border,#ccc)";
      head.append(th);
    }
    table.replaceChildren(head, ...rows.map((r) => {
      const tr = h("tr");
      tr.dataset.method = String(r.method);
      for (const c of ["method", "jaccard", "rank_std", "rank_iqr"]) {
        const td = h("td", null, String(r[c] ?? ""));
        td.style.padding = "1px 8px 1px 0";
        tr.append(td);
      }
      return tr;
    }));
    table.style.display = rows.length ? "" : "none";
    table.dataset.rows = String(rows.length);
    textsList.replaceChildren(...(model.get("paraphrase_texts") || []).map((t) => h("li", null, t)));
    texts.style.display = textsList.children.length ? "" : "none";
  }

  function showTab() {
    const tab = model.get("tab");
    root.dataset.tab = tab;
    for (const [key, pane] of Object.entries(panes)) pane.style.display = key === tab ? "" : "none";
    for (const [key, b] of Object.entries(tabButtons)) {
      b.setAttribute("aria-selected", String(key === tab));
      b.classList.toggle("cs-active", key === tab);
    }
  }

  // some front ends (marimo) apply an update's traits one by one, firing each change at once: the
  // curve is drawn once the whole update (version, alphas and both measures) has arrived
  let curveQueued = false;
  let closed = false;
  function queueCurve() {
    if (curveQueued) return;
    curveQueued = true;
    queueMicrotask(() => { curveQueued = false; if (!closed) drawCurve(); });
  }
  const unlisten = listen(model, {
    "change:tab": showTab,
    "change:attributes change:attribute change:status": renderControls,
    "change:curve_version change:alphas": queueCurve,
    "change:current_alpha": moveMarker,
    "change:paraphrase_rows change:paraphrase_status change:paraphrase_done change:paraphrase_total change:paraphrase_n change:paraphrase_texts change:paraphrase_input": renderParaphrases,
  });
  showTab();
  renderControls();
  drawCurve();
  renderParaphrases();
  root.dataset.ready = "true";

  return () => {
    closed = true;
    unwatchKernel();
    unlisten();
    root.remove();
  };
}

export default { render };
