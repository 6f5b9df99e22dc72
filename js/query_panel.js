// cirscope QueryPanel: reference image, modification text, method, sliders, the texts used.
//
// Slider moves are sent live, but at most one request is in flight: while Python searches,
// later positions are merged and sent when it answers (the `served` trait), so dragging a
// slider never queues up stale searches. Undo and Redo (custom messages, which the widget
// manager sends at once while it may still hold back a state update) wait until Python has
// answered every request, so they never overtake a change made before them.
// Texts are always inserted with textContent.

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

/**
 * A one-line text box that wraps and grows with its text (a <textarea> of one row): a long
 * caption or instruction is read whole, never cut off. Line breaks become spaces (Enter sends).
 */
function textBox(role, label) {
  const box = h("textarea", "cs-textbox");
  box.rows = 1;
  box.dataset.role = role;
  box.setAttribute("aria-label", label);
  box.addEventListener("input", () => {
    if (/[\r\n]/.test(box.value)) box.value = box.value.replace(/\r\n|[\r\n]/g, " ");
    fitHeight(box);
  });
  return box;
}

/** Set a text box's height to its text's (skipped while it is not laid out). */
function fitHeight(box) {
  if (!box.isConnected || box.offsetParent === null) return;
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + box.offsetHeight - box.clientHeight}px`;
}

// ------------------------------------------------------------------ formulas
// A method's formula arrives from Python as lines {name, expr, note} whose expressions are JSON
// trees (cirscope.widgets._query_formula); they are drawn here as DOM elements built from text
// nodes: italic symbols with subscripts, Greek letters, "·", "−" and fraction bars.
const GREEK = { alpha: "α", beta: "β", gamma: "γ", theta: "θ", lambda: "λ", tau: "τ" };
const PREC = { add: 1, sub: 1, mul: 2, dot: 2 }; // everything else binds tighter (3)
const MINUS = "\u2212";

/** A symbol such as "alpha_t" or "v_ref": an italic letter (Greek when named) with a subscript. */
function symbol(name) {
  const [base, ...rest] = String(name).split("_");
  const e = h("span", "cs-sym");
  e.append(h("i", null, GREEK[base] || base));
  if (rest.length) e.append(h("sub", null, rest.join(",")));
  return e;
}

/** A slider value as the formula shows it (two decimals, a real minus sign). */
function formatValue(x) {
  return (x < 0 ? MINUS : "") + Math.abs(x).toFixed(2);
}

function precedence(node) {
  if (node[0] === "val" && node[1] < 0) return 1;
  return PREC[node[0]] || 3;
}

/** Replace each parameter by its value ["val", x] and work out the arithmetic on numbers alone. */
function substitute(node, values) {
  const [op, ...args] = node;
  if (op === "param") return ["val", Number(values[args[0]])];
  if (op === "var" || op === "num" || op === "val") return node;
  const kids = args.map((a) => substitute(a, values));
  if ((op === "add" || op === "sub" || op === "mul") && kids.every((k) => k[0] === "val" || k[0] === "num")) {
    const [x, y] = kids.map((k) => Number(k[1]));
    return ["val", op === "add" ? x + y : op === "sub" ? x - y : x * y];
  }
  return [op, ...kids];
}

function usesParam(node) {
  return node[0] === "param" || node.slice(1).some((a) => Array.isArray(a) && usesParam(a));
}

function usesNorm(node) {
  return node[0] === "norm" || node.slice(1).some((a) => Array.isArray(a) && usesNorm(a));
}

/** `node` drawn, in parentheses when `wrap`. */
function group(node, wrap) {
  const inner = mathNode(node);
  if (!wrap) return inner;
  const e = h("span", "cs-group");
  e.append("(", inner, ")");
  return e;
}

/** A function applied to its argument: "norm(x)", "sin θ", "arccos(v · t)". */
function applyFn(name, arg) {
  const e = h("span", "cs-apply");
  e.append(h("span", "cs-fn", name));
  const atom = name !== "norm" && (arg[0] === "var" || arg[0] === "param"); // "sin θ", but "norm(t)"
  if (atom) e.append("\u2009", mathNode(arg));
  else e.append("(", mathNode(arg), ")");
  return e;
}

/** A fraction with a bar: numerator over denominator. */
function fraction(top, bottom) {
  const e = h("span", "cs-frac");
  const num = h("span", "cs-frac-num");
  num.append(top);
  const den = h("span", "cs-frac-den");
  den.append(bottom);
  e.append(num, den);
  return e;
}

/** One expression tree as DOM elements (text nodes only). */
function mathNode(node) {
  const [op, a, b] = node;
  if (op === "var" || op === "param") return symbol(a);
  if (op === "num") return h("span", "cs-num", String(a));
  if (op === "val") return h("span", "cs-num cs-val", formatValue(Number(a)));
  const e = h("span", `cs-${op}`);
  if (op === "add" || op === "sub") {
    e.append(mathNode(a), h("span", "cs-op", op === "add" ? " + " : ` ${MINUS} `), group(b, op === "sub" && precedence(b) <= 1));
  } else if (op === "mul" || op === "dot") {
    e.append(group(a, precedence(a) < 2), h("span", "cs-op", op === "dot" ? " · " : "·"), group(b, precedence(b) < 2 || (op === "mul" && precedence(b) === 2)));
  } else if (op === "frac") {
    return fraction(mathNode(a), mathNode(b));
  } else if (op === "norm" || op === "sin" || op === "arccos") {
    return applyFn(op, a);
  } else {
    e.textContent = String(op); // an unknown node: shown as its name, never parsed
  }
  return e;
}

/** The legend line: what each embedding symbol stands for, and norm(x) = x / ‖x‖ when used. */
function formulaLegend(m) {
  const legend = h("div", "cs-formula-legend");
  const items = (m.symbols || []).map(([name, meaning]) => {
    const item = h("span", "cs-legend-item");
    item.append(symbol(name), ` ${meaning}`);
    return item;
  });
  if ((m.lines || []).some((line) => usesNorm(line.expr))) {
    const item = h("span", "cs-legend-item");
    const x = () => symbol("x");
    const len = h("span");
    len.append("\u2016", x(), "\u2016");
    item.append(h("span", "cs-fn", "norm"), "(", x(), ") = ", fraction(x(), len), " (length 1)");
    items.push(item);
  }
  items.forEach((item, i) => legend.append(...(i ? ["; ", item] : [item])));
  return legend;
}

/**
 * Fill `box` with a method's formula: its name and paper, one row per line (symbols, then the
 * same line with the sliders' `values`), a note and the legend of its symbols.
 */
function drawFormula(box, m, values) {
  box.replaceChildren();
  const title = h("div", "cs-formula-title", m.full_name ? `${m.title} = ${m.full_name}` : (m.title || ""));
  if (m.paper) title.append(h("span", "cs-muted", ` (${m.paper})`));
  box.append(title);
  const lines = m.lines || [];
  if (!lines.length) {
    if (m.formula) box.append(h("div", "cs-formula-text", m.formula)); // a method registered without lines
    return;
  }
  const math = h("div", "cs-math");
  for (const line of lines) {
    const lhs = h("span", "cs-math-lhs");
    lhs.append(symbol(line.name), " =");
    const rhs = h("span", "cs-math-rhs");
    rhs.append(mathNode(line.expr));
    if (usesParam(line.expr)) {
      const now = h("span", "cs-math-values");
      now.append("= ", mathNode(substitute(line.expr, values)));
      rhs.append(now);
    }
    if (line.note) rhs.append(h("span", "cs-math-note", line.note));
    math.append(lhs, rhs);
  }
  box.append(math);
  if (m.note) box.append(h("div", "cs-formula-note", m.note));
  box.append(formulaLegend(m));
}

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

  // modification text (a one-line text box that wraps and grows: long instructions stay readable)
  const textRow = h("div", "cs-row");
  const textLabel = h("label", "cs-label", "Modification");
  const textInput = textBox("text", "modification text");
  textInput.placeholder = "e.g. make it blue (Enter to search)";
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
  const formula = h("div", "cs-formula");
  formula.dataset.role = "formula";

  // sliders, one per parameter name (shown when the method has it)
  const sliderBox = h("div", "cs-sliders");
  const sliders = {};

  // texts used: a heading (label, source, "auto") over a full-width text box that wraps and grows
  const texts = h("div", "cs-texts");
  const textFields = {};
  for (const [name, label] of [["reference_text", "Reference text"], ["composed_text", "Composed text"]]) {
    const head = h("div", "cs-row cs-text-head");
    const lab = h("label", "cs-muted cs-text-label", label);
    const input = textBox(name, `${label.toLowerCase()} (Enter to use an edited text)`);
    const source = h("span", "cs-source");
    const auto = button("auto", "go back to the automatic text");
    head.append(lab, source, auto);
    texts.append(head, input);
    textFields[name] = { input, source, auto };
  }
  // how the composed text was formed, that it can be edited and what that changes (from Python)
  const composedNote = h("div", "cs-muted cs-text-note");
  composedNote.dataset.role = "composed_text_note";
  texts.append(composedNote);
  const boxes = [textInput, textFields.reference_text.input, textFields.composed_text.input];

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
  // the boxes grow with their text; a new panel width re-wraps it
  let lastWidth = -1;
  let frame = 0;
  const resize = new ResizeObserver((entries) => {
    const width = Math.round(entries[entries.length - 1].contentRect.width);
    if (width === lastWidth) return;
    lastWidth = width;
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => boxes.forEach(fitHeight)); // outside the observer's callback
  });
  resize.observe(root);
  const unwatchKernel = watchKernel(model, root, el);

  // ------------------------------------------------------------------ requests
  let pending = null;
  const steps = []; // Undo/Redo not sent yet: a step goes once every request is answered (see the top)
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
    sendSteps();
    flush();
  }
  function sendSteps() {
    while (steps.length && model.get("served") >= model.get("request")) model.send({ event: steps.shift() });
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
        const lab = h("label");
        lab.append(symbol(p.name), p.word ? ` ${p.word}` : "");
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
          renderFormula(); // the values in the formula follow the drag at once
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
    renderFormula();
  }
  /** The selected method's formula with the sliders' values (as shown, even mid-drag). */
  function renderFormula() {
    const m = currentMethod();
    const values = {};
    for (const p of m.params || []) values[p.name] = sliders[p.name] ? Number(sliders[p.name].input.value) : model.get(p.name);
    drawFormula(formula, m, values);
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
    methodSelect.title = m.full_name || m.title || "";
    root.dataset.method = model.get("method");
  }
  function renderMethod() {
    methodSelect.value = model.get("method");
    const m = currentMethod();
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
      fitHeight(f.input);
    }
    composedNote.textContent = model.get("composed_text_note");
  }
  function renderText() {
    if (document.activeElement !== textInput) textInput.value = model.get("text");
    fitHeight(textInput);
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
  const step = (event) => { pending = null; steps.push(event); sendSteps(); };
  undoButton.addEventListener("click", () => step("undo"));
  redoButton.addEventListener("click", () => step("redo"));
  root.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || ev.key.toLowerCase() !== "z") return;
    const typing = ev.target instanceof HTMLTextAreaElement || (ev.target instanceof HTMLInputElement && ev.target.type === "text");
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
    "change:reference_text change:composed_text change:reference_text_source change:composed_text_source change:reference_text_override change:composed_text_override change:composed_text_note": renderTexts,
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
    resize.disconnect();
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    if (refURL) URL.revokeObjectURL(refURL);
    root.remove();
  };
}

export default { render };
