// cirscope DetailView: one image large, every metadata value as text, its nearest neighbours,
// and (in an Explorer) buttons to make it the reference or add it to the map's selection.
//
// Inside an Explorer the view lies over the right side of the explore pane, and Escape
// anywhere in the Explorer closes it while it is open (before the grid or the map see the
// key); on its own it shows in place. Focus moves into the view when it opens from a key or
// a click in the Explorer and goes back where it was when it closes. Every text from user
// data (ids, column names, values, sources) is set with textContent, never parsed as HTML.

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

/** The table rows of the metadata: one [name, value] row per field, missing values marked. */
function fieldRows(fields) {
  return (fields || []).map((f) => {
    const tr = h("tr");
    const th = h("th", null, String(f.name));
    th.scope = "row";
    const missing = f.kind === "missing";
    const td = h("td", null, missing ? "missing" : String(f.value));
    td.dataset.kind = f.kind || "text";
    if (missing) td.title = "no value in this row";
    tr.append(th, td);
    return tr;
  });
}

function render({ model, el }) {
  const scope = el.closest ? el.closest(".cirscope-explorer") : null;
  const root = h("div", `cirscope cirscope-detail${scope ? " cs-detail-overlay" : ""}`);
  const panel = h("div", "cs-detail-panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", "Image details");
  panel.tabIndex = -1;
  const head = h("div", "cs-detail-head");
  const title = h("span", "cs-detail-title");
  const closeBtn = button("\u00d7", "Close the details (Escape)");
  closeBtn.className = "cs-detail-close";
  closeBtn.setAttribute("aria-label", "Close the details (Escape)");
  head.append(title, closeBtn);
  const img = h("img", "cs-detail-image");
  img.draggable = false;
  const source = h("div", "cs-muted cs-detail-source");
  const tags = h("div", "cs-detail-tags");
  tags.setAttribute("aria-label", "tags");
  const problem = h("div", "cs-error cs-detail-problem");
  const actions = h("div", "cs-toolbar cs-detail-actions");
  const refBtn = button("Use as reference", "Make this image the query's reference");
  refBtn.dataset.action = "reference";
  const selBtn = button("Add to selection", "Add this image to the map's selection");
  selBtn.dataset.action = "select";
  const status = h("span", "cs-muted cs-detail-status");
  status.setAttribute("role", "status");
  actions.append(refBtn, selBtn, status);
  const table = h("table", "cs-detail-fields");
  table.setAttribute("aria-label", "metadata");
  const tbody = h("tbody");
  table.append(tbody);
  const nnHead = h("div", "cs-label");
  const nn = h("div", "cs-detail-neighbors");
  nn.setAttribute("role", "list");
  const closed = h("div", "cs-muted cs-empty", "No image open: set the view's row (e.g. view.row = 0).");
  panel.append(head, img, source, tags, problem, actions, h("div", "cs-label", "Metadata"), table, nnHead, nn);
  root.append(closed, panel);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  let imageUrl = null;
  let nnUrls = [];
  let wasOpen = false;
  let returnTo = null;

  function close() {
    model.set("row", -1);
    model.save_changes();
  }

  function ours(node) {
    return !!node && node !== document.body && ((scope && scope.contains(node)) || root.contains(node));
  }

  // in an Explorer the panel goes where the reader looks: the visible part of the explore pane
  // (the notebook scrolls; a clicked thumbnail may be far below the pane's top)
  function placePanel() {
    if (!scope || panel.style.display === "none") return;
    let scroller = root.parentElement;
    while (scroller && scroller !== document.body) {
      const s = getComputedStyle(scroller);
      if (/auto|scroll/.test(s.overflowY) && scroller.scrollHeight > scroller.clientHeight) break;
      scroller = scroller.parentElement;
    }
    const port = scroller && scroller !== document.body ? scroller.getBoundingClientRect() : { top: 0, bottom: window.innerHeight };
    const top = Math.max(port.top, 0);
    const bottom = Math.min(port.bottom, window.innerHeight);
    const box = root.getBoundingClientRect();
    panel.style.maxHeight = `${Math.max(240, Math.min(box.height, bottom - top - 16))}px`;
    const offset = Math.min(Math.max(top + 8 - box.top, 0), Math.max(0, box.height - panel.offsetHeight));
    panel.style.marginTop = `${Math.round(offset)}px`;
  }

  // ------------------------------------------------------------------ open / closed, focus
  function renderOpen() {
    const row = model.get("row");
    const open = row >= 0;
    root.dataset.row = String(row);
    root.dataset.ready = String(open && model.get("filled") === row);
    panel.setAttribute("aria-busy", String(open && model.get("filled") !== row));
    panel.style.display = open ? "" : "none";
    closed.style.display = open || scope ? "none" : "";
    root.classList.toggle("cs-open", open);
    const active = document.activeElement;
    if (open && !wasOpen) placePanel();
    if (open && !wasOpen && ours(active) && !panel.contains(active)) {
      returnTo = active; // opened from the Explorer (a key, a click): the view takes the focus
      panel.focus({ preventScroll: true });
    } else if (!open && wasOpen) {
      if (panel.contains(active) || !active || active === document.body) {
        const back = returnTo && returnTo.isConnected ? returnTo
          : scope && scope.querySelector(".cirscope-grid .cs-cell[tabindex='0']");
        if (back) back.focus();
      }
      returnTo = null;
    }
    wasOpen = open;
  }

  // ------------------------------------------------------------------ content (one fill in Python)
  function renderMarks() {
    actions.style.display = model.get("actions") ? "" : "none";
    const isRef = model.get("is_reference");
    const isSel = model.get("is_selected");
    refBtn.textContent = isRef ? "The reference \u2713" : "Use as reference";
    refBtn.dataset.state = String(isRef);
    selBtn.textContent = isSel ? "Remove from selection" : "Add to selection";
    selBtn.dataset.action = isSel ? "unselect" : "select";
    selBtn.title = isSel ? "Take this image out of the map's selection" : "Add this image to the map's selection";
    const notes = [];
    if (isRef) notes.push("the query's reference");
    if (isSel) notes.push("in the map's selection");
    status.textContent = notes.length ? `This image is ${notes.join(" and ")}.` : "";
    root.dataset.reference = String(isRef);
    root.dataset.selected = String(isSel);
  }

  function renderContent() {
    const filled = model.get("filled");
    const hadFocus = panel.contains(document.activeElement) && document.activeElement !== panel;
    const id = model.get("item_id");
    title.textContent = filled >= 0 ? id : "";
    title.title = id;
    imageUrl = replaceImageURL(imageUrl, model.get("image"));
    if (imageUrl) img.src = imageUrl;
    else img.removeAttribute("src");
    img.alt = id;
    source.textContent = filled >= 0 ? `row ${filled} \u00b7 ${model.get("source")}` : "";
    const names = model.get("tags") || [];
    tags.replaceChildren(...names.map((name) => h("span", "cs-chip", String(name))));
    tags.style.display = names.length ? "" : "none";
    const why = model.get("problem");
    problem.textContent = why ? `This image could not be decoded (a grey placeholder shows): ${why}` : "";
    problem.style.display = why ? "" : "none";
    tbody.replaceChildren(...fieldRows(model.get("fields")));

    nnUrls.forEach((u) => u && URL.revokeObjectURL(u));
    const rowsArr = decodeArray(model.get("neighbors"));
    const rows = rowsArr ? rowsArr.data : new Int32Array(0);
    const sc = decodeArray(model.get("neighbor_scores"));
    const ids = model.get("neighbor_ids") || [];
    const thumbs = model.get("neighbor_thumbnails") || [];
    nnUrls = [];
    const cells = [];
    for (let i = 0; i < rows.length; i++) {
      const url = imageURL(thumbs[i]);
      nnUrls.push(url);
      const b = button();
      b.className = "cs-neighbor";
      b.setAttribute("role", "listitem");
      b.dataset.row = String(rows[i]);
      b.dataset.id = String(ids[i] ?? rows[i]);
      const score = sc && sc.data.length === rows.length ? sc.data[i] : null;
      b.title = `${b.dataset.id}${score === null ? "" : ` \u00b7 cosine ${score.toFixed(3)}`}: open its details`;
      b.setAttribute("aria-label", `open ${b.dataset.id}`);
      const im = h("img");
      im.alt = b.dataset.id;
      im.draggable = false;
      if (url) im.src = url;
      b.append(im, h("span", null, score === null ? "" : score.toFixed(3)));
      cells.push(b);
    }
    nn.replaceChildren(...cells);
    nnHead.textContent = rows.length ? `Nearest neighbours (${rows.length}, by image embedding)` : "";
    if (hadFocus && !panel.contains(document.activeElement)) panel.focus({ preventScroll: true });
    renderMarks();
    renderOpen();
    placePanel(); // its height changed
    root.dataset.version = String(model.get("version"));
  }

  // ------------------------------------------------------------------ events
  closeBtn.addEventListener("click", close);
  for (const b of [refBtn, selBtn]) {
    b.addEventListener("click", () => model.send({ event: "action", action: b.dataset.action, row: model.get("row") }));
  }
  nn.addEventListener("click", (ev) => {
    const b = ev.target.closest ? ev.target.closest(".cs-neighbor") : null;
    if (!b || !nn.contains(b)) return;
    model.set("row", Number(b.dataset.row));
    model.save_changes();
  });
  panel.addEventListener("keydown", (ev) => {
    // a notebook in command mode takes Enter (edit the cell): the view's buttons handle it here
    if (ev.key === "Enter" && ev.target.tagName === "BUTTON" && !ev.ctrlKey && !ev.metaKey && !ev.altKey && !ev.shiftKey) {
      ev.preventDefault();
      ev.target.click();
      return;
    }
    // a notebook in command mode reads plain letters as commands (i i: interrupt the kernel)
    if (ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey && !ev.altKey) ev.stopPropagation();
    const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
    const b = ev.target.closest ? ev.target.closest(".cs-neighbor") : null;
    if (step === undefined || !b) return;
    ev.preventDefault();
    const list = [...nn.children];
    const j = Math.min(Math.max(list.indexOf(b) + step, 0), list.length - 1);
    list[j].focus();
  });
  // Escape closes an open view, wherever in the Explorer it is pressed (seen first: capture)
  const keyScope = scope || root;
  const onEscape = (ev) => {
    if (ev.key !== "Escape" || model.get("row") < 0) return;
    ev.preventDefault();
    ev.stopPropagation();
    close();
  };
  keyScope.addEventListener("keydown", onEscape, true);

  const unlisten = listen(model, {
    "change:version": renderContent,
    "change:row change:filled": renderOpen,
    "change:is_reference change:is_selected change:actions": renderMarks,
  });
  renderContent();

  return () => {
    unwatchKernel();
    unlisten();
    keyScope.removeEventListener("keydown", onEscape, true);
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    nnUrls.forEach((u) => u && URL.revokeObjectURL(u));
    root.remove();
  };
}

export default { render };
