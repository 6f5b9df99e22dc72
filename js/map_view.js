// cirscope MapView: a scatter of many points drawn straight into pixel buffers.
//
// Layers (canvases stacked in one stage):
//   base  all points, written into an ImageData once per view/colour change (fast at 100k)
//   sel   the box/lasso selection (redrawn only when the selection changes)
//   top   query point, top-k highlights, reference, hover ring and the drag shape
//         (redrawn on every query update: a few dozen shapes)
// Arrays come from Python as {dtype, shape, data: DataView} (see cirscope/widgets/_codec.py).

// codec:begin
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
// codec:end

// thumbs:begin
/** A Blob URL for image bytes (a DataView), typed by its magic number; null for empty input. */
function imageURL(view) {
  if (!view || view.byteLength === 0) return null;
  const b0 = view.getUint8(0);
  const type = b0 === 0x89 ? "image/png" : b0 === 0xff ? "image/jpeg" : b0 === 0x52 ? "image/webp" : "image/gif";
  return URL.createObjectURL(new Blob([view], { type }));
}

/** Fill `dl` with key/value rows using textContent only (metadata is never parsed as HTML). */
function fillMetadata(dl, meta) {
  dl.replaceChildren();
  for (const [key, value] of Object.entries(meta || {})) {
    const dt = document.createElement("dt");
    dt.textContent = key;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dl.append(dt, dd);
  }
}
// thumbs:end

const HOVER_RADIUS = 8; // px
const HOVER_GAP_MS = 50;
const CELL = 16; // px, hover index cell

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function autoRadius(n) {
  if (n <= 2000) return 3.5;
  if (n <= 20000) return 2.2;
  return 1.3;
}

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-map");
  root.tabIndex = 0;
  const toolbar = h("div", "cs-toolbar");
  const title = h("span", "cs-label");
  const colorLabel = h("label", "cs-muted", "colour ");
  const colorSelect = h("select");
  colorSelect.setAttribute("aria-label", "colour by");
  colorLabel.append(colorSelect);
  const modes = {};
  for (const [mode, label, tip] of [
    ["box", "Box", "drag to select a rectangle (shift adds)"],
    ["lasso", "Lasso", "drag to draw a free selection (shift adds)"],
    ["pan", "Pan", "drag to move the view"],
  ]) {
    const b = h("button", null, label);
    b.type = "button";
    b.title = tip;
    b.addEventListener("click", () => { model.set("select_mode", mode); model.save_changes(); });
    modes[mode] = b;
  }
  const reset = h("button", null, "Reset view");
  reset.type = "button";
  reset.title = "fit all points (double-click, 0)";
  const clear = h("button", null, "Clear selection");
  clear.type = "button";
  clear.title = "Escape";
  const info = h("span", "cs-muted");
  toolbar.append(title, colorLabel, modes.box, modes.lasso, modes.pan, reset, clear, info);

  const stage = h("div", "cs-stage");
  const base = h("canvas", "cs-base");
  const sel = h("canvas", "cs-sel");
  const top = h("canvas", "cs-top");
  top.setAttribute("role", "img");
  top.setAttribute("aria-label", "map of the gallery");
  const card = h("div", "cs-card");
  const cardImg = h("img");
  cardImg.alt = "";
  const cardMeta = h("dl");
  card.append(cardImg, cardMeta);
  stage.append(base, sel, top, card);
  const legend = h("div", "cs-legend");
  root.append(toolbar, stage, legend);
  el.append(root);

  // ------------------------------------------------------------------ state
  let n = 0;
  let xy = new Float32Array(0); // data coordinates, interleaved
  let sxy = new Float32Array(0); // screen coordinates (css px), interleaved
  let rgb = new Uint8Array(0);
  let bounds = { x0: 0, x1: 1, y0: 0, y1: 1 };
  let view = { scale: 1, cx: 0.5, cy: 0.5 }; // data centre shown at the stage centre
  let W = 0, H = 0, dpr = 1;
  let cellStart = new Int32Array(0), cellItems = new Int32Array(0), cols = 0, rows = 0;
  let hovered = -1;
  let drag = null; // {kind, x0, y0, path, moved, view}
  let selected = new Int32Array(0);
  let cardURL = null;
  let frame = 0;
  const dirty = { base: false, sel: false, top: false };

  function schedule(what) {
    for (const w of what) dirty[w] = true;
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    if (dirty.base) { dirty.base = false; drawBase(); }
    if (dirty.sel) { dirty.sel = false; drawSel(); }
    if (dirty.top) { dirty.top = false; drawTop(); }
  }

  // ------------------------------------------------------------------ data
  function loadCoords() {
    const arr = decodeArray(model.get("coords"));
    xy = arr ? arr.data : new Float32Array(0);
    n = xy.length / 2;
    top.dataset.nPoints = String(n);
    base.dataset.nPoints = String(n);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = xy[2 * i], y = xy[2 * i + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x;
      if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    if (!n) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    bounds = { x0, x1, y0, y1 };
    fit();
    info.textContent = `${n.toLocaleString()} points`;
  }
  function loadColors() {
    const arr = decodeArray(model.get("colors"));
    rgb = arr && arr.data.length === 3 * n ? arr.data : null;
  }
  function loadSelection() {
    const arr = decodeArray(model.get("selected"));
    selected = arr ? Int32Array.from(arr.data) : new Int32Array(0);
    top.dataset.nSelected = String(selected.length);
  }
  function fit() {
    const pad = 12;
    const dx = Math.max(bounds.x1 - bounds.x0, 1e-9), dy = Math.max(bounds.y1 - bounds.y0, 1e-9);
    view = {
      scale: Math.max(Math.min((W - 2 * pad) / dx, (H - 2 * pad) / dy), 1e-9),
      cx: (bounds.x0 + bounds.x1) / 2,
      cy: (bounds.y0 + bounds.y1) / 2,
    };
  }

  // ------------------------------------------------------------------ geometry
  function project() {
    if (sxy.length !== 2 * n) sxy = new Float32Array(2 * n);
    const s = view.scale, ox = W / 2 - view.cx * s, oy = H / 2 + view.cy * s;
    for (let i = 0; i < n; i++) {
      sxy[2 * i] = xy[2 * i] * s + ox;
      sxy[2 * i + 1] = oy - xy[2 * i + 1] * s;
    }
    buildIndex();
  }
  function toScreen(x, y) {
    return [(x - view.cx) * view.scale + W / 2, H / 2 - (y - view.cy) * view.scale];
  }
  function buildIndex() {
    // counting sort of on-screen points into CELL x CELL buckets (for hover look-ups)
    cols = Math.max(1, Math.ceil(W / CELL));
    rows = Math.max(1, Math.ceil(H / CELL));
    const counts = new Int32Array(cols * rows + 1);
    const cellOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const cx = Math.floor(sxy[2 * i] / CELL), cy = Math.floor(sxy[2 * i + 1] / CELL);
      if (cx < 0 || cy < 0 || cx >= cols || cy >= rows) { cellOf[i] = -1; continue; }
      const c = cy * cols + cx;
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) counts[c + 1] += counts[c];
    cellStart = counts;
    cellItems = new Int32Array(counts[cols * rows]);
    const fill = counts.slice(0, cols * rows);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) cellItems[fill[cellOf[i]]++] = i;
  }
  function nearest(px, py) {
    let best = -1, bestD = HOVER_RADIUS * HOVER_RADIUS;
    const cx = Math.floor(px / CELL), cy = Math.floor(py / CELL);
    for (let gy = cy - 1; gy <= cy + 1; gy++) {
      if (gy < 0 || gy >= rows) continue;
      for (let gx = cx - 1; gx <= cx + 1; gx++) {
        if (gx < 0 || gx >= cols) continue;
        const c = gy * cols + gx;
        for (let j = cellStart[c]; j < cellStart[c + 1]; j++) {
          const i = cellItems[j];
          const dx = sxy[2 * i] - px, dy = sxy[2 * i + 1] - py, d = dx * dx + dy * dy;
          if (d <= bestD) { bestD = d; best = i; } // later points are drawn on top: prefer them
        }
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ drawing
  function resize() {
    const rect = stage.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width));
    const hgt = model.get("height");
    stage.style.height = `${hgt}px`;
    const ratio = window.devicePixelRatio || 1;
    if (w === W && hgt === H && ratio === dpr) return false;
    W = w; H = hgt; dpr = ratio;
    for (const c of [base, sel, top]) {
      c.width = Math.round(W * dpr);
      c.height = Math.round(H * dpr);
      c.style.width = `${W}px`;
      c.style.height = `${H}px`;
    }
    fit();
    return true;
  }
  function radius() {
    const r = model.get("point_size");
    return r > 0 ? r : autoRadius(n);
  }
  function drawBase() {
    const started = performance.now();
    const ctx = base.getContext("2d");
    const bw = base.width, bh = base.height;
    if (!bw || !bh) return;
    const img = ctx.createImageData(bw, bh);
    const px = new Uint32Array(img.data.buffer);
    const r = radius() * dpr;
    const ri = Math.ceil(r);
    const offsets = [];
    for (let dy = -ri; dy <= ri; dy++) for (let dx = -ri; dx <= ri; dx++) if (dx * dx + dy * dy <= r * r + 0.25) offsets.push([dx, dy]);
    const stamp = Int32Array.from(offsets.flat());
    const ns = offsets.length;
    const colors = rgb;
    const fallback = (255 << 24) | (180 << 16) | (119 << 8) | 31; // ABGR of #1f77b4
    for (let i = 0; i < n; i++) {
      const x = Math.round(sxy[2 * i] * dpr), y = Math.round(sxy[2 * i + 1] * dpr);
      if (x < -ri || y < -ri || x >= bw + ri || y >= bh + ri) continue;
      const c = colors ? (255 << 24) | (colors[3 * i + 2] << 16) | (colors[3 * i + 1] << 8) | colors[3 * i] : fallback;
      for (let s = 0; s < ns; s++) {
        const X = x + stamp[2 * s], Y = y + stamp[2 * s + 1];
        if (X >= 0 && Y >= 0 && X < bw && Y < bh) px[Y * bw + X] = c;
      }
    }
    ctx.putImageData(img, 0, 0);
    base.dataset.drawn = String(Number(base.dataset.drawn || 0) + 1);
    base.dataset.drawMs = (performance.now() - started).toFixed(1);
  }
  function drawSel() {
    const ctx = sel.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, sel.width, sel.height);
    if (!selected.length) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // dim everything, then ring the selected points
    ctx.fillStyle = "rgba(255,255,255,0.55)";
    ctx.fillRect(0, 0, W, H);
    const r = Math.max(radius(), 1.5) + 1;
    ctx.fillStyle = "rgba(20,20,20,0.9)";
    ctx.beginPath();
    for (const i of selected) {
      if (i < 0 || i >= n) continue;
      ctx.rect(sxy[2 * i] - r, sxy[2 * i + 1] - r, 2 * r, 2 * r);
    }
    ctx.fill();
  }
  function drawTop() {
    const ctx = top.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, top.width, top.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const hl = decodeArray(model.get("highlighted"));
    const rowsHl = hl ? hl.data : new Int32Array(0);
    const q = model.get("query_point") || [];
    const qxy = q.length === 2 ? toScreen(q[0], q[1]) : null;
    if (qxy && rowsHl.length) {
      ctx.strokeStyle = "rgba(0,0,0,0.25)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (const i of rowsHl) {
        if (i < 0 || i >= n) continue;
        ctx.moveTo(qxy[0], qxy[1]);
        ctx.lineTo(sxy[2 * i], sxy[2 * i + 1]);
      }
      ctx.stroke();
    }
    for (let k = rowsHl.length - 1; k >= 0; k--) {
      const i = rowsHl[k];
      if (i < 0 || i >= n) continue;
      const r = k === 0 ? 7 : 5;
      ctx.beginPath();
      ctx.arc(sxy[2 * i], sxy[2 * i + 1], r, 0, 2 * Math.PI);
      ctx.fillStyle = rgb ? `rgb(${rgb[3 * i]},${rgb[3 * i + 1]},${rgb[3 * i + 2]})` : "#1f77b4";
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#111";
      ctx.stroke();
    }
    top.dataset.nHighlighted = String(rowsHl.length);
    top.dataset.drawn = String(Number(top.dataset.drawn || 0) + 1);
    const ref = model.get("reference");
    if (ref >= 0 && ref < n) {
      const [x, y] = [sxy[2 * ref], sxy[2 * ref + 1]];
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(x - 7, y - 7, 14, 14);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ff6d00";
      ctx.strokeRect(x - 7, y - 7, 14, 14);
    }
    if (qxy) {
      star(ctx, qxy[0], qxy[1], 10, 4.5);
      ctx.fillStyle = "#ffd600";
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#111";
      ctx.stroke();
    }
    if (hovered >= 0 && hovered < n) {
      ctx.beginPath();
      ctx.arc(sxy[2 * hovered], sxy[2 * hovered + 1], 6, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#e91e63";
      ctx.stroke();
    }
    if (drag && drag.kind !== "pan" && drag.moved) {
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#111";
      ctx.fillStyle = "rgba(25,118,210,0.12)";
      ctx.beginPath();
      if (drag.kind === "box") {
        ctx.rect(Math.min(drag.x0, drag.x1), Math.min(drag.y0, drag.y1), Math.abs(drag.x1 - drag.x0), Math.abs(drag.y1 - drag.y0));
      } else {
        drag.path.forEach(([x, y], j) => (j ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
      }
      ctx.fill();
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }
  function star(ctx, x, y, outer, inner) {
    ctx.beginPath();
    for (let j = 0; j < 10; j++) {
      const r = j % 2 ? inner : outer, a = (Math.PI / 5) * j - Math.PI / 2;
      ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
    }
    ctx.closePath();
  }
  function redrawAll() {
    project();
    schedule(["base", "sel", "top"]);
  }

  // ------------------------------------------------------------------ legend, toolbar
  function renderLegend() {
    legend.replaceChildren();
    const bar = model.get("colorbar") || {};
    if (bar.stops && bar.stops.length) {
      const lo = h("span", "cs-muted", Number(bar.min).toPrecision(3));
      const grad = h("span", "cs-colorbar");
      grad.style.background = `linear-gradient(to right, ${bar.stops.join(", ")})`;
      const hi = h("span", "cs-muted", Number(bar.max).toPrecision(3));
      legend.append(h("span", null, model.get("color_by")), lo, grad, hi);
      return;
    }
    for (const item of model.get("legend") || []) {
      const entry = h("span");
      const sw = h("span", "cs-swatch");
      sw.style.background = item.color;
      entry.append(sw, document.createTextNode(`${item.label} (${item.count})`));
      legend.append(entry);
    }
  }
  function renderToolbar() {
    title.textContent = model.get("title");
    colorSelect.replaceChildren();
    const none = h("option", null, "(none)");
    none.value = "";
    colorSelect.append(none);
    for (const c of model.get("color_columns") || []) {
      const o = h("option", null, c);
      o.value = c;
      colorSelect.append(o);
    }
    colorSelect.value = model.get("color_by");
    const mode = model.get("select_mode");
    root.dataset.mode = mode;
    for (const [m, b] of Object.entries(modes)) b.setAttribute("aria-pressed", String(m === mode));
  }
  colorSelect.addEventListener("change", () => { model.set("color_by", colorSelect.value); model.save_changes(); });

  // ------------------------------------------------------------------ hover card
  function showCard() {
    if (hovered < 0 || model.get("hover_row") !== hovered) { card.style.display = "none"; return; }
    if (cardURL) URL.revokeObjectURL(cardURL);
    cardURL = imageURL(model.get("hover_image"));
    if (cardURL) { cardImg.src = cardURL; cardImg.style.display = ""; } else cardImg.style.display = "none";
    fillMetadata(cardMeta, model.get("hover_meta"));
    const x = sxy[2 * hovered], y = sxy[2 * hovered + 1];
    card.style.display = "block";
    const cw = card.offsetWidth, ch = card.offsetHeight;
    card.style.left = `${x + 14 + cw > W ? Math.max(0, x - 14 - cw) : x + 14}px`;
    card.style.top = `${Math.min(Math.max(0, y - ch / 2), Math.max(0, H - ch))}px`;
  }
  function setHover(i) {
    if (i === hovered) return;
    hovered = i;
    top.dataset.hovered = String(i);
    schedule(["top"]);
    if (i < 0) { card.style.display = "none"; return; }
    if (model.get("hover_row") === i) showCard();
    else { card.style.display = "none"; requestHover(i); }
  }
  // ask Python for the hover card; while the pointer sweeps over many points, at most one
  // request per HOVER_GAP_MS (the last point wins)
  let hoverTimer = 0, lastHoverSent = -Infinity;
  function requestHover(i) {
    clearTimeout(hoverTimer);
    const send = () => {
      lastHoverSent = performance.now();
      if (hovered !== i) return;
      model.set("hovered", i);
      model.save_changes();
    };
    const wait = lastHoverSent + HOVER_GAP_MS - performance.now();
    if (wait <= 0) send(); else hoverTimer = setTimeout(send, wait);
  }

  // ------------------------------------------------------------------ pointer
  function local(ev) {
    const rect = top.getBoundingClientRect();
    return [ev.clientX - rect.left, ev.clientY - rect.top];
  }
  function inPolygon(x, y, poly) {
    let inside = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [xa, ya] = poly[a], [xb, yb] = poly[b];
      if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
    }
    return inside;
  }
  function finishSelection(add) {
    const out = [];
    if (drag.kind === "box") {
      const x0 = Math.min(drag.x0, drag.x1), x1 = Math.max(drag.x0, drag.x1);
      const y0 = Math.min(drag.y0, drag.y1), y1 = Math.max(drag.y0, drag.y1);
      for (let i = 0; i < n; i++) {
        const x = sxy[2 * i], y = sxy[2 * i + 1];
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i);
      }
    } else {
      const xs = drag.path.map((p) => p[0]), ys = drag.path.map((p) => p[1]);
      const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
      for (let i = 0; i < n; i++) {
        const x = sxy[2 * i], y = sxy[2 * i + 1];
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && inPolygon(x, y, drag.path)) out.push(i);
      }
    }
    let rowsOut = Int32Array.from(out);
    if (add && selected.length) rowsOut = Int32Array.from(new Set([...selected, ...out])).sort();
    setSelection(rowsOut);
  }
  function setSelection(rowsOut) {
    selected = rowsOut;
    top.dataset.nSelected = String(selected.length);
    model.set("selected", encodeArray(rowsOut));
    model.save_changes();
    schedule(["sel"]);
  }
  function onDown(ev) {
    if (ev.button !== 0 && ev.button !== 1) return;
    const [x, y] = local(ev);
    const kind = ev.button === 1 || model.get("select_mode") === "pan" ? "pan" : model.get("select_mode");
    drag = { kind, x0: x, y0: y, x1: x, y1: y, path: [[x, y]], moved: false, view: { ...view }, add: ev.shiftKey };
    top.setPointerCapture(ev.pointerId);
    root.focus({ preventScroll: true });
    ev.preventDefault();
  }
  function onMove(ev) {
    const [x, y] = local(ev);
    if (!drag) { setHover(nearest(x, y)); return; }
    drag.x1 = x; drag.y1 = y;
    if (Math.abs(x - drag.x0) + Math.abs(y - drag.y0) > 3) drag.moved = true;
    if (drag.kind === "pan") {
      view.cx = drag.view.cx - (x - drag.x0) / view.scale;
      view.cy = drag.view.cy + (y - drag.y0) / view.scale;
      redrawAll();
    } else {
      if (drag.kind === "lasso") drag.path.push([x, y]);
      schedule(["top"]);
    }
  }
  function onUp(ev) {
    if (!drag) return;
    const d = drag;
    if (!d.moved) {
      const i = nearest(d.x0, d.y0);
      if (i >= 0) model.send({ event: "click", row: i });
    } else if (d.kind !== "pan") {
      finishSelection(d.add);
    }
    drag = null;
    schedule(["top"]);
  }
  function onWheel(ev) {
    ev.preventDefault();
    const [x, y] = local(ev);
    const factor = Math.pow(1.0015, -ev.deltaY);
    const dxData = (x - W / 2) / view.scale, dyData = (H / 2 - y) / view.scale;
    const mx = view.cx + dxData, my = view.cy + dyData;
    view.scale *= factor;
    view.cx = mx - (x - W / 2) / view.scale;
    view.cy = my - (H / 2 - y) / view.scale;
    redrawAll();
  }
  function resetView() { fit(); redrawAll(); }
  function onKey(ev) {
    if (ev.target !== root) return;
    if (ev.key === "Escape") setSelection(new Int32Array(0));
    else if (ev.key === "0") resetView();
    else if (ev.key === "+" || ev.key === "=") { view.scale *= 1.25; redrawAll(); }
    else if (ev.key === "-") { view.scale /= 1.25; redrawAll(); }
    else return;
    ev.preventDefault();
  }
  const onLeave = () => { if (!drag) setHover(-1); };
  top.addEventListener("pointerdown", onDown);
  top.addEventListener("pointermove", onMove);
  top.addEventListener("pointerup", onUp);
  top.addEventListener("pointercancel", () => { drag = null; schedule(["top"]); });
  top.addEventListener("pointerleave", onLeave);
  top.addEventListener("wheel", onWheel, { passive: false });
  top.addEventListener("dblclick", resetView);
  root.addEventListener("keydown", onKey);
  reset.addEventListener("click", resetView);
  clear.addEventListener("click", () => setSelection(new Int32Array(0)));

  // ------------------------------------------------------------------ model events
  const handlers = {
    "change:coords": () => { loadCoords(); loadColors(); redrawAll(); },
    "change:colors": () => { loadColors(); schedule(["base", "top"]); },
    "change:legend change:colorbar": renderLegend,
    "change:color_columns change:color_by change:select_mode change:title": renderToolbar,
    "change:highlighted change:query_point change:reference": () => schedule(["top"]),
    "change:selected": () => { loadSelection(); schedule(["sel"]); },
    "change:hover_row change:hover_meta change:hover_image": showCard,
    "change:point_size": () => schedule(["base", "sel"]),
    "change:height": () => { if (resize()) redrawAll(); },
  };
  const each = (fn) => Object.entries(handlers).forEach(([evs, cb]) => evs.split(" ").forEach((ev) => fn(ev, cb)));
  each((ev, cb) => model.on(ev, cb));

  // where a row is drawn (css px inside the canvas), for automation and tests: [x, y] or null
  top.pointPosition = (i) => (i >= 0 && i < n ? [sxy[2 * i], sxy[2 * i + 1]] : null);

  const observer = new ResizeObserver(() => { if (resize()) redrawAll(); });
  observer.observe(stage);
  renderToolbar();
  renderLegend();
  resize();
  loadCoords();
  loadColors();
  loadSelection();
  redrawAll();
  root.dataset.ready = "true";

  return () => {
    each((ev, cb) => model.off(ev, cb));
    observer.disconnect();
    if (frame) cancelAnimationFrame(frame);
    clearTimeout(hoverTimer);
    if (cardURL) URL.revokeObjectURL(cardURL);
    root.remove();
  };
}

export default { render };
