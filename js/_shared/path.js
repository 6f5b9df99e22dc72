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
