// cirscope MapView: a scatter of many points drawn straight into pixel buffers.
//
// Layers (canvases stacked in one stage):
//   base  all points (or, when many are visible, a binned density image), written into an
//         ImageData once per frame in which the view or the colours changed
//   sel   the box/lasso selection (the stage dimmed, the selected points drawn again on top)
//   top   query point, top-k highlights, reference, hover ring and the drag shape
// Input handlers (wheel, drag, hover) only update the view and request one animation frame;
// the frame projects the points once and redraws what changed. The hover index is rebuilt
// only when a hover look-up needs it after the view changed.
// During a pan/zoom gesture over many points (a density image, or a frame costing more than
// FAST_FRAME_MS) a frame only redraws the last full image moved and scaled to the new view
// (drawImage: a few ms); the points are projected and drawn again once input pauses for
// SETTLE_MS (or at once when a pan drag ends).
// Arrays come from Python as {dtype, shape, data: DataView} (see cirscope/widgets/_codec.py);
// the selection travels both ways as int32 rows or, when that is smaller, as a bitmask of one
// bit per point (encodeSelection / decodeSelection; cirscope/widgets/_rowset.py in Python).
// The pure helpers (no DOM) are exported by name and tested alone in node (tests/test_map_view_js.py).

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

// shared:thumbs begin: copied from js/_shared/thumbs.js by `python -m cirscope.widgets._sync_js`; edit it there
/** A Blob URL for image bytes (a DataView), typed by its magic number; null for empty input. */
function imageURL(view) {
  if (!view || view.byteLength === 0) return null;
  const b0 = view.getUint8(0);
  const type = b0 === 0x89 ? "image/png" : b0 === 0xff ? "image/jpeg" : b0 === 0x52 ? "image/webp" : "image/gif";
  return URL.createObjectURL(new Blob([view], { type }));
}

/** Revoke the Blob URL `old` (if any) and return a new one for image bytes `view` (null when empty). */
function replaceImageURL(old, view) {
  if (old) URL.revokeObjectURL(old);
  return imageURL(view);
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
// shared:thumbs end

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

// shared:path begin: copied from js/_shared/path.js by `python -m cirscope.widgets._sync_js`; edit it there
/**
 * The query's path (one position and one top-k per value of a slider): which step Play shows
 * `elapsed` ms after it started, when each of `steps` steps lasts `stepMs` ms.
 * Returns {step, done}; the last step is held once the sweep is over.
 */
function playStepAt(elapsed, steps, stepMs) {
  if (steps <= 0) return { step: -1, done: true };
  const step = Math.max(0, Math.floor(elapsed / Math.max(1, stepMs)));
  return step >= steps - 1 ? { step: steps - 1, done: true } : { step, done: false };
}

/** The top rows of path step `step` (an {data, shape: [S, k]} array), without the -1 padding. */
function pathRowsAt(rows, step) {
  if (!rows || !rows.shape || step < 0 || step >= rows.shape[0]) return new Int32Array(0);
  const k = rows.shape[1];
  const out = rows.data.subarray(step * k, (step + 1) * k);
  return out.every((i) => i >= 0) ? out : out.filter((i) => i >= 0);
}

/**
 * Draw the path as a line through its steps' screen points `pts` ([[x, y], ...]), a dot
 * per step, the steps up to `current` (-1: none) in a stronger colour.
 */
function drawPath(ctx, pts, current) {
  if (!pts || pts.length === 0) return;
  ctx.lineWidth = 2;
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = "rgba(228,87,86,0.7)";
  ctx.beginPath();
  pts.forEach(([x, y], j) => (j ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.stroke();
  ctx.setLineDash([]);
  pts.forEach(([x, y], j) => {
    ctx.beginPath();
    ctx.arc(x, y, j === 0 || j === pts.length - 1 ? 4 : 2.5, 0, 2 * Math.PI);
    ctx.fillStyle = j <= current ? "#e45756" : "#ffffff";
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#e45756";
    ctx.stroke();
  });
}
// shared:path end

const HOVER_RADIUS = 8; // px
const HOVER_GAP_MS = 50;
const CELL = 16; // px, hover index cell
const DENSITY_MIN_ALPHA = 0.45; // the faintest occupied density pixel (a lone outlier stays visible)
const FAST_FRAME_MS = 16; // full frames slower than this: gestures move the last image instead
const SETTLE_MS = 130; // input idle this long ends a gesture (the points are drawn again, crisp)

// ---------------------------------------------------------------------- pure helpers
// (no DOM: tested alone with node, see tests/test_map_view_js.py)

/** Default point radius (css px) when n points are in view. */
function autoRadius(n) {
  if (n <= 2000) return 3.5;
  if (n <= 20000) return 2.2;
  return 1.3;
}

/** Bounding box {x0, x1, y0, y1} of interleaved xy (a unit box when empty). */
function dataBounds(xy) {
  const n = xy.length >> 1;
  if (!n) return { x0: 0, x1: 1, y0: 0, y1: 1 };
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i], y = xy[2 * i + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  return { x0, x1, y0, y1 };
}

/** The view {scale, cx, cy} showing `bounds` inside a W x H stage with `pad` px margins. */
function fitView(bounds, W, H, pad = 12) {
  const dx = Math.max(bounds.x1 - bounds.x0, 1e-9), dy = Math.max(bounds.y1 - bounds.y0, 1e-9);
  return {
    scale: Math.max(Math.min((W - 2 * pad) / dx, (H - 2 * pad) / dy), 1e-9),
    cx: (bounds.x0 + bounds.x1) / 2,
    cy: (bounds.y0 + bounds.y1) / 2,
  };
}

/**
 * The view showing the rows that were inside a W x H stage (screen positions `sxy`) at their new data
 * positions `xy`, after a new layout of the same points (the UMAP replacing the PCA preview); null
 * when no row was in view.
 */
function viewKeepingRows(sxy, xy, W, H) {
  const n = Math.min(sxy.length, xy.length) >> 1;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, kept = 0;
  for (let i = 0; i < n; i++) {
    const sx = sxy[2 * i], sy = sxy[2 * i + 1];
    if (!(sx >= 0 && sx <= W && sy >= 0 && sy <= H)) continue;
    const x = xy[2 * i], y = xy[2 * i + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
    kept++;
  }
  return kept ? fitView({ x0, x1, y0, y1 }, W, H) : null;
}

/** The view after zooming by `factor` about the stage point (x, y): that data point stays put. */
function zoomAt(view, x, y, factor, W, H) {
  const mx = view.cx + (x - W / 2) / view.scale, my = view.cy + (H / 2 - y) / view.scale;
  const scale = view.scale * factor;
  return { scale, cx: mx - (x - W / 2) / scale, cy: my - (H / 2 - y) / scale };
}

/**
 * The view after the stage was resized: refitted while the user has not moved it (first draw,
 * new data, Reset view), else the same centre and scale (a resize keeps the user's zoom).
 */
function viewAfterResize(view, userMoved, bounds, W, H) {
  return userMoved && view ? { ...view } : fitView(bounds, W, H);
}

/** A pan drag's view for the pointer at (x, y): `anchor` {x0, y0, view} is where it was grabbed. */
function panView(anchor, x, y) {
  const v = anchor.view;
  return { ...v, cx: v.cx - (x - anchor.x0) / v.scale, cy: v.cy + (y - anchor.y0) / v.scale };
}

/**
 * Project interleaved data coordinates `xy` into screen coordinates `out` (css px, y down)
 * for `view` on a W x H stage. Returns how many points fall inside the stage.
 */
function projectPoints(xy, view, W, H, out) {
  const n = xy.length >> 1;
  const s = view.scale, ox = W / 2 - view.cx * s, oy = H / 2 + view.cy * s;
  let visible = 0;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i] * s + ox, y = oy - xy[2 * i + 1] * s;
    out[2 * i] = x;
    out[2 * i + 1] = y;
    if (x >= 0 && y >= 0 && x < W && y < H) visible++;
  }
  return visible;
}

/** A uniform grid over the on-screen points (counting sort into cell x cell buckets) for hit tests. */
function buildGrid(sxy, W, H, cell = CELL) {
  const n = sxy.length >> 1;
  const cols = Math.max(1, Math.ceil(W / cell)), rows = Math.max(1, Math.ceil(H / cell));
  const ncell = cols * rows;
  const start = new Int32Array(ncell + 1);
  const cellOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cx = Math.floor(sxy[2 * i] / cell), cy = Math.floor(sxy[2 * i + 1] / cell);
    if (cx < 0 || cy < 0 || cx >= cols || cy >= rows) { cellOf[i] = -1; continue; }
    const c = cy * cols + cx;
    cellOf[i] = c;
    start[c + 1]++;
  }
  for (let c = 0; c < ncell; c++) start[c + 1] += start[c];
  const items = new Int32Array(start[ncell]);
  const fill = start.slice(0, ncell);
  for (let i = 0; i < n; i++) if (cellOf[i] >= 0) items[fill[cellOf[i]]++] = i;
  return { start, items, cols, rows, cell };
}

/** The point nearest to (px, py) within `radius` px (-1: none); ties go to the later (top-most) point. */
function nearestPoint(grid, sxy, px, py, radius = HOVER_RADIUS) {
  let best = -1, bestD = radius * radius;
  const { start, items, cols, rows, cell } = grid;
  const reach = Math.ceil(radius / cell);
  const cx = Math.floor(px / cell), cy = Math.floor(py / cell);
  for (let gy = cy - reach; gy <= cy + reach; gy++) {
    if (gy < 0 || gy >= rows) continue;
    for (let gx = cx - reach; gx <= cx + reach; gx++) {
      if (gx < 0 || gx >= cols) continue;
      const c = gy * cols + gx;
      for (let j = start[c]; j < start[c + 1]; j++) {
        const i = items[j];
        const dx = sxy[2 * i] - px, dy = sxy[2 * i + 1] - py, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

/**
 * The map from screen positions under view `from` to those under view `to` (W x H stage, css
 * px): x' = k x + tx, y' = k y + ty. What a frame applies to the last full image in a gesture.
 */
function viewTransform(from, to, W, H) {
  const k = to.scale / from.scale;
  return {
    k,
    tx: (W / 2) * (1 - k) + (from.cx - to.cx) * to.scale,
    ty: (H / 2) * (1 - k) - (from.cy - to.cy) * to.scale,
  };
}

/** Send `count` rows of `n` points as a bitmask (1 bit per point) rather than int32s? (whichever is smaller) */
function useBitmask(count, n) {
  return 4 * count > (n + 7) >> 3;
}

/**
 * A selection message: int32 rows, or {dtype: "bitmask", shape: [n]} with bit (i & 7) of byte
 * i >> 3 set for row i, whichever is smaller (the kernel uses the same rule).
 */
function encodeSelection(rows, n) {
  if (!useBitmask(rows.length, n)) {
    const typed = rows instanceof Int32Array ? rows : Int32Array.from(rows);
    return { dtype: "int32", shape: [typed.length], data: new DataView(typed.buffer, typed.byteOffset, typed.byteLength) };
  }
  const bits = new Uint8Array((n + 7) >> 3);
  for (let j = 0; j < rows.length; j++) {
    const i = rows[j];
    if (i >= 0 && i < n) bits[i >> 3] |= 1 << (i & 7);
  }
  return { dtype: "bitmask", shape: [n], data: new DataView(bits.buffer) };
}

/** The rows (ascending for a bitmask) of a selection message; rows outside 0..n-1 are left out. */
function decodeSelection(msg, n) {
  if (!msg || !msg.data) return new Int32Array(0);
  const view = msg.data;
  if (msg.dtype !== "bitmask") {
    const arr = decodeArray(msg);
    let ok = true;
    for (let j = 0; j < arr.data.length; j++) if (!(arr.data[j] >= 0 && arr.data[j] < n)) { ok = false; break; }
    return Int32Array.from(ok ? arr.data : arr.data.filter((i) => i >= 0 && i < n));
  }
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const limit = Math.min(n, 8 * bytes.length);
  let count = 0;
  for (let b = 0; b < bytes.length; b++) { let v = bytes[b]; while (v) { v &= v - 1; count++; } }
  const out = new Int32Array(count);
  let k = 0;
  for (let b = 0; b < bytes.length; b++) {
    const v = bytes[b];
    if (!v) continue;
    for (let bit = 0; bit < 8; bit++) {
      const i = 8 * b + bit;
      if (v & (1 << bit) && i < limit) out[k++] = i;
    }
  }
  return out.slice(0, k);
}

/** Even-odd test: is (x, y) inside the polygon [[x, y], ...]? */
function pointInPolygon(x, y, poly) {
  let inside = false;
  for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
    const xa = poly[a][0], ya = poly[a][1], xb = poly[b][0], yb = poly[b][1];
    if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) inside = !inside;
  }
  return inside;
}

/** Rows (ascending Int32Array) whose screen position lies in the box spanned by two corners. */
function selectBox(sxy, ax, ay, bx, by) {
  const x0 = Math.min(ax, bx), x1 = Math.max(ax, bx), y0 = Math.min(ay, by), y1 = Math.max(ay, by);
  const n = sxy.length >> 1;
  let out = new Int32Array(1024), k = 0;
  for (let i = 0; i < n; i++) {
    const x = sxy[2 * i], y = sxy[2 * i + 1];
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1) {
      if (k === out.length) { const grown = new Int32Array(2 * k); grown.set(out); out = grown; }
      out[k++] = i;
    }
  }
  return out.slice(0, k);
}

/** Rows (ascending Int32Array) whose screen position lies inside the lasso polygon. */
function selectPolygon(sxy, poly) {
  if (poly.length < 3) return new Int32Array(0);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of poly) {
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  const box = selectBox(sxy, x0, y0, x1, y1);
  let k = 0;
  for (let j = 0; j < box.length; j++) {
    const i = box[j];
    if (pointInPolygon(sxy[2 * i], sxy[2 * i + 1], poly)) box[k++] = i;
  }
  return box.slice(0, k);
}

/** The sorted union of two row sets (rows in 0..n-1), without duplicates. */
function unionRows(a, b, n) {
  const mark = new Uint8Array(n);
  for (let j = 0; j < a.length; j++) if (a[j] >= 0 && a[j] < n) mark[a[j]] = 1;
  for (let j = 0; j < b.length; j++) if (b[j] >= 0 && b[j] < n) mark[b[j]] = 1;
  let k = 0;
  for (let i = 0; i < n; i++) k += mark[i];
  const out = new Int32Array(k);
  for (let i = 0, j = 0; i < n; i++) if (mark[i]) out[j++] = i;
  return out;
}

/** Per-point colours packed as ABGR Uint32 (what an ImageData's Uint32 view holds); null rgb: one colour. */
function packColors(rgb, n, fallback = [31, 119, 180]) {
  const out = new Uint32Array(n);
  const ok = rgb && rgb.length === 3 * n;
  for (let i = 0; i < n; i++) {
    const r = ok ? rgb[3 * i] : fallback[0], g = ok ? rgb[3 * i + 1] : fallback[1], b = ok ? rgb[3 * i + 2] : fallback[2];
    out[i] = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
  }
  return out;
}

/** Fade the packed colours of `rows` in place (the rows outside the metadata filters): greyer and translucent. */
function fadeColors(colors32, rows) {
  for (let j = 0; j < rows.length; j++) {
    const i = rows[j], c = colors32[i];
    if (c === undefined) continue;
    const mix = (v) => Math.round(0.35 * v + 0.65 * 190);
    colors32[i] = ((DIM_ALPHA << 24) | (mix((c >>> 16) & 255) << 16) | (mix((c >>> 8) & 255) << 8) | mix(c & 255)) >>> 0;
  }
  return colors32;
}

/** The rows of 0..n-1 that are not in `rows` (ascending Int32Array). */
function complementRows(rows, n) {
  const mark = new Uint8Array(n);
  for (let j = 0; j < rows.length; j++) if (rows[j] >= 0 && rows[j] < n) mark[rows[j]] = 1;
  let k = 0;
  for (let i = 0; i < n; i++) k += mark[i] ? 0 : 1;
  const out = new Int32Array(k);
  for (let i = 0, j = 0; i < n; i++) if (!mark[i]) out[j++] = i;
  return out;
}

/** Pixel offsets [dx0, dy0, dx1, dy1, ...] of a filled disc of radius r (device px). */
function discStamp(r) {
  const ri = Math.ceil(r), out = [];
  for (let dy = -ri; dy <= ri; dy++) for (let dx = -ri; dx <= ri; dx++) if (dx * dx + dy * dy <= r * r + 0.25) out.push(dx, dy);
  return Int32Array.from(out);
}

/**
 * Stamp points into a bw x bh Uint32 pixel buffer: every row of `rows` (all points when
 * null) at its screen position times dpr, coloured by `color(i)` (a packed ABGR).
 */
function stampPoints(px, bw, bh, sxy, dpr, stamp, rows, color) {
  const ns = stamp.length >> 1;
  let reach = 0;
  for (let s = 0; s < stamp.length; s++) reach = Math.max(reach, Math.abs(stamp[s]));
  const count = rows ? rows.length : sxy.length >> 1;
  for (let j = 0; j < count; j++) {
    const i = rows ? rows[j] : j;
    const x = Math.round(sxy[2 * i] * dpr), y = Math.round(sxy[2 * i + 1] * dpr);
    if (x < -reach || y < -reach || x >= bw + reach || y >= bh + reach) continue;
    const c = color(i);
    if (x >= reach && y >= reach && x < bw - reach && y < bh - reach) {
      for (let s = 0; s < ns; s++) px[(y + stamp[2 * s + 1]) * bw + x + stamp[2 * s]] = c;
    } else {
      for (let s = 0; s < ns; s++) {
        const X = x + stamp[2 * s], Y = y + stamp[2 * s + 1];
        if (X >= 0 && Y >= 0 && X < bw && Y < bh) px[Y * bw + X] = c;
      }
    }
  }
}

/**
 * Bin points into a bw x bh grid of device pixels: per pixel [count, sum r, sum g, sum b],
 * interleaved in one Uint32Array (one cache line per point, not four). `bins` ({acc, max}) is
 * reused when its size fits. Returns the bins with `max` (the largest count) set.
 */
function binDensity(sxy, colors, bw, bh, dpr, bins) {
  const size = bw * bh;
  if (!bins || bins.acc.length !== 4 * size) bins = { acc: new Uint32Array(4 * size), max: 0 };
  else bins.acc.fill(0);
  const acc = bins.acc;
  const n = sxy.length >> 1;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const fx = sxy[2 * i] * dpr, fy = sxy[2 * i + 1] * dpr;
    if (!(fx >= 0 && fy >= 0 && fx < bw && fy < bh)) continue;
    const q = 4 * ((fy | 0) * bw + (fx | 0)), c = colors[i];
    const k = ++acc[q];
    acc[q + 1] += c & 255; acc[q + 2] += (c >>> 8) & 255; acc[q + 3] += (c >>> 16) & 255;
    if (k > max) max = k;
  }
  bins.max = max;
  return bins;
}

/**
 * Paint density bins into a Uint32 pixel buffer: each occupied pixel gets the mean colour of
 * its points, its opacity rising with log(count) from DENSITY_MIN_ALPHA to 1 at the densest.
 */
function densityPixels(bins, px) {
  const { acc, max } = bins;
  const scale = max > 1 ? (1 - DENSITY_MIN_ALPHA) / Math.log(max) : 0;
  const alpha = new Uint8Array(Math.min(max, 4096) + 1); // opacity by count (counts past 4096 share the top)
  for (let k = 1; k < alpha.length; k++) alpha[k] = Math.round(255 * (DENSITY_MIN_ALPHA + scale * Math.log(k)));
  const top = alpha.length - 1;
  for (let p = 0, q = 0; p < px.length; p++, q += 4) {
    const k = acc[q];
    if (!k) { px[p] = 0; continue; }
    const a = k <= top ? alpha[k] : Math.round(255 * (DENSITY_MIN_ALPHA + scale * Math.log(k)));
    px[p] = ((a << 24) | (Math.round(acc[q + 3] / k) << 16) | (Math.round(acc[q + 2] / k) << 8) | Math.round(acc[q + 1] / k)) >>> 0;
  }
}

/** Draw a density image rather than points? (many visible points, or more points than pixels) */
function wantsDensity(visible, W, H, threshold) {
  return threshold >= 0 && (visible > threshold || visible > W * H);
}

/**
 * Count a frame in `stats` (the base canvas's dataset, read by the browser tests and the
 * widget benchmark): frames, fast (gesture) frames, crisp full frames, their costs in ms and
 * when (`now`) the last crisp full frame was drawn.
 */
function countFrame(stats, plan, crisp, ms, now) {
  stats.frames = String(Number(stats.frames || 0) + 1);
  if (plan.fast) stats.fastFrames = String(Number(stats.fastFrames || 0) + 1);
  stats.frameMs = ms.toFixed(1);
  stats.crisp = String(crisp);
  if (plan.full && crisp) {
    stats.fullFrames = String(Number(stats.fullFrames || 0) + 1);
    stats.fullFrameMs = ms.toFixed(1);
    stats.crispAt = String(now);
  }
}

/** Do two views {scale, cx, cy} show the same? (false when either is missing) */
function sameView(a, b) {
  return !!a && !!b && a.scale === b.scale && a.cx === b.cx && a.cy === b.cy;
}

/** Where data point (x, y) is drawn under `view` on a W x H stage: [x, y] in css px, y down. */
function toScreen(view, W, H, x, y) {
  return [(x - view.cx) * view.scale + W / 2, H / 2 - (y - view.cy) * view.scale];
}

/**
 * Should a pan/zoom step move the last full image instead of drawing every point? Yes when
 * there is such an image and full frames are slow: a density image, or over FAST_FRAME_MS.
 */
function movesLastImage(density, lastFullMs, hasImage) {
  return hasImage && (density || lastFullMs > FAST_FRAME_MS);
}

/**
 * What one frame draws for its dirty flags (after projecting): `base` and `sel` are "draw"
 * (drawn afresh), "move" (the last full image moved to the current view, in a gesture) or
 * "" (left alone); `top`: redraw the top layer; `full`: a layer is drawn afresh; `fast`: a
 * gesture frame that only moved images.
 */
function layerPlan(dirty) {
  const full = dirty.base || dirty.sel;
  const layer = (drawn) => (drawn ? "draw" : dirty.fast ? "move" : "");
  return { base: layer(dirty.base), sel: layer(dirty.sel), top: dirty.top || dirty.fast, full, fast: dirty.fast && !full };
}

/** The point radius (css px): `pointSize` when set (> 0), else by the number of points in view. */
function pointRadius(pointSize, visible) {
  return pointSize > 0 ? pointSize : autoRadius(visible);
}

/** The rows of `rows` inside 0..n-1 (the same array when all are). */
function rowsInRange(rows, n) {
  return rows.every((i) => i >= 0 && i < n) ? rows : rows.filter((i) => i >= 0 && i < n);
}

/**
 * Disc radii (device px) for the selection layer: `fill` for every selected point (drawn in
 * its own colour) and `ring` (0: none) for a thin ring in the theme's ring colour under it
 * when at most 5,000 are drawn as points. A ringed point is at least 2.5 css px so that its
 * colour covers more pixels than its ring (a dot never turns into a dark square). Over a
 * density image a selected point is a single pixel.
 */
function selectionDiscs(density, nSelected, nDrawn, radius, dpr) {
  if (density) return { fill: 0.5 * dpr, ring: 0 };
  const ringed = nDrawn <= 5000;
  const fill = (ringed ? Math.max(radius, 2.5) : radius) * dpr;
  return { fill, ring: ringed ? fill + Math.max(1, dpr) : 0 };
}

/** The top edge (px) of a card `height` tall centred on y, kept inside a stage H tall. */
function cardTop(y, height, H) {
  return Math.min(Math.max(0, y - height / 2), Math.max(0, H - height));
}

/** What a key does on the focused map: "clear", "reset", a zoom factor (a number) or null. */
function keyAction(key) {
  if (key === "Escape") return "clear";
  if (key === "0") return "reset";
  if (key === "+" || key === "=") return 1.25;
  if (key === "-") return 1 / 1.25;
  return null;
}

/** The zoom factor of a wheel event's deltaY (negative: zoom in). */
function wheelZoom(deltaY) {
  return Math.pow(1.0015, -deltaY);
}

/** The drag a pointer button starts in select `mode`: "pan" (middle button or pan mode), "box" or "lasso"; null: none. */
function dragKind(button, mode) {
  if (button !== 0 && button !== 1) return null;
  return button === 1 || mode === "pan" ? "pan" : mode;
}

/** Has a drag from (x0, y0) to (x, y) gone far enough (over 3 px) to be a drag, not a click? */
function dragMoved(x0, y0, x, y) {
  return Math.abs(x - x0) + Math.abs(y - y0) > 3;
}

/** How long (ms) to hold a hover request so that at most one goes per HOVER_GAP_MS (0: send now). */
function hoverWait(lastSent, now) {
  return Math.max(0, lastSent + HOVER_GAP_MS - now);
}

/** The CSS colour of row i: its rgb, or the default blue without colours. */
function cssColor(rgb, i) {
  return rgb ? `rgb(${rgb[3 * i]},${rgb[3 * i + 1]},${rgb[3 * i + 2]})` : "#1f77b4";
}

/** The vertices [[x, y], ...] of a five-pointed star centred on (x, y), a point upwards. */
function starPoints(x, y, outer, inner) {
  const out = [];
  for (let j = 0; j < 10; j++) {
    const r = j % 2 ? inner : outer, a = (Math.PI / 5) * j - Math.PI / 2;
    out.push([x + r * Math.cos(a), y + r * Math.sin(a)]);
  }
  return out;
}

/**
 * [r, g, b, a] (0-255) of a CSS colour as a canvas normalises it ("#rrggbb" or
 * "rgba(r, g, b, a)"; "#rgb" and "rgb(r, g, b)" are read too); null for anything else.
 */
function parseColor(text) {
  const s = String(text || "").trim().toLowerCase();
  let m = /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/.exec(s);
  if (m) {
    const hex = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
    const v = [0, 2, 4].map((k) => parseInt(hex.slice(k, k + 2), 16));
    return [...v, hex.length === 8 ? parseInt(hex.slice(6, 8), 16) : 255];
  }
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)$/.exec(s);
  if (!m) return null;
  let a = m[4] === undefined ? 1 : m[4].endsWith("%") ? parseFloat(m[4]) / 100 : parseFloat(m[4]);
  a = Math.max(0, Math.min(1, a));
  return [m[1], m[2], m[3]].map((c) => Math.max(0, Math.min(255, Math.round(parseFloat(c))))).concat(Math.round(255 * a));
}

/** Colour `fg` ([r, g, b, a]) laid over the opaque `bg`: an opaque [r, g, b, 255]. */
function blendOver(fg, bg) {
  const a = fg[3] / 255;
  return [0, 1, 2].map((k) => Math.round(fg[k] * a + bg[k] * (1 - a))).concat(255);
}

/** An [r, g, b, a] colour packed as ABGR Uint32 (an ImageData's Uint32 view); `alpha` overrides a. */
function packRGBA(c, alpha = c[3]) {
  return ((alpha << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0;
}

/** Is a background colour dark? (relative luminance below 0.4) */
function isDarkColor(c) {
  const lin = (v) => { const x = v / 255; return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]) < 0.4;
}

/**
 * The canvas colours for the theme's CSS colours `css` ({bg, fg, fg2, accent, hover, ref,
 * query}, each a string a canvas accepts): strings for the marks and packed pixels for the
 * selection layer (`veil` dims what is not selected, `ring` rings the selected points: the
 * secondary text colour laid over the background, a grey that never turns a dot black).
 */
function canvasTheme(css) {
  const bg = blendOver(parseColor(css.bg) || [255, 255, 255, 255], [255, 255, 255, 255]);
  const fg = parseColor(css.fg) || [31, 31, 31, 255];
  const ring = blendOver(parseColor(css.fg2) || [0, 0, 0, 138], bg);
  const accent = parseColor(css.accent) || [25, 118, 210, 255];
  const rgba = (c, a) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;
  return {
    dark: isDarkColor(bg),
    bg: rgba(bg, 1),
    mark: rgba(fg, 0.9),
    line: rgba(fg, 0.28),
    dragFill: rgba(accent, 0.14),
    hover: css.hover || "#e91e63",
    ref: css.ref || "#ff6d00",
    query: css.query || "#ffd600",
    ring: rgba(ring, 1),
    veil: packRGBA(bg, 165),
    ring32: packRGBA(ring, 255),
  };
}

/**
 * The hover card's largest box (css px) on a W x H map: at most `maxWidth` wide (and half
 * the map), and no taller than keeps it under `share` of the map's area; `thumb`: the
 * thumbnail's side (0: no room for one), `lines`: how many metadata lines fit beside it.
 */
function cardBox(W, H, share = 0.15, maxWidth = 220) {
  const width = Math.max(60, Math.min(maxWidth, Math.floor(W / 2)));
  const height = Math.max(0, Math.floor((share * W * H) / width));
  const thumb = Math.min(64, height - 10);
  return { width, height, thumb: thumb >= 32 ? thumb : 0, lines: Math.max(1, Math.min(6, Math.floor((height - 10) / 15))) };
}

// ---------------------------------------------------------------------- drawing (canvas, no state)

const DIM_ALPHA = 80; // opacity (of 255) of the points outside the metadata filters

/**
 * Draw the top layer's marks on a cleared context (css px): lines from the query point to
 * the highlighted rows, the highlights (the best one largest, each in its own colour with a
 * thin rim), the reference square, the query star, the hover ring and the box/lasso being
 * dragged; under them the query's path (`path`, screen points; steps up to `pathStep`
 * stronger). `at(i)`: where row i is drawn; `theme`: colours from canvasTheme (default light).
 */
function drawMarks(ctx, { n, at, rgb, highlighted, query, reference, hovered, drag, path = null, pathStep = -1,
  theme = null }) {
  // no theme (the kernel-free report): the colours of a light page
  const t = theme || { bg: "#ffffff", mark: "rgba(17,17,17,0.9)", line: "rgba(0,0,0,0.25)",
    dragFill: "rgba(25,118,210,0.12)", hover: "#e91e63", ref: "#ff6d00", query: "#ffd600" };
  drawPath(ctx, path, pathStep);
  if (query && highlighted.length) {
    ctx.strokeStyle = t.line;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const i of highlighted) {
      if (i < 0 || i >= n) continue;
      ctx.moveTo(query[0], query[1]);
      ctx.lineTo(...at(i));
    }
    ctx.stroke();
  }
  for (let k = highlighted.length - 1; k >= 0; k--) {
    const i = highlighted[k];
    if (i < 0 || i >= n) continue;
    ctx.beginPath();
    const [hx, hy] = at(i);
    ctx.arc(hx, hy, k === 0 ? 7 : 5.5, 0, 2 * Math.PI);
    ctx.fillStyle = cssColor(rgb, i);
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = t.mark;
    ctx.stroke();
  }
  if (reference >= 0 && reference < n) {
    const [x, y] = at(reference);
    ctx.lineWidth = 3;
    ctx.strokeStyle = t.bg;
    ctx.strokeRect(x - 7, y - 7, 14, 14);
    ctx.lineWidth = 2;
    ctx.strokeStyle = t.ref;
    ctx.strokeRect(x - 7, y - 7, 14, 14);
  }
  if (query) {
    ctx.beginPath();
    for (const [x, y] of starPoints(query[0], query[1], 10, 4.5)) ctx.lineTo(x, y);
    ctx.closePath();
    ctx.fillStyle = t.query;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = t.mark;
    ctx.stroke();
  }
  if (hovered >= 0 && hovered < n) {
    ctx.beginPath();
    const [hx, hy] = at(hovered);
    ctx.arc(hx, hy, 6, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = t.hover;
    ctx.stroke();
  }
  if (drag && drag.kind !== "pan" && drag.moved) {
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = t.mark;
    ctx.fillStyle = t.dragFill;
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

/** Fill the legend: a colour bar {min, max, stops} for `colorBy`, else one swatch per category. */
function fillLegend(legend, colorbar, items, colorBy) {
  legend.replaceChildren();
  const bar = colorbar || {};
  if (bar.stops && bar.stops.length) {
    const lo = h("span", "cs-muted", Number(bar.min).toPrecision(3));
    const grad = h("span", "cs-colorbar");
    grad.style.background = `linear-gradient(to right, ${bar.stops.join(", ")})`;
    const hi = h("span", "cs-muted", Number(bar.max).toPrecision(3));
    legend.append(h("span", null, colorBy), lo, grad, hi);
    return;
  }
  for (const item of items || []) {
    const entry = h("span");
    const sw = h("span", "cs-swatch");
    sw.style.background = item.color;
    entry.append(sw, document.createTextNode(`${item.label} (${item.count})`));
    legend.append(entry);
  }
}

/** Show the model's title, colour columns (and choice) and select mode in the toolbar. */
function fillToolbar({ root, title, colorSelect, modes }, model) {
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

/** Size a canvas to a W x H css px stage at device pixel ratio `dpr`. */
function sizeCanvas(canvas, W, H, dpr) {
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  canvas.style.width = `${W}px`;
  canvas.style.height = `${H}px`;
}

const STATUS_NOTE_MS = 8000; // a note (UMAP replaced the PCA preview) shows this long

/**
 * The map's status line (UMAP progress while it computes in the background, the note when it
 * replaced the PCA preview, or why it failed), from the `map_status` traits; text only.
 */
function statusLine(stage, model) {
  const line = h("div", "cs-map-status");
  line.setAttribute("role", "status");
  Object.assign(line.style, {
    position: "absolute", left: "6px", bottom: "6px", zIndex: "5", padding: "1px 6px", borderRadius: "3px",
    fontSize: "11px", background: "var(--cs-bg)", border: "1px solid var(--cs-border)", pointerEvents: "none",
    maxWidth: "calc(100% - 24px)", overflowWrap: "anywhere",
  });
  stage.append(line);
  let timer = 0;
  function show() {
    clearTimeout(timer);
    const text = model.get("map_status") || "", kind = model.get("map_status_kind") || "";
    line.textContent = text;
    line.dataset.kind = kind;
    line.style.color = kind === "error" ? "var(--cs-warn)" : "var(--cs-fg2)";
    line.hidden = !text;
    if (kind === "note" && text) timer = setTimeout(() => { line.hidden = true; }, STATUS_NOTE_MS);
  }
  show();
  model.on("change:map_status change:map_status_kind", show);
  return () => { clearTimeout(timer); model.off("change:map_status change:map_status_kind", show); line.remove(); };
}

/** The map's elements: toolbar (title, colour menu, modes, reset, clear, info), stage (canvases, card), legend. */
function buildMap(model) {
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
    const b = button(label, tip);
    b.addEventListener("click", () => { model.set("select_mode", mode); model.save_changes(); });
    modes[mode] = b;
  }
  const reset = button("Reset view", "fit all points (double-click, 0)");
  const clear = button("Clear selection", "Escape");
  const info = h("span", "cs-muted");
  const play = button("▶ Play", "sweep the query's path from 0 to the maximum");
  play.dataset.role = "play";
  play.hidden = true;
  toolbar.append(title, colorLabel, modes.box, modes.lasso, modes.pan, reset, clear, play, info);

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
  return { root, title, colorSelect, modes, reset, clear, play, info, stage, base, sel, top, card, cardImg, cardMeta, legend };
}

function render({ model, el }) {
  const { root, title, colorSelect, modes, reset, clear, play, info, stage, base, sel, top, card, cardImg, cardMeta,
    legend } = buildMap(model);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);
  const unstatus = statusLine(stage, model);

  // ------------------------------------------------------------------ state
  let n = 0;
  let xy = new Float32Array(0); // data coordinates, interleaved
  let sxy = new Float32Array(0); // screen coordinates (css px), interleaved
  let rgb = null;
  let colors32 = new Uint32Array(0); // packed ABGR per point
  let bounds = { x0: 0, x1: 1, y0: 0, y1: 1 };
  let view = { scale: 1, cx: 0.5, cy: 0.5 }; // data centre shown at the stage centre
  let W = 0, H = 0, dpr = 1;
  let grid = null; // hover index over sxy; null: stale (rebuilt on the next hover look-up)
  let visible = 0; // points inside the stage at the last projection
  let density = false; // the base layer shows binned density (else points)
  let bins = null;
  let hovered = -1;
  let pointer = null; // the last pointer position to hover-test in the next frame
  let drag = null; // {kind, x0, y0, path, moved, view}
  let selected = new Int32Array(0);
  let dimmed = new Int32Array(0); // rows outside the metadata filters (drawn faded, under the others)
  let inside = null; // the other rows, when some are dimmed
  let sentSelection = null; // the message this view last sent (not decoded again when it echoes)
  let cardURL = null;
  let quiet = -1; // the row whose card a click, wheel, drag or Escape hid: it stays hidden while hovered
  let theme = null; // canvas colours from the CSS theme (readTheme)
  let frame = 0;
  let projected = null; // the view sxy (and the images in the caches) were made for; null: none yet
  const baseCache = document.createElement("canvas"); // the last full base / sel images (never shown)
  const selCache = document.createElement("canvas");
  let gesture = false; // a pan/zoom gesture is moving the last full image (see gestureStep)
  let settleTimer = 0;
  let lastFullMs = 0; // what the last full frame (projection + base + sel) cost
  // the query's path (positions and top-k per step, sent once per query) and Play's state:
  // `playing` {start, step} while it sweeps; `held` the step shown after it ended, until the
  // kernel's own results for that value arrive
  let path = { xy: new Float32Array(0), rows: null, values: new Float32Array(0) };
  let playing = null;
  let held = -1;
  // One pass per animation frame: input handlers only change `view` / flags and call
  // schedule(); the frame projects once, then redraws the layers that need it. `fast`: a
  // gesture frame (the cached images moved to the current view, the top layer redrawn).
  const dirty = { project: false, base: false, sel: false, top: false, hover: false, fast: false };

  function schedule(what) {
    for (const w of what) dirty[w] = true;
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    const started = performance.now();
    if (playing) tickPlay();
    if (dirty.project) {
      dirty.project = false;
      project();
      dirty.base = dirty.sel = dirty.top = true;
    }
    if (dirty.hover && !gesture) { dirty.hover = false; if (pointer && !drag) hoverAt(pointer[0], pointer[1]); }
    const plan = layerPlan(dirty);
    dirty.base = dirty.sel = dirty.top = dirty.fast = false;
    if (plan.base === "draw") drawBase(); else if (plan.base === "move") blit(base, baseCache);
    if (plan.sel === "draw") drawSel(); else if (plan.sel === "move") blit(sel, selCache);
    if (plan.top) drawTop();
    const crisp = sameView(projected, view);
    const ms = performance.now() - started;
    if (plan.full && crisp) lastFullMs = ms;
    countFrame(base.dataset, plan, crisp, ms, performance.now());
  }
  function viewChanged() { schedule(["project"]); }
  // a pan/zoom step: when full frames are slow (a density image, or many points), move the last
  // image this frame and draw the points again once input pauses
  function gestureStep() {
    if (!movesLastImage(density, lastFullMs, !!projected)) { gesture = false; viewChanged(); return; }
    gesture = true;
    clearTimeout(settleTimer);
    settleTimer = setTimeout(settle, SETTLE_MS);
    schedule(["fast"]);
  }
  function settle() {
    clearTimeout(settleTimer);
    settleTimer = 0;
    if (!gesture) return;
    gesture = false;
    viewChanged();
    schedule(["hover"]);
  }
  // draw a cached full image onto its layer, moved from the view it was made for to the current one
  function blit(layer, cache) {
    const ctx = layer.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, layer.width, layer.height);
    if (!projected || !cache.width) return;
    const { k, tx, ty } = viewTransform(projected, view, W, H);
    ctx.setTransform(k, 0, 0, k, tx * dpr, ty * dpr);
    ctx.drawImage(cache, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }
  // write a freshly drawn image into its cache and show it as it is for the current view
  function present(layer, cache, img) {
    cache.getContext("2d").putImageData(img, 0, 0);
    blit(layer, cache);
  }

  // ------------------------------------------------------------------ theme
  // The canvas takes its colours from the CSS theme (the --cs-* variables of cirscope.css,
  // which follow JupyterLab's --jp-* ones or the system's light/dark preference) and reads
  // them again when the theme changes: JupyterLab marks its theme on <body>
  // (data-jp-theme-light), the system through the prefers-color-scheme media query. A theme's
  // styles may land a little after its mark, so the check is repeated shortly after.
  const probe = document.createElement("canvas").getContext("2d");
  let themeKey = "";
  function cssValue(name, fallback) {
    probe.fillStyle = fallback;
    const value = getComputedStyle(root).getPropertyValue(name).trim();
    if (value) probe.fillStyle = value; // a value the canvas cannot read leaves the fallback
    return probe.fillStyle;
  }
  function readTheme() {
    const css = {
      bg: cssValue("--cs-bg", "#ffffff"), fg: cssValue("--cs-fg", "#1f1f1f"), fg2: cssValue("--cs-fg2", "#5f5f5f"),
      accent: cssValue("--cs-accent", "#1976d2"), hover: cssValue("--cs-hover", "#e91e63"),
      ref: cssValue("--cs-ref", "#ff6d00"), query: cssValue("--cs-query", "#ffd600"),
    };
    const key = JSON.stringify(css);
    if (theme && key === themeKey) return false;
    themeKey = key;
    theme = canvasTheme(css);
    root.dataset.theme = theme.dark ? "dark" : "light";
    return true;
  }
  function themeChanged() { if (readTheme()) schedule(["sel", "top"]); }
  function watchTheme() {
    let timers = [];
    const check = () => {
      timers.forEach(clearTimeout);
      themeChanged();
      timers = [150, 600, 1500].map((ms) => setTimeout(themeChanged, ms));
    };
    const marks = new MutationObserver(check);
    marks.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name", "class", "style"] });
    marks.observe(document.documentElement, { attributes: true, attributeFilter: ["class", "style", "data-theme"] });
    const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
    if (media) media.addEventListener("change", check);
    return () => {
      marks.disconnect();
      if (media) media.removeEventListener("change", check);
      timers.forEach(clearTimeout);
    };
  }
  const unwatchTheme = watchTheme();

  // ------------------------------------------------------------------ data
  function loadCoords() {
    const arr = decodeArray(model.get("coords"));
    xy = arr ? arr.data : new Float32Array(0);
    n = xy.length / 2;
    top.dataset.nPoints = String(n);
    base.dataset.nPoints = String(n);
    bounds = dataBounds(xy);
    fit();
    info.textContent = `${n.toLocaleString()} points`;
  }
  function loadColors() {
    const arr = decodeArray(model.get("colors"));
    rgb = arr && arr.data.length === 3 * n ? arr.data : null;
    colors32 = packColors(rgb, n);
    if (dimmed.length) fadeColors(colors32, dimmed);
  }
  function loadDimmed() {
    dimmed = decodeSelection(model.get("dimmed"), n);
    inside = dimmed.length ? complementRows(dimmed, n) : null;
    base.dataset.nDimmed = String(dimmed.length);
  }
  function loadSelection() {
    const msg = model.get("selected");
    if (msg && msg === sentSelection) return;
    sentSelection = null;
    selected = decodeSelection(msg, n);
    top.dataset.nSelected = String(selected.length);
  }
  // new coordinates: a zoomed-in view keeps the same points in view (the UMAP replacing the PCA preview)
  function newLayout() {
    const before = userMoved && W > 0 ? (ensureProjected(), sxy.slice()) : null;
    const nBefore = n;
    loadCoords();
    const kept = before && n === nBefore ? viewKeepingRows(before, xy, W, H) : null;
    if (kept) { view = kept; userMoved = true; }
  }
  // true once the user panned or zoomed: a resize then keeps the view (fit() clears it)
  let userMoved = false;
  function fit() { view = fitView(bounds, W, H); userMoved = false; }

  // ------------------------------------------------------------------ geometry
  function project() {
    if (sxy.length !== 2 * n) sxy = new Float32Array(2 * n);
    visible = projectPoints(xy, view, W, H, sxy);
    projected = { ...view };
    grid = null;
  }
  // sxy for the current view (hit tests, selections): projected now if a gesture left it behind
  function ensureProjected() {
    if (dirty.project || !sameView(projected, view)) {
      dirty.project = false;
      gesture = false; // this frame draws everything for the current view
      clearTimeout(settleTimer);
      project();
      schedule(["base", "sel", "top"]);
    }
  }
  // where row i is drawn under the current view (also mid-gesture, when sxy is behind)
  function screenOf(i) { return toScreen(view, W, H, xy[2 * i], xy[2 * i + 1]); }
  function nearest(px, py) {
    ensureProjected();
    if (!grid) {
      const started = performance.now();
      grid = buildGrid(sxy, W, H, CELL);
      top.dataset.indexBuilds = String(Number(top.dataset.indexBuilds || 0) + 1);
      top.dataset.indexMs = (performance.now() - started).toFixed(1);
    }
    return nearestPoint(grid, sxy, px, py, HOVER_RADIUS);
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
    projected = null; // the cached images are for the old size
    for (const c of [base, sel, top, baseCache, selCache]) sizeCanvas(c, W, H, dpr);
    view = viewAfterResize(view, userMoved, bounds, W, H);
    return true;
  }
  function radius() { return pointRadius(model.get("point_size"), visible); } // zoomed in on a few points: bigger dots
  function drawBase() {
    const started = performance.now();
    const ctx = base.getContext("2d");
    const bw = base.width, bh = base.height;
    if (!bw || !bh) return;
    const img = ctx.createImageData(bw, bh);
    const px = new Uint32Array(img.data.buffer);
    density = wantsDensity(visible, W, H, model.get("density_threshold"));
    if (density) {
      bins = binDensity(sxy, colors32, bw, bh, dpr, bins);
      densityPixels(bins, px);
    } else {
      bins = null;
      const stamp = discStamp(radius() * dpr);
      if (inside) { // the rows outside the filters first (faded), the others over them
        stampPoints(px, bw, bh, sxy, dpr, stamp, dimmed, (i) => colors32[i]);
        stampPoints(px, bw, bh, sxy, dpr, stamp, inside, (i) => colors32[i]);
      } else {
        stampPoints(px, bw, bh, sxy, dpr, stamp, null, (i) => colors32[i]);
      }
    }
    present(base, baseCache, img);
    base.dataset.mode = density ? "density" : "points";
    base.dataset.visible = String(visible);
    base.dataset.drawn = String(Number(base.dataset.drawn || 0) + 1);
    base.dataset.drawMs = (performance.now() - started).toFixed(1);
  }
  function drawSel() {
    const ctx = selCache.getContext("2d");
    ctx.clearRect(0, 0, selCache.width, selCache.height);
    if (!selected.length) { blit(sel, selCache); return; }
    // dim everything (the theme's background, translucent), then redraw the selected points in
    // their own colours (thinly ringed when a few are drawn as points): one pixel pass, fine for 1M rows
    const bw = sel.width, bh = sel.height;
    const img = ctx.createImageData(bw, bh);
    const px = new Uint32Array(img.data.buffer);
    px.fill(theme.veil);
    const inRange = rowsInRange(selected, n);
    const discs = selectionDiscs(density, selected.length, inRange.length, radius(), dpr);
    if (discs.ring) stampPoints(px, bw, bh, sxy, dpr, discStamp(discs.ring), inRange, () => theme.ring32);
    stampPoints(px, bw, bh, sxy, dpr, discStamp(discs.fill), inRange, (i) => colors32[i]);
    present(sel, selCache, img);
  }
  function drawTop() {
    const ctx = top.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, top.width, top.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const step = playing ? playing.step : held;
    const hl = decodeArray(model.get("highlighted"));
    let highlighted = hl ? hl.data : new Int32Array(0);
    const q = model.get("query_point") || [];
    let query = q.length === 2 ? toScreen(view, W, H, q[0], q[1]) : null;
    if (step >= 0) { // Play: the path's own top-k and position for this step
      highlighted = pathRowsAt(path.rows, step);
      query = toScreen(view, W, H, path.xy[2 * step], path.xy[2 * step + 1]);
    }
    const pts = [];
    for (let j = 0; j < path.xy.length >> 1; j++) pts.push(toScreen(view, W, H, path.xy[2 * j], path.xy[2 * j + 1]));
    drawMarks(ctx, { n, at: screenOf, rgb, highlighted, query, reference: model.get("reference"), hovered, drag,
      path: pts, pathStep: step, theme });
    top.dataset.pathSteps = String(pts.length);
    top.dataset.nHighlighted = String(highlighted.length);
    top.dataset.drawn = String(Number(top.dataset.drawn || 0) + 1);
  }
  // ------------------------------------------------------------------ the query's path and Play
  function loadPath() {
    const xy = decodeArray(model.get("path")), rows = decodeArray(model.get("path_rows"));
    const values = decodeArray(model.get("path_values"));
    path = { xy: xy ? xy.data : new Float32Array(0), rows, values: values ? values.data : new Float32Array(0) };
    playing = null;
    held = -1;
    const steps = path.xy.length >> 1;
    play.hidden = steps < 2;
    play.textContent = `▶ Play ${model.get("path_label") || ""}`.trim();
    root.dataset.playing = "false";
    schedule(["top"]);
  }
  function startPlay() {
    if ((path.xy.length >> 1) < 2) return;
    playing = { start: performance.now(), step: -1 };
    held = -1;
    root.dataset.playing = "true";
    top.dataset.playTrail = "";
    schedule(["top"]);
  }
  // called at the start of each frame while Play runs: which step to show now
  function tickPlay() {
    const steps = path.xy.length >> 1;
    const { step, done } = playStepAt(performance.now() - playing.start, steps, model.get("play_ms") / steps);
    if (step !== playing.step) {
      playing.step = step;
      dirty.top = true;
      const first = pathRowsAt(path.rows, step);
      top.dataset.playStep = String(step);
      top.dataset.playTrail += `${top.dataset.playTrail ? "," : ""}${first.length ? first[0] : -1}`;
    }
    if (!done) { frame = requestAnimationFrame(flush); return; }
    playing = null;
    held = step; // shown until the kernel's results for this value arrive
    root.dataset.playing = "false";
    model.send({ event: "path_end", step, value: path.values[step] });
  }
  function release() { if (held >= 0 && !playing) { held = -1; schedule(["top"]); } }
  play.addEventListener("click", startPlay);

  // ------------------------------------------------------------------ legend, toolbar
  function renderLegend() { fillLegend(legend, model.get("colorbar"), model.get("legend"), model.get("color_by")); }
  function renderToolbar() { fillToolbar({ root, title, colorSelect, modes }, model); }
  colorSelect.addEventListener("change", () => { model.set("color_by", colorSelect.value); model.save_changes(); });

  // ------------------------------------------------------------------ hover card
  // small (cardBox: at most 220 px wide and 15% of the map), beside the point, inside the map
  function showCard() {
    if (hovered < 0 || hovered === quiet || model.get("hover_row") !== hovered) { card.style.display = "none"; return; }
    const box = cardBox(W, H);
    cardURL = replaceImageURL(cardURL, model.get("hover_image"));
    if (cardURL && box.thumb) {
      cardImg.src = cardURL;
      cardImg.style.display = "";
      cardImg.style.width = cardImg.style.height = `${box.thumb}px`;
    } else cardImg.style.display = "none";
    fillMetadata(cardMeta, Object.fromEntries(Object.entries(model.get("hover_meta") || {}).slice(0, box.lines)));
    card.style.width = `${box.width}px`; // a set width: the card's size never depends on where it was last
    card.style.maxHeight = `${box.height}px`;
    const [x, y] = screenOf(hovered);
    card.style.display = "flex";
    card.style.left = `${cardLeft(x - 14, x + 14, card.offsetWidth, W)}px`;
    card.style.top = `${cardTop(y, card.offsetHeight, H)}px`;
  }
  // hide the card (a click, a wheel, a drag, Escape): it stays hidden until the pointer leaves that point
  function hideCard() {
    if (hovered < 0) { card.style.display = "none"; return; }
    const was = hovered;
    setHover(-1);
    quiet = was;
  }
  // the pointer is over row i (-1: none): a card hidden on purpose stays hidden while it stays there
  function hoverAt(px, py) {
    const i = nearest(px, py);
    if (i !== quiet) quiet = -1;
    setHover(i);
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
    const wait = hoverWait(lastHoverSent, performance.now());
    if (wait === 0) send(); else hoverTimer = setTimeout(send, wait);
  }

  // ------------------------------------------------------------------ pointer
  function local(ev) {
    const rect = top.getBoundingClientRect();
    return [ev.clientX - rect.left, ev.clientY - rect.top];
  }
  function finishSelection(add) {
    ensureProjected();
    const started = performance.now();
    let rowsOut = drag.kind === "box" ? selectBox(sxy, drag.x0, drag.y0, drag.x1, drag.y1) : selectPolygon(sxy, drag.path);
    if (add && selected.length) rowsOut = unionRows(selected, rowsOut, n);
    top.dataset.selectMs = (performance.now() - started).toFixed(1);
    setSelection(rowsOut);
  }
  function setSelection(rowsOut) {
    selected = rowsOut;
    top.dataset.nSelected = String(selected.length);
    const msg = encodeSelection(rowsOut, n);
    top.dataset.selectionWire = msg.dtype;
    sentSelection = msg; // our own change event: `selected` already holds these rows
    model.set("selected", msg);
    model.save_changes();
    schedule(["sel"]);
  }
  function onDown(ev) {
    const kind = dragKind(ev.button, model.get("select_mode"));
    if (!kind) return;
    const [x, y] = local(ev);
    drag = { kind, x0: x, y0: y, x1: x, y1: y, path: [[x, y]], moved: false, view: { ...view }, add: ev.shiftKey };
    hideCard();
    try { top.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic pointer has nothing to capture */ }
    root.focus({ preventScroll: true });
    ev.preventDefault();
  }
  function onMove(ev) {
    const [x, y] = local(ev);
    pointer = [x, y];
    if (!drag) { schedule(["hover"]); return; } // hit-tested once per frame
    drag.x1 = x; drag.y1 = y;
    if (dragMoved(drag.x0, drag.y0, x, y)) drag.moved = true;
    if (drag.kind === "pan") {
      view = panView(drag, x, y);
      userMoved = true;
      gestureStep();
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
    if (d.kind === "pan") settle(); // the drag is over: draw the points again in the next frame
    schedule(["top"]);
  }
  function zoomBy(x, y, factor) {
    view = zoomAt(view, x, y, factor, W, H);
    userMoved = true;
  }
  function onWheel(ev) {
    ev.preventDefault();
    if (hovered >= 0) hideCard();
    const [x, y] = local(ev);
    zoomBy(x, y, wheelZoom(ev.deltaY));
    // a wheel zoom during a pan drag: re-anchor the drag at the pointer and the new view, so the
    // next pointer move pans from here at the new scale instead of jumping
    if (drag && drag.kind === "pan") { drag.x0 = drag.x1; drag.y0 = drag.y1; drag.view = { ...view }; }
    gestureStep();
  }
  function resetView() { fit(); gesture = false; clearTimeout(settleTimer); viewChanged(); }
  function onKey(ev) {
    if (ev.target !== root) return;
    const action = keyAction(ev.key);
    if (action === null) return;
    if (action === "clear") { hideCard(); setSelection(new Int32Array(0)); }
    else if (action === "reset") resetView();
    else { zoomBy(W / 2, H / 2, action); gestureStep(); }
    ev.preventDefault();
  }
  const onLeave = () => { pointer = null; quiet = -1; if (!drag) setHover(-1); };
  // Escape hides the card wherever the focus is (the notebook keeps its own use of the key)
  const onEscape = (ev) => { if (ev.key === "Escape" && card.style.display !== "none" && hovered >= 0) hideCard(); };
  window.addEventListener("keydown", onEscape, true);
  top.addEventListener("pointerdown", onDown);
  top.addEventListener("pointermove", onMove);
  top.addEventListener("pointerup", onUp);
  top.addEventListener("pointercancel", () => { drag = null; settle(); schedule(["top"]); });
  top.addEventListener("pointerleave", onLeave);
  top.addEventListener("wheel", onWheel, { passive: false });
  top.addEventListener("dblclick", resetView);
  root.addEventListener("keydown", onKey);
  reset.addEventListener("click", resetView);
  clear.addEventListener("click", () => setSelection(new Int32Array(0)));

  // ------------------------------------------------------------------ model events
  const unlisten = listen(model, {
    "change:coords": () => { newLayout(); loadDimmed(); loadColors(); loadSelection(); gesture = false; viewChanged(); },
    "change:dimmed": () => { loadDimmed(); loadColors(); schedule(["base", "sel", "top"]); },
    "change:colors": () => { loadColors(); schedule(["base", "top"]); },
    "change:legend change:colorbar": renderLegend,
    "change:color_columns change:color_by change:select_mode change:title": renderToolbar,
    "change:highlighted change:query_point change:reference": () => { release(); schedule(["top"]); },
    "change:path change:path_rows change:path_values change:path_label": loadPath,
    "change:selected": () => { loadSelection(); schedule(["sel"]); },
    "change:hover_row change:hover_meta change:hover_image": showCard,
    "change:point_size change:density_threshold": () => schedule(["base", "sel"]),
    "change:height": () => { if (resize()) viewChanged(); },
  });

  // where a row is drawn (css px inside the canvas), for automation and tests: [x, y] or null
  top.pointPosition = (i) => {
    ensureProjected();
    return i >= 0 && i < n ? [sxy[2 * i], sxy[2 * i + 1]] : null;
  };

  // (also when the map is first attached: the theme can be read only then)
  const observer = new ResizeObserver(() => { themeChanged(); if (resize()) viewChanged(); });
  observer.observe(stage);
  renderToolbar();
  renderLegend();
  readTheme();
  resize();
  loadCoords();
  loadDimmed();
  loadColors();
  loadSelection();
  loadPath();
  viewChanged();
  root.dataset.ready = "true";

  return () => {
    unwatchKernel();
    unstatus();
    unwatchTheme();
    window.removeEventListener("keydown", onEscape, true);
    unlisten();
    observer.disconnect();
    if (frame) cancelAnimationFrame(frame);
    clearTimeout(hoverTimer);
    clearTimeout(settleTimer);
    if (cardURL) URL.revokeObjectURL(cardURL);
    root.remove();
  };
}

export default { render };
// the helpers, for tests in node (anywidget uses the default export only)
export {
  autoRadius, binDensity, blendOver, buildGrid, canvasTheme, cardBox, cardLeft, cardTop, complementRows, countFrame,
  cssColor, dataBounds, decodeArray, decodeSelection, densityPixels, discStamp, dragKind, dragMoved, drawMarks,
  encodeArray, encodeSelection, fadeColors, fitView, hoverWait, isDarkColor, keyAction, layerPlan, movesLastImage,
  nearestPoint, packColors, packRGBA, panView, parseColor, pathRowsAt, playStepAt, pointInPolygon, pointRadius,
  projectPoints, rowsInRange, sameView, selectBox,
  selectionDiscs, selectPolygon, stampPoints, starPoints, toScreen, unionRows, useBitmask, viewAfterResize,
  viewKeepingRows, viewTransform, wantsDensity, wheelZoom, zoomAt,
};
