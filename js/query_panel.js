// cirscope QueryPanel: reference image, modification text, method, sliders, the texts used.
//
// Slider moves are sent live, but at most one request is in flight: while Python searches,
// later positions are merged and sent when it answers (the `served` trait), so dragging a
// slider never queues up stale searches. Texts are always inserted with textContent.

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

const ACK_TIMEOUT_MS = 3000; // send anyway if Python has not answered by then
const PARAM_LABELS = { alpha_t: "α text", alpha_i: "α image", beta: "β fusion", a: "weight a" };

function render({ model, el }) {
  const root = h("div", "cirscope cirscope-query");

  // reference
  const ref = h("div", "cs-ref");
  const refImg = h("img");
  refImg.alt = "reference image";
  const refInfo = h("div", "cs-ref-info");
  const refLabel = h("div", "cs-label", "Reference");
  const refId = h("div", "cs-ref-id");
  const refCaption = h("div", "cs-muted cs-ref-caption");
  const refClear = button("Clear", "no reference: search by text only");
  refInfo.append(refLabel, refId, refCaption, refClear);
  ref.append(refImg, refInfo);

  // modification text
  const textRow = h("div", "cs-row");
  const textLabel = h("label", "cs-label", "Modification");
  const textInput = h("input");
  textInput.type = "text";
  textInput.placeholder = "e.g. make it blue (Enter to search)";
  textInput.dataset.role = "text";
  textInput.setAttribute("aria-label", "modification text");
  const runButton = button("Search");
  textRow.append(textLabel, textInput, runButton);

  // method and k
  const methodRow = h("div", "cs-row");
  const methodLabel = h("label", "cs-label", "Method");
  const methodSelect = h("select");
  methodSelect.dataset.role = "method";
  methodSelect.setAttribute("aria-label", "composing method");
  const kLabel = h("label", "cs-muted", "k");
  const kInput = h("input");
  kInput.type = "number";
  kInput.min = "1";
  kInput.max = "500";
  kInput.dataset.role = "k";
  kInput.setAttribute("aria-label", "number of results");
  methodRow.append(methodLabel, methodSelect, kLabel, kInput);
  const formula = h("div", "cs-muted cs-formula");

  // sliders, one per parameter name (shown when the method has it)
  const sliderBox = h("div", "cs-sliders");
  const sliders = {};

  // texts used
  const texts = h("div", "cs-texts");
  const textFields = {};
  for (const [name, label] of [["reference_text", "Reference text"], ["composed_text", "Composed text"]]) {
    const row = h("div", "cs-row");
    const lab = h("label", "cs-muted cs-text-label", label);
    const input = h("input");
    input.type = "text";
    input.dataset.role = name;
    input.setAttribute("aria-label", `${label.toLowerCase()} (Enter to use an edited text)`);
    const source = h("span", "cs-source");
    const auto = button("auto", "go back to the automatic text");
    row.append(lab, input, source, auto);
    texts.append(row);
    textFields[name] = { input, source, auto };
  }

  const status = h("div", "cs-muted cs-status");
  status.dataset.role = "status";
  status.setAttribute("aria-live", "polite");
  const error = h("div", "cs-error");
  error.dataset.role = "error";
  // query history: every searched state; Undo/Redo (Ctrl+Z / Ctrl+Shift+Z) search it again in Python
  const historyRow = h("div", "cs-row cs-history");
  const undoButton = button("↶ Undo", "previous query (Ctrl+Z)");
  undoButton.dataset.role = "undo";
  const redoButton = button("↷ Redo", "next query (Ctrl+Shift+Z)");
  redoButton.dataset.role = "redo";
  const historyPosition = h("span", "cs-muted");
  historyPosition.dataset.role = "history-position";
  historyPosition.title = "the shown query / queries searched";
  historyRow.append(undoButton, redoButton, historyPosition);
  root.tabIndex = -1; // focusable, so the keys work after a click anywhere in the panel
  root.append(ref, textRow, methodRow, formula, sliderBox, texts, historyRow, status, error);
  el.append(root);
  const unwatchKernel = watchKernel(model, root, el);

  // ------------------------------------------------------------------ requests
  let pending = null;
  let inflight = false;
  let timer = 0;
  function send(changes) {
    pending = { ...(pending || {}), ...changes };
    if (!inflight) flush();
  }
  function flush() {
    if (!pending) return;
    for (const [key, value] of Object.entries(pending)) model.set(key, value);
    pending = null;
    model.set("request", model.get("request") + 1);
    model.save_changes();
    inflight = true;
    root.dataset.busy = "true";
    clearTimeout(timer);
    timer = setTimeout(() => { inflight = false; flush(); }, ACK_TIMEOUT_MS);
  }
  function onServed() {
    if (model.get("served") < model.get("request")) return;
    inflight = false;
    clearTimeout(timer);
    root.dataset.busy = "false";
    flush();
  }

  // ------------------------------------------------------------------ rendering
  let refURL = null;
  function renderReference() {
    const row = model.get("reference");
    root.dataset.reference = String(row);
    refURL = replaceImageURL(refURL, model.get("reference_thumbnail"));
    refImg.style.visibility = refURL ? "visible" : "hidden";
    if (refURL) refImg.src = refURL;
    refId.textContent = row >= 0 ? `${model.get("reference_id")} (row ${row})` : "none: click an image in the grid or on the map";
    refCaption.textContent = model.get("reference_caption");
    refClear.disabled = row < 0;
  }
  function currentMethod() {
    return (model.get("methods") || []).find((m) => m.name === model.get("method")) || { params: [], formula: "", paper: "" };
  }
  function buildSliders() {
    sliderBox.replaceChildren();
    for (const key of Object.keys(sliders)) delete sliders[key];
    for (const m of model.get("methods") || []) {
      for (const p of m.params) {
        if (sliders[p.name]) continue;
        const row = h("div", "cs-slider");
        row.dataset.param = p.name;
        const id = `cs-${p.name}-${Math.random().toString(36).slice(2, 8)}`;
        const lab = h("label", null, PARAM_LABELS[p.name] || p.name);
        lab.htmlFor = id;
        lab.title = p.doc;
        const input = h("input");
        input.type = "range";
        input.id = id;
        input.min = String(p.min);
        input.max = String(p.max);
        input.step = String(p.step);
        input.dataset.param = p.name;
        input.title = p.doc;
        const out = h("output");
        input.addEventListener("input", () => {
          out.textContent = Number(input.value).toFixed(2);
          send({ [p.name]: Number(input.value) });
        });
        row.append(lab, input, out);
        sliderBox.append(row);
        sliders[p.name] = { row, input, out };
      }
    }
  }
  function renderSliders() {
    const params = new Set(currentMethod().params.map((p) => p.name));
    for (const [name, s] of Object.entries(sliders)) {
      s.row.style.display = params.has(name) ? "" : "none";
      const value = model.get(name);
      if (document.activeElement !== s.input || !pending) {
        if (Number(s.input.value) !== value) s.input.value = String(value);
      }
      s.out.textContent = Number(value).toFixed(2);
    }
    sliderBox.style.display = params.size ? "" : "none";
  }
  /** The method's legend under the menu: full name, formula, paper. */
  function legend(m) {
    if (!m.formula) return m.full_name || "";
    const name = m.full_name ? `${m.title} = ${m.full_name}: ` : "";
    return `${name}${m.formula}  (${m.paper})`;
  }
  function renderMethods() {
    methodSelect.replaceChildren();
    for (const m of model.get("methods") || []) {
      const o = h("option", null, m.title);
      o.value = m.name;
      if (m.full_name) o.title = m.full_name;
      methodSelect.append(o);
    }
    methodSelect.value = model.get("method");
    const m = currentMethod();
    formula.textContent = legend(m);
    methodSelect.title = m.full_name || m.title || "";
    root.dataset.method = model.get("method");
  }
  function renderMethod() {
    methodSelect.value = model.get("method");
    const m = currentMethod();
    formula.textContent = legend(m);
    methodSelect.title = m.full_name || m.title || "";
    root.dataset.method = model.get("method");
    renderSliders();
  }
  function renderTexts() {
    for (const [name, f] of Object.entries(textFields)) {
      const override = model.get(`${name}_override`);
      if (document.activeElement !== f.input) f.input.value = override || model.get(name);
      const source = override ? "edited" : model.get(`${name}_source`);
      f.source.textContent = source ? `[${source}]` : "";
      f.auto.style.visibility = override ? "visible" : "hidden";
      f.input.disabled = !model.get(name) && !override;
    }
  }
  function renderText() {
    if (document.activeElement !== textInput) textInput.value = model.get("text");
  }
  function renderStatus() {
    status.textContent = model.get("status");
    error.textContent = model.get("error");
    root.dataset.resultVersion = String(model.get("result_version"));
  }
  function renderK() {
    if (document.activeElement !== kInput) kInput.value = String(model.get("k"));
  }

  // ------------------------------------------------------------------ history
  function renderHistory() {
    undoButton.disabled = !model.get("can_undo");
    redoButton.disabled = !model.get("can_redo");
    historyPosition.textContent = model.get("history_position");
  }
  const step = (event) => { pending = null; model.send({ event }); };
  undoButton.addEventListener("click", () => step("undo"));
  redoButton.addEventListener("click", () => step("redo"));
  root.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || ev.key.toLowerCase() !== "z") return;
    const typing = ev.target instanceof HTMLInputElement && ev.target.type === "text";
    if (typing) return; // inside a text box Ctrl+Z undoes the typing
    ev.preventDefault();
    step(ev.shiftKey ? "redo" : "undo");
  });
  // ------------------------------------------------------------------ events
  textInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); send({ text: textInput.value }); }
    else if (ev.key === "Escape") { textInput.value = model.get("text"); }
  });
  runButton.addEventListener("click", () => send({ text: textInput.value }));
  refClear.addEventListener("click", () => send({ reference: -1 }));
  methodSelect.addEventListener("change", () => send({ method: methodSelect.value }));
  kInput.addEventListener("change", () => {
    const k = Math.round(Number(kInput.value));
    if (k >= 1 && k <= 500) send({ k }); else kInput.value = String(model.get("k"));
  });
  for (const [name, f] of Object.entries(textFields)) {
    f.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        const value = f.input.value.trim();
        send({ [`${name}_override`]: value === model.get(name) && !model.get(`${name}_override`) ? "" : value });
      } else if (ev.key === "Escape") {
        f.input.value = model.get(`${name}_override`) || model.get(name);
      }
    });
    f.input.addEventListener("blur", renderTexts);
    f.auto.addEventListener("click", () => send({ [`${name}_override`]: "" }));
  }

  const handlers = {
    "change:reference change:reference_id change:reference_caption change:reference_thumbnail": renderReference,
    "change:methods": () => { renderMethods(); buildSliders(); renderSliders(); },
    "change:method": renderMethod,
    "change:alpha_t change:alpha_i change:beta change:a": renderSliders,
    "change:reference_text change:composed_text change:reference_text_source change:composed_text_source change:reference_text_override change:composed_text_override": renderTexts,
    "change:text": renderText,
    "change:k": renderK,
    "change:status change:error change:result_version": renderStatus,
    "change:served": onServed,
    "change:can_undo change:can_redo change:history_position": renderHistory,
  };
  const unlisten = listen(model, handlers);
  renderReference();
  renderMethods();
  buildSliders();
  renderSliders();
  renderTexts();
  renderText();
  renderK();
  renderStatus();
  renderHistory();
  root.dataset.ready = "true";

  return () => {
    unwatchKernel();
    unlisten();
    clearTimeout(timer);
    if (refURL) URL.revokeObjectURL(refURL);
    root.remove();
  };
}

export default { render };
