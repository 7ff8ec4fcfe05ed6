// The generated drawings (#generated). Runs as gr.HTML js_on_load, after draw.js. Python sets props.value to JSON
// {word, drawings: [[[x, y, t_ms], ...], ...] per drawing in the 0..255 frame, speed, nonce}; each drawing gets
// its own canvas, side by side, and is drawn stroke by stroke in the order the model drew it.

const BIG = 384; // px, the first drawing
const SMALL = 192; // px, the variations beside it
const MARGIN = 0.08; // of the canvas side, left blank around a drawing

// Add pen-up pauses: stroke k starts k * SK_PEN_UP_MS later than the model's evenly spaced times say.
const withPauses = (strokes) => strokes.map((s, k) => s.map((q) => [q[0], q[1], (q[2] || 0) + k * SK_PEN_UP_MS]));

const row = element.querySelector('.gen-row');
const caption = element.querySelector('.gen-caption');
let running = [];

watch('value', () => {
  let msg;
  try { msg = JSON.parse(props.value || 'null'); } catch (err) { return; }
  running.forEach((a) => a.cancel());
  running = [];
  row.replaceChildren();
  if (!msg || !Array.isArray(msg.drawings)) return;
  caption.textContent = msg.caption || '';
  let left = msg.drawings.length;
  element.dataset.state = left ? 'drawing' : 'done';
  msg.drawings.map(withPauses).forEach((strokes, k) => {
    const size = k === 0 ? BIG : SMALL;
    const canvas = document.createElement('canvas');
    canvas.width = size;
    canvas.height = size;
    canvas.className = k === 0 ? 'gen-main' : 'gen-variation';
    canvas.setAttribute('aria-label', `${msg.word || 'generated'} drawing ${k + 1}`);
    row.appendChild(canvas);
    const c = canvas.getContext('2d');
    const map = skFitMap(strokes, size, size * MARGIN);
    const width = (SK_LINE_WIDTH * size) / 512 + 1;
    skClear(c);
    running.push(skAnimate(strokes, msg.speed || 1, (counts) => {
      skClear(c);
      strokes.forEach((s, i) => skStroke(c, s, SK_INK, counts[i], map, width));
    }, () => {
      left -= 1;
      if (left === 0) element.dataset.state = 'done';
    }));
  });
});
