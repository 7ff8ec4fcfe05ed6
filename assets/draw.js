// Canvas helpers shared by the sketchpad and the generated drawings. app.py puts this file in front of each
// component's own script (gr.HTML js_on_load runs one string; <script> tags inside gr.HTML do not run).
// Strokes are arrays of points [x, y, t_ms]; t_ms counts from the first point of the drawing, as in Quick, Draw! raw.

const SK_INK = '#111111'; // Quick, Draw! draws black lines on white
const SK_GEN_INK = '#1769e0'; // the model's strokes: another colour, so the user sees what it added
const SK_LINE_WIDTH = 4; // px on a 512 px canvas: close to the game's pen, wide enough to read when scaled down
const SK_BACKGROUND = '#ffffff'; // exported PNGs are opaque, like the game's screenshots
const SK_STEP_MS = 14; // replay pace per point when a drawing has no usable timing (about 70 points a second)
const SK_PEN_UP_MS = 150; // pause added between generated strokes, as a person lifts the pen (model times are even)
const SK_MAX_GAP_MS = 350; // longer pauses (thinking between strokes) are shortened on replay

function skClear(ctx) {
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = SK_BACKGROUND;
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.restore();
}

// Draw the first `count` points of one stroke (all when count is undefined); `map` turns [x, y] into canvas pixels.
function skStroke(ctx, pts, color, count, map, width) {
  const n = count === undefined ? pts.length : Math.min(count, pts.length);
  if (n === 0) return;
  const p = map || ((q) => q);
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width || SK_LINE_WIDTH;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  const [x0, y0] = p(pts[0]);
  if (n === 1) {
    ctx.beginPath();
    ctx.arc(x0, y0, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  for (let i = 1; i < n; i++) {
    const [x, y] = p(pts[i]);
    ctx.lineTo(x, y);
  }
  ctx.stroke();
}

// Replay times (ms from the start) of every point, from the points' own t_ms where they increase, else a fixed
// pace; long pauses are shortened. Returns one array of times per stroke.
function skTimeline(strokes) {
  const flat = [];
  for (const s of strokes) for (const q of s) flat.push(q.length > 2 && Number.isFinite(q[2]) ? q[2] : NaN);
  const timed = flat.length > 1 && flat.every((t, i) => Number.isFinite(t) && (i === 0 || t >= flat[i - 1]))
    && flat[flat.length - 1] > flat[0];
  const out = [];
  let at = 0;
  let prev = timed ? flat[0] : 0;
  for (const s of strokes) {
    const times = [];
    for (const q of s) {
      const dt = timed ? q[2] - prev : SK_STEP_MS;
      at += Math.min(Math.max(dt, 0), SK_MAX_GAP_MS);
      prev = timed ? q[2] : 0;
      times.push(at);
    }
    out.push(times);
    at += timed ? 0 : SK_STEP_MS * 4; // a short pen-up pause between untimed strokes
  }
  return out;
}

// Animate `strokes` in drawing order: render(counts) is called each frame with the number of points of each
// stroke drawn so far; done() once everything is drawn. speed multiplies the natural pace. Returns {cancel, finish}.
function skAnimate(strokes, speed, render, done) {
  const times = skTimeline(strokes);
  const rate = speed > 0 ? speed : 1;
  const start = performance.now();
  let stopped = false;
  const counts = () => {
    const elapsed = (performance.now() - start) * rate;
    return times.map((ts) => {
      let k = 0;
      while (k < ts.length && ts[k] <= elapsed) k++;
      return k;
    });
  };
  const end = () => {
    stopped = true;
    render(strokes.map((s) => s.length));
    if (done) done();
  };
  const frame = () => {
    if (stopped) return;
    const c = counts();
    render(c);
    if (c.every((k, i) => k >= strokes[i].length)) end();
    else requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  return {
    cancel: () => { stopped = true; },
    finish: () => { if (!stopped) end(); },
  };
}

// Fit a drawing in the 0..255 frame of the generator into a canvas of `size` px with a margin, centred.
function skFitMap(strokes, size, margin) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const s of strokes) for (const [x, y] of s) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  if (!Number.isFinite(x0)) return (q) => q;
  const scale = (size - 2 * margin) / Math.max(x1 - x0, y1 - y0, 1);
  const ox = (size - (x1 - x0) * scale) / 2, oy = (size - (y1 - y0) * scale) / 2;
  return (q) => [ox + (q[0] - x0) * scale, oy + (q[1] - y0) * scale];
}

function skDownload(name, href) {
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}
