// cirscope NeighborGrid: thumbnails with rank, score and a metadata card; click (or Enter) picks one.
// Keyboard: arrows / Home / End move a visible focus ring, Enter picks, i or Space asks for the
// details (the ⓘ button does too, when the `details` trait is on), Escape asks to close them.
//
// Thumbnails arrive as binary buffers (DataView) and are shown through Blob URLs; every
// text (ids, metadata, captions) is inserted with textContent, never parsed as HTML.
// Arrays come from Python as {dtype, shape, data: DataView} (see cirscope/widgets/_codec.py).

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

const DECODE_WAIT_MS = 50; // swap in new cells once their images are decoded (or after this)

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-grid");
  const head = h("div", "cs-toolbar");
  const toggle = h("span", "cs-toggle");
  toggle.setAttribute("role", "group");
  toggle.setAttribute("aria-label", "what the grid shows");
  const showResults = button("Results");
  showResults.dataset.mode = "query";
  const showSelection = button();
  showSelection.dataset.mode = "selection";
  toggle.append(showResults, showSelection);
  const title = h("span", "cs-label");
  const hint = h("span", "cs-muted", "click or Enter: make it the reference");
  head.append(toggle, title, hint);
  // relevance feedback: marks per thumbnail (buttons, or r / n on a focused one) and Refine
  const fbBar = h("div", "cs-toolbar cs-feedback");
  const fbMethod = h("select");
  fbMethod.setAttribute("aria-label", "how Refine refines the query");
  for (const [value, label] of [["rocchio", "Rocchio (query vector)"], ["pdv", "PDV-aware (direction d)"]]) {
    const o = h("option", null, label);
    o.value = value;
    fbMethod.append(o);
  }
  const refineBtn = button("Refine", "Refine the query from the marks and search again");
  refineBtn.className = "cs-refine";
  const clearBtn = button("Clear marks");
  const fbCount = h("span", "cs-muted");
  const fbStatus = h("div", "cs-muted cs-feedback-status");
  fbStatus.setAttribute("role", "status");
  fbBar.append(h("span", "cs-label", "Feedback"), fbMethod, refineBtn, clearBtn, fbCount);
  const wrap = h("div", "cs-wrap");
  const cells = h("div", "cs-cells");
  cells.setAttribute("role", "list");
  const card = h("div", "cs-card");
  const cardTitle = h("div", "cs-card-title");
  const cardMeta = h("dl");
  card.append(cardTitle, cardMeta);
  const empty = h("div", "cs-muted cs-empty", "No images to show.");
  wrap.append(cells, empty);
  root.append(head, fbBar, fbStatus, wrap, card);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  let token = 0;
  let focusIndex = 0;

  function renderToolbar() {
    const mode = model.get("mode");
    root.dataset.mode = mode;
    toggle.style.display = model.get("show_toggle") ? "" : "none";
    const n = model.get("n_selected");
    showSelection.textContent = `${model.get("selection_label")} (${n.toLocaleString()})`;
    showSelection.disabled = n === 0 && mode !== "selection";
    for (const b of [showResults, showSelection]) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    title.textContent = model.get("title");
    root.style.setProperty("--cs-thumb", `${model.get("thumb_size")}px`);
    const maxHeight = model.get("max_height");
    wrap.style.maxHeight = maxHeight > 0 ? `${maxHeight}px` : "";
    wrap.style.overflowY = maxHeight > 0 ? "auto" : "";
  }

  // cells are kept per row (and thumbnail size) and reused: moving a slider mostly re-orders
  // the same images, which then need no new decoding
  let cache = new Map();

  function makeCell(url, id) {
    const cell = h("button", "cs-cell");
    cell.type = "button";
    cell.setAttribute("role", "listitem");
    const img = h("img");
    img.alt = id;
    img.draggable = false;
    if (url) img.src = url;
    cell._rank = h("span", "cs-rank");
    cell._scoreText = h("span", "cs-score");
    cell._note = h("span", "cs-note");
    cell._note.style.cssText = "font-size:11px;font-weight:600;font-variant-numeric:tabular-nums";
    const marks = h("span", "cs-marks");
    marks.style.cssText = "position:absolute;right:4px;top:4px;display:flex;gap:2px";
    for (const [mark, sym, label] of [["relevant", "\u2713", "relevant (r)"], ["not relevant", "\u2717", "not relevant (n)"]]) {
      const m = h("span", "cs-mark", sym);
      m.dataset.mark = mark;
      m.setAttribute("role", "button");
      m.setAttribute("aria-label", `mark ${label}`);
      m.title = `mark ${label}`;
      m.style.cssText = "cursor:pointer;font-size:12px;line-height:16px;width:16px;text-align:center;border-radius:3px;" +
        "background:var(--cs-bg,#fff);color:var(--cs-fg,#333);border:1px solid var(--cs-border-strong,#bbb)";
      marks.append(m);
    }
    cell._marks = marks;
    // the details button: a span (a button cannot hold a button), acted on by the cells' click handler
    const info = h("span", "cs-info", "i");
    info.setAttribute("role", "button");
    info.setAttribute("aria-label", "details (i)");
    info.title = "details: the image large, its metadata and neighbours (i or Space)";
    info.style.display = model.get("details") ? "" : "none";
    cell._info = info;
    cell.append(img, cell._rank, marks, info, cell._scoreText, cell._note, h("span", "cs-id", id));
    return cell;
  }

  function fillCell(cell, i, row, id, score, meta, note) {
    cell.dataset.row = String(row);
    cell.dataset.id = id;
    cell.dataset.rank = String(i + 1);
    cell.dataset.index = String(i);
    cell.tabIndex = i === focusIndex ? 0 : -1;
    cell.setAttribute("aria-label", score === null ? id : `rank ${i + 1}: ${id}, score ${score.toFixed(3)}`);
    cell._rank.textContent = `#${i + 1}`;
    cell._rank.style.display = score === null ? "none" : "";
    cell._scoreText.textContent = score === null ? "" : score.toFixed(3);
    cell._scoreText.style.display = score === null ? "none" : "";
    cell.classList.toggle("cs-is-ref", row === model.get("reference"));
    cell._meta = meta;
    cell._score = score;
    cell._note.textContent = note || "";
    cell._note.style.display = note ? "" : "none";
    const moved = /^(\d+) -> (\d+)$/.exec(note || "");
    cell._note.style.color = moved && Number(moved[2]) > Number(moved[1]) ? "var(--cs-warn,#d73027)" : "var(--cs-good,#1a9850)"; // down: red
    paintMark(cell);
  }

  // ------------------------------------------------------------------ feedback marks
  const MARK_COLORS = { relevant: "#1a9850", "not relevant": "#d73027" };
  function paintMark(cell) {
    const on = model.get("feedback");
    const mark = (model.get("marks") || {})[cell.dataset.row] || "";
    cell._marks.style.display = on ? "flex" : "none";
    cell.dataset.mark = mark;
    cell.style.boxShadow = on && mark ? `inset 0 0 0 3px ${MARK_COLORS[mark]}` : "";
    for (const m of cell._marks.children) {
      const active = on && m.dataset.mark === mark;
      m.style.background = active ? MARK_COLORS[mark] : "var(--cs-bg,#fff)";
      m.style.color = active ? "#fff" : "var(--cs-fg,#333)";
      m.setAttribute("aria-pressed", String(active));
    }
  }
  function toggleMark(row, mark) {
    const marks = { ...(model.get("marks") || {}) };
    if (marks[row] === mark) delete marks[row];
    else marks[row] = mark;
    model.set("marks", marks);
    model.save_changes();
  }
  function renderFeedback() {
    const on = model.get("feedback");
    fbBar.style.display = on ? "" : "none";
    fbStatus.style.display = on && model.get("feedback_status") ? "" : "none";
    fbStatus.textContent = model.get("feedback_status");
    fbMethod.value = model.get("feedback_method");
    const marks = Object.values(model.get("marks") || {});
    const rel = marks.filter((m) => m === "relevant").length;
    fbCount.textContent = `${rel} relevant, ${marks.length - rel} not relevant`;
    refineBtn.disabled = marks.length === 0;
    clearBtn.disabled = marks.length === 0;
    const details = model.get("details") ? "; i or Space (or its i button): details" : "";
    hint.textContent = (on ? "click: make it the reference; \u2713 / \u2717 (or r / n): mark" : "click or Enter: make it the reference") + details;
    for (const c of cells.children) {
      paintMark(c);
      c._info.style.display = model.get("details") ? "" : "none";
    }
  }
  fbMethod.addEventListener("change", () => { model.set("feedback_method", fbMethod.value); model.save_changes(); });
  refineBtn.addEventListener("click", () => model.send({ event: "refine" }));
  clearBtn.addEventListener("click", () => { model.set("marks", {}); model.save_changes(); });

  async function renderCells() {
    const mine = ++token;
    root.dataset.rendering = "true";
    const rowsArr = decodeArray(model.get("rows"));
    const rows = rowsArr ? rowsArr.data : new Int32Array(0);
    const ids = model.get("ids") || [];
    const thumbs = model.get("thumbnails") || [];
    const meta = model.get("metadata") || [];
    const notes = model.get("notes") || [];
    const sc = decodeArray(model.get("scores"));
    const scores = sc && sc.data.length === rows.length ? sc.data : null;
    const size = model.get("thumb_size");
    const next = new Map();
    const fresh = [];
    const built = [];
    if (focusIndex >= rows.length) focusIndex = 0;
    for (let i = 0; i < rows.length; i++) {
      const key = `${rows[i]}:${size}`;
      const id = String(ids[i] ?? rows[i]);
      let entry = next.has(key) ? null : cache.get(key);
      if (!entry) {
        const url = imageURL(thumbs[i]);
        entry = { url, cell: makeCell(url, id) };
        fresh.push(entry);
      }
      fillCell(entry.cell, i, rows[i], id, scores ? scores[i] : null, meta[i], notes[i]);
      if (!next.has(key)) next.set(key, entry);
      built.push(entry.cell);
    }
    // wait (briefly) for new images to decode so the grid swaps in one piece, without flicker
    const decodes = fresh.filter((e) => e.url).map((e) => e.cell.querySelector("img").decode().catch(() => null));
    if (decodes.length) await Promise.race([Promise.all(decodes), new Promise((r) => setTimeout(r, DECODE_WAIT_MS))]);
    if (mine !== token) {
      fresh.forEach((e) => e.url && URL.revokeObjectURL(e.url));
      return;
    }
    const hadFocus = cells.contains(document.activeElement);
    cells.replaceChildren(...built);
    for (const [key, entry] of cache) if (next.get(key) !== entry && entry.url) URL.revokeObjectURL(entry.url);
    cache = next;
    empty.style.display = rows.length ? "none" : "";
    hideCard();
    if (hadFocus && built.length) built[focusIndex].focus({ preventScroll: true });
    root.dataset.count = String(rows.length);
    root.dataset.version = String(model.get("version"));
    root.dataset.rendering = "false";
  }

  function markReference() {
    const ref = model.get("reference");
    for (const c of cells.children) c.classList.toggle("cs-is-ref", Number(c.dataset.row) === ref);
  }

  // ------------------------------------------------------------------ hover card
  function showCard(cell) {
    cardTitle.textContent = cell._score === null ? cell.dataset.id : `${cell.dataset.id} · score ${cell._score.toFixed(4)}`;
    fillMetadata(cardMeta, cell._meta);
    card.style.display = "block";
    const W = root.clientWidth;
    const x = wrap.offsetLeft + cell.offsetLeft, y = wrap.offsetTop + cell.offsetTop - wrap.scrollTop;
    card.style.left = `${cardLeft(x - 6, x + cell.offsetWidth + 6, card.offsetWidth, W)}px`;
    card.style.top = `${y}px`;
  }
  function hideCard() { card.style.display = "none"; }

  // ------------------------------------------------------------------ events
  function cellOf(ev) {
    const c = ev.target.closest ? ev.target.closest(".cs-cell") : null;
    return c && cells.contains(c) ? c : null;
  }
  cells.addEventListener("click", (ev) => {
    const c = cellOf(ev);
    if (!c) return;
    const markEl = ev.target.closest ? ev.target.closest(".cs-mark") : null;
    if (markEl && model.get("feedback")) {
      ev.preventDefault();
      toggleMark(c.dataset.row, markEl.dataset.mark);
      return;
    }
    if (ev.target.closest && ev.target.closest(".cs-info") && model.get("details")) {
      ev.preventDefault();
      focusIndex = Number(c.dataset.index);
      model.send({ event: "detail", row: Number(c.dataset.row) });
      return;
    }
    focusIndex = Number(c.dataset.index);
    model.send({ event: "click", row: Number(c.dataset.row) });
  });
  cells.addEventListener("mouseover", (ev) => { const c = cellOf(ev); if (c) showCard(c); });
  cells.addEventListener("mouseleave", hideCard);
  cells.addEventListener("focusin", (ev) => { const c = cellOf(ev); if (c) showCard(c); });
  cells.addEventListener("focusout", hideCard);
  cells.addEventListener("keydown", (ev) => {
    const c = cellOf(ev);
    if (!c) return;
    const list = [...cells.children];
    const i = list.indexOf(c);
    const perRow = Math.max(1, list.filter((x) => x.offsetTop === list[0].offsetTop).length);
    const mark = { r: "relevant", n: "not relevant" }[ev.key];
    if (mark && model.get("feedback") && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault();
      toggleMark(c.dataset.row, mark);
      return;
    }
    const plain = !ev.ctrlKey && !ev.metaKey && !ev.altKey;
    if (ev.key === "Enter" && plain) {
      ev.preventDefault(); // handled here: the notebook's Enter (edit the cell) must not take it
      c.click();
      return;
    }
    if ((ev.key === "i" || ev.key === " ") && plain && model.get("details")) {
      ev.preventDefault(); // Space would also click the cell (make it the reference): see keyup
      model.send({ event: "detail", row: Number(c.dataset.row) });
      return;
    }
    if (ev.key === "Escape") {
      model.send({ event: "escape" });
      // with a selection to clear, the grid keeps Escape (else the notebook takes it: command mode)
      if (model.get("n_selected") > 0) { ev.preventDefault(); ev.stopPropagation(); }
      return;
    }
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow, Home: -i, End: list.length - 1 - i }[ev.key];
    if (step === undefined) return;
    const j = Math.min(Math.max(i + step, 0), list.length - 1);
    ev.preventDefault();
    list[i].tabIndex = -1;
    list[j].tabIndex = 0;
    focusIndex = j;
    list[j].focus();
  });
  // a notebook in command mode reads plain letters as commands (b: add a cell, d d: delete it):
  // letters typed on the grid stay in the grid
  cells.addEventListener("keydown", (ev) => {
    if (ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey && !ev.altKey && cellOf(ev)) ev.stopPropagation();
  });
  // Space on a button clicks it when the key comes up: with details on, Space asks for them instead
  cells.addEventListener("keyup", (ev) => { if (ev.key === " " && cellOf(ev) && model.get("details")) ev.preventDefault(); });
  for (const b of [showResults, showSelection]) {
    b.addEventListener("click", () => { model.set("mode", b.dataset.mode); model.save_changes(); });
  }

  // Render once the whole update is applied, never from `change:version` itself: marimo's model
  // sets an update's traits one at a time and fires each `change:` at once, in the order of
  // Python's set of changed names, so `version` can come before the same update's `rows`, `ids`
  // and `thumbnails` (the grid kept its old rows, or showed old thumbnails, while its title
  // changed). `version` stays the only trigger: a message with new `rows` alone (a Python
  // `grid.rows = ...` sends it before the binding's full update) must not pair them with old
  // thumbnails, which the cell cache would then keep.
  let cellsQueued = false;
  let closed = false;
  function queueCells() {
    if (cellsQueued) return;
    cellsQueued = true;
    queueMicrotask(() => { cellsQueued = false; if (!closed) renderCells(); });
  }
  const handlers = {
    "change:version": queueCells,
    "change:feedback change:marks change:feedback_method change:feedback_status change:details": renderFeedback,
    "change:reference": markReference,
    "change:mode change:show_toggle change:n_selected change:selection_label change:title change:thumb_size change:max_height": renderToolbar,
  };
  const unlisten = listen(model, handlers);
  renderToolbar();
  renderFeedback();
  renderCells();
  root.dataset.ready = "true";

  return () => {
    closed = true;
    unwatchKernel();
    unlisten();
    token++;
    for (const entry of cache.values()) if (entry.url) URL.revokeObjectURL(entry.url);
    root.remove();
  };
}

export default { render };
