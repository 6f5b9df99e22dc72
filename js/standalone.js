/**
 * The kernel-free report that `cirscope.to_html` writes (cirscope/widgets/_standalone.py).
 *
 * The page runs this file after the map's pure helpers, copied from js/map_view.js when the
 * page is written (MAP_HELPERS in cirscope/widgets/_standalone_page.py: fitView, zoomAt,
 * projectPoints, buildGrid, nearestPoint, stampPoints, drawMarks, fillLegend, ...), so the map
 * is drawn by the widget's own code. The data is the JSON in the page's element #cs-data: results
 * precomputed for every slider setting of each saved query. Every text from the data is set
 * as textContent (or an attribute value), never parsed as HTML.
 */

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

const TYPED = { uint8: Uint8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array };
const DENSITY_THRESHOLD = 200000; // as MapView's default: more points in view draw a density image
const SCORE_SCALE = 32767; // cosines are stored as round(score * SCORE_SCALE) in int16

// ---------------------------------------------------------------------- pure helpers

/** The typed array of a {dtype, data} message (data: little-endian bytes in base64). */
function decodeTyped(msg) {
  const Type = TYPED[msg.dtype];
  if (!Type) throw new Error(`cirscope report: unsupported dtype ${msg.dtype}`);
  const bin = atob(msg.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Type(bytes.buffer);
}

/** Interleaved data coordinates from uint16 steps over `frame` {x0, y0, span, levels}. */
function decodeCoords(q, frame) {
  const out = new Float32Array(q.length);
  const step = frame.span / frame.levels;
  for (let i = 0; i < q.length; i += 2) {
    out[i] = frame.x0 + q[i] * step;
    out[i + 1] = frame.y0 + q[i + 1] * step;
  }
  return out;
}

/** The grid point (row-major, as Python's itertools.product walks the axes) of one index per axis. */
function gridPoint(sizes, index) {
  let p = 0;
  for (let a = 0; a < sizes.length; a++) p = p * sizes[a] + index[a];
  return p;
}

/** The shown value of a slider setting (no float noise such as 0.30000000000000004). */
function formatValue(v) {
  return String(Number(Number(v).toPrecision(6)));
}

/** The results of decoded query `q` at grid point `p`: {rows, scores} (padding left out). */
function resultsAt(q, p) {
  const rows = [], scores = [];
  for (let j = p * q.k; j < (p + 1) * q.k; j++) {
    if (q.rowsArr[j] === q.empty) continue;
    rows.push(q.rowsArr[j]);
    scores.push(q.scoresArr[j] / SCORE_SCALE);
  }
  return { rows, scores };
}

// ---------------------------------------------------------------------- page parts

/** An <img> of row `row`'s thumbnail (a data: URI), or a grey box saying there is none. */
function thumbElement(data, row, size) {
  const idx = row >= 0 ? data.thumbIndex[row] : -1;
  if (idx < 0) {
    const box = h("div", "cs-noimg", "no image");
    return box;
  }
  const img = h("img");
  img.alt = "";
  img.width = size;
  img.height = size;
  img.src = `data:${data.thumbs.type};base64,${data.thumbs.blobs[idx]}`;
  return img;
}

/** The metadata of `row` as {column: text}: id first, then the shown columns. */
function rowText(data, row) {
  const out = { id: data.ids[row] };
  for (const c of data.columnsDecoded) out[c.name] = c.labels[c.codes[row]];
  return out;
}

/** A definition list of `meta` {key: value} (text only). */
function fillDl(dl, meta) {
  dl.replaceChildren();
  for (const [key, value] of Object.entries(meta)) dl.append(h("dt", null, key), h("dd", null, String(value)));
}

/** The map: canvases, hover card, legend; pans (drag), zooms (wheel, +/-), resets (0, double-click). */
function mapPart(data) {
  const root = h("div", "cirscope-map");
  root.tabIndex = 0;
  const toolbar = h("div", "cs-toolbar");
  const reset = button("Reset view", "fit all points (double-click, 0)");
  const info = h("span", "cs-muted", `${data.n.toLocaleString()} points; drag to pan, wheel or +/- to zoom`);
  toolbar.append(h("span", "cs-label", "Map"), reset, info);
  const stage = h("div", "cs-stage");
  const base = h("canvas", "cs-base");
  const top = h("canvas", "cs-top");
  top.setAttribute("role", "img");
  top.setAttribute("aria-label", "map of the gallery");
  const card = h("div", "cs-card");
  const cardTitle = h("div", "cs-card-title");
  const cardImgSlot = h("div");
  const cardMeta = h("dl");
  card.append(cardImgSlot, cardTitle, cardMeta);
  stage.append(base, top, card);
  const legend = h("div", "cs-legend");
  root.append(toolbar, stage, legend);
  fillLegend(legend, data.map.colorbar, data.map.legend, data.map.color_by);

  const xy = decodeCoords(decodeTyped(data.map.xy), data.map.frame);
  const n = xy.length >> 1;
  const rgb = data.map.rgb ? decodeTyped(data.map.rgb) : null;
  const colors32 = packColors(rgb, n);
  const bounds = dataBounds(xy);
  const H = data.map.height;
  let W = 0, dpr = 1, view = null, userMoved = false;
  let sxy = new Float32Array(2 * n), visible = 0, grid = null;
  let hovered = -1, drag = null, frame = 0;
  let marks = { rows: [], reference: -1, place: null };

  function resize() {
    const w = Math.max(1, Math.round(stage.getBoundingClientRect().width));
    const ratio = window.devicePixelRatio || 1;
    stage.style.height = `${H}px`;
    if (w === W && ratio === dpr && view) return;
    W = w; dpr = ratio;
    for (const c of [base, top]) sizeCanvas(c, W, H, dpr);
    view = viewAfterResize(view, userMoved, bounds, W, H);
    schedule();
  }
  function schedule() { if (!frame) frame = requestAnimationFrame(draw); }
  function draw() {
    frame = 0;
    visible = projectPoints(xy, view, W, H, sxy);
    grid = null;
    const ctx = base.getContext("2d");
    const img = ctx.createImageData(base.width, base.height);
    const px = new Uint32Array(img.data.buffer);
    const density = wantsDensity(visible, W, H, DENSITY_THRESHOLD);
    if (density) densityPixels(binDensity(sxy, colors32, base.width, base.height, dpr, null), px);
    else stampPoints(px, base.width, base.height, sxy, dpr, discStamp(pointRadius(0, visible) * dpr), null, (i) => colors32[i]);
    ctx.putImageData(img, 0, 0);
    drawTop();
    Object.assign(stage.dataset, { scale: String(view.scale), cx: String(view.cx), cy: String(view.cy),
      visible: String(visible), mode: density ? "density" : "points",
      frames: String(Number(stage.dataset.frames || 0) + 1) });
  }
  function drawTop() {
    const ctx = top.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, top.width, top.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const at = (i) => toScreen(view, W, H, xy[2 * i], xy[2 * i + 1]);
    const query = marks.place ? toScreen(view, W, H, marks.place[0], marks.place[1]) : null;
    drawMarks(ctx, { n, at, rgb, highlighted: marks.rows, query, reference: marks.reference, hovered, drag: null });
  }
  function local(ev) {
    const rect = top.getBoundingClientRect();
    return [ev.clientX - rect.left, ev.clientY - rect.top];
  }
  function setHover(i) {
    if (i === hovered) return;
    hovered = i;
    stage.dataset.hovered = String(i);
    drawTop();
    if (i < 0) { card.style.display = "none"; return; }
    const meta = rowText(data, i);
    cardTitle.textContent = meta.id;
    delete meta.id;
    cardImgSlot.replaceChildren(thumbElement(data, i, 96));
    fillDl(cardMeta, { row: i, ...meta });
    card.style.display = "block";
    const [x, y] = at(i);
    card.style.left = `${cardLeft(x - 14, x + 14, card.offsetWidth, W)}px`;
    card.style.top = `${cardTop(y, card.offsetHeight, H)}px`;
  }
  function at(i) { return toScreen(view, W, H, xy[2 * i], xy[2 * i + 1]); }
  function hoverAt(x, y) {
    if (frame) { cancelAnimationFrame(frame); draw(); } // hit-test against the current view
    if (!grid) grid = buildGrid(sxy, W, H, CELL);
    setHover(nearestPoint(grid, sxy, x, y, HOVER_RADIUS));
  }
  function zoomBy(x, y, factor) { view = zoomAt(view, x, y, factor, W, H); userMoved = true; schedule(); }
  function resetView() { view = fitView(bounds, W, H); userMoved = false; schedule(); }

  top.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 && ev.button !== 1) return;
    const [x, y] = local(ev);
    drag = { x0: x, y0: y, view: { ...view } };
    try { top.setPointerCapture(ev.pointerId); } catch (err) { /* a synthetic pointer has nothing to capture */ }
    root.focus({ preventScroll: true });
    ev.preventDefault();
  });
  top.addEventListener("pointermove", (ev) => {
    const [x, y] = local(ev);
    if (!drag) { hoverAt(x, y); return; }
    if (!dragMoved(drag.x0, drag.y0, x, y) && !drag.moved) return;
    drag.moved = true;
    setHover(-1);
    view = panView(drag, x, y);
    userMoved = true;
    schedule();
  });
  const endDrag = () => { drag = null; };
  top.addEventListener("pointerup", endDrag);
  top.addEventListener("pointercancel", endDrag);
  top.addEventListener("pointerleave", () => { if (!drag) setHover(-1); });
  top.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [x, y] = local(ev);
    zoomBy(x, y, wheelZoom(ev.deltaY));
  }, { passive: false });
  top.addEventListener("dblclick", resetView);
  reset.addEventListener("click", resetView);
  root.addEventListener("keydown", (ev) => {
    const action = keyAction(ev.key);
    if (action === null || action === "clear") return;
    if (action === "reset") resetView(); else zoomBy(W / 2, H / 2, action);
    ev.preventDefault();
  });
  new ResizeObserver(resize).observe(stage);

  return {
    root,
    start: resize,
    setMarks(m) { marks = m; if (view) drawTop(); },
    /** Where row i is drawn, in css px inside the map's canvas (for automation and tests). */
    pointPosition(i) { return i >= 0 && i < n ? at(i) : null; },
    canvas: top,
  };
}

/** The query side: the saved-query menu, the reference and texts, the method and its sliders. */
function queryPart(data, onChange) {
  const root = h("div", "cirscope-query");
  const chooserRow = h("label", "cs-row cs-chooser");
  const chooser = h("select");
  chooser.setAttribute("aria-label", "saved query");
  data.queries.forEach((q, i) => {
    const o = h("option", null, `${i + 1}. ${q.label}`);
    o.value = String(i);
    chooser.append(o);
  });
  chooserRow.append(h("span", "cs-label", "Saved query"), chooser);
  const ref = h("div", "cs-ref");
  const texts = h("dl", "cs-texts");
  const method = h("div");
  const formula = h("div", "cs-formula");
  const sliders = h("div", "cs-sliders");
  const note = h("div", "cs-muted cs-grid-note");
  const status = h("div", "cs-status cs-muted");
  root.append(chooserRow, ref, texts, method, formula, sliders, note, status);
  if (!data.queries.length) {
    chooser.disabled = true;
    status.textContent = "This report holds no saved query: pass queries= to to_html (or set a query in the Explorer).";
  }
  chooser.addEventListener("change", () => onChange({ query: Number(chooser.value) }));

  let shown = null; // the query whose sliders are built
  const outputs = [];
  function build(q) {
    shown = q;
    chooser.value = String(data.queries.indexOf(q));
    ref.replaceChildren();
    if (q.reference_row >= 0) {
      ref.append(thumbElement(data, q.reference_row, 96));
      const about = h("div", "cs-ref-info");
      about.append(h("div", "cs-label", "Reference"), h("div", "cs-ref-id", `${data.ids[q.reference_row]} (row ${q.reference_row})`));
      ref.append(about);
    } else if (q.reference) {
      ref.append(h("div", "cs-ref-id", `Reference: ${q.reference}`));
    }
    const rows = [];
    if (q.text) rows.push([q.kind === "composed" ? "Modification" : "Text", q.text]);
    if (q.reference_text) rows.push([`Reference text (${q.reference_text_source})`, q.reference_text]);
    if (q.composed_text) rows.push([`Composed text (${q.composed_text_source})`, q.composed_text]);
    texts.replaceChildren();
    for (const [k, v] of rows) texts.append(h("dt", "cs-muted", k), h("dd", "cs-text-value", v));
    method.replaceChildren(h("span", "cs-label", "Method "), h("span", null, q.method_title));
    method.title = q.method_name;
    formula.textContent = q.formula;
    sliders.replaceChildren();
    outputs.length = 0;
    q.axes.forEach((axis, a) => {
      const row = h("label", "cs-slider");
      row.title = axis.doc;
      const input = h("input");
      input.type = "range";
      input.min = "0";
      input.max = String(axis.values.length - 1);
      input.step = "1";
      input.dataset.param = axis.name;
      input.setAttribute("aria-label", axis.name);
      const out = h("output");
      input.addEventListener("input", () => onChange({ axis: a, value: Number(input.value) }));
      row.append(h("span", null, axis.name), input, out);
      sliders.append(row);
      outputs.push([input, out, axis]);
    });
    const sizes = q.axes.map((axis) => axis.values.length);
    note.textContent = sizes.length
      ? `Sliders snap to the precomputed values: ${sizes.join(" \u00d7 ")} = ${q.points} settings, each searched in Python when the report was written.`
      : "This query has no sliders.";
  }
  /** Show query `q` with its sliders at `index` (one value index per axis). */
  function show(q, index) {
    if (q !== shown) build(q);
    outputs.forEach(([input, out, axis], a) => {
      input.value = String(index[a]);
      out.textContent = formatValue(axis.values[index[a]]);
    });
  }
  return { root, show };
}

/** The results: rank, thumbnail, score and id of each of the top k. */
function resultsPart(data) {
  const root = h("div", "cirscope-grid");
  const title = h("div", "cs-label");
  const cells = h("div", "cs-cells");
  cells.style.setProperty("--cs-thumb", "96px");
  root.append(title, cells);
  function show(q, point, params) {
    const { rows, scores } = resultsAt(q, point);
    const where = params.map(([name, v]) => `${name} ${formatValue(v)}`).join(", ");
    title.textContent = `Top ${rows.length}: ${q.method_title}${where ? ` at ${where}` : ""}`;
    cells.replaceChildren();
    rows.forEach((row, r) => {
      const cell = h("figure", "cs-cell");
      cell.dataset.row = String(row);
      cell.title = data.ids[row];
      cell.append(thumbElement(data, row, 96), h("span", "cs-rank", String(r + 1)),
        h("span", "cs-score", scores[r].toFixed(3)), h("span", "cs-id", data.ids[row]));
      cells.append(cell);
    });
    if (!rows.length) cells.append(h("div", "cs-empty cs-muted", "No results."));
    root.dataset.point = String(point);
    root.dataset.rows = rows.join(",");
    return rows;
  }
  return { root, show };
}

// ---------------------------------------------------------------------- the page

function start(data, page) {
  data.ids = data.ids || [];
  data.thumbIndex = data.thumbs && data.thumbs.index ? decodeTyped(data.thumbs.index) : new Int32Array(data.n).fill(-1);
  data.columnsDecoded = data.columns.map((c) => ({ name: c.name, labels: c.labels, codes: decodeTyped(c.codes) }));
  for (const q of data.queries) {
    q.rowsArr = decodeTyped(q.rows);
    q.scoresArr = decodeTyped(q.scores);
    q.placeArr = decodeCoords(decodeTyped(q.place), data.map.frame);
    q.placedArr = decodeTyped(q.placed);
    q.index = q.start.slice();
  }
  page.replaceChildren();
  const about = data.about;
  const thumbs = data.thumbs;
  const thumbNote = thumbs.count === data.n ? "thumbnails of every image" : `thumbnails of ${thumbs.count.toLocaleString()} images`;
  page.append(h("h1", null, data.title),
    h("p", "cs-about cs-muted", `${about.images.toLocaleString()} images, model ${about.model || "(none)"}, ` +
      `${data.queries.length} saved ${data.queries.length === 1 ? "query" : "queries"}, ${about.settings.toLocaleString()} precomputed slider settings, ${thumbNote}. ` +
      `Written ${about.written} by cirscope ${about.version}. No Python kernel: results were searched when the report was written.`));
  const topRow = h("div", "cs-report-top");
  const map = mapPart(data);
  const state = { query: 0 };
  const results = resultsPart(data);
  const panel = queryPart(data, (change) => {
    if (change.query !== undefined) state.query = change.query;
    else data.queries[state.query].index[change.axis] = change.value;
    update();
  });
  topRow.append(map.root, panel.root);
  page.append(topRow, results.root);

  function update() {
    const q = data.queries[state.query];
    if (!q) { map.setMarks({ rows: [], reference: -1, place: null }); return; }
    const sizes = q.axes.map((a) => a.values.length);
    const point = gridPoint(sizes, q.index);
    const params = q.axes.map((a, i) => [a.name, a.values[q.index[i]]]);
    panel.show(q, q.index);
    const rows = results.show(q, point, params);
    const place = q.placedArr[point] ? [q.placeArr[2 * point], q.placeArr[2 * point + 1]] : null;
    map.setMarks({ rows, reference: q.reference_row, place });
    page.dataset.query = String(state.query);
    page.dataset.point = String(point);
  }
  map.start();
  update();
  // for automation and tests: where a row is drawn on the map, in page coordinates
  window.cirscopeReport = {
    pointOnPage(i) {
      const p = map.pointPosition(i);
      if (!p) return null;
      const rect = map.canvas.getBoundingClientRect();
      return [rect.left + p[0], rect.top + p[1]];
    },
  };
  page.dataset.ready = "true";
}

start(JSON.parse(document.getElementById("cs-data").textContent), document.getElementById("cs-report"));
