// The drawing canvas (#sketchpad). Runs as gr.HTML js_on_load, after draw.js: `element`, `trigger`, `props` and
// `watch` come from Gradio. The drawing lives here, in the page: a failed request never loses it.
// Events sent to Python: 'strokes_done' {strokes, seq, pen_down, shown, settled} after every stroke and live while
// the pen is down (pen_down: the last stroke is still being drawn, which the classifiers weigh and calibrate
// differently; shown: the guess the page shows first now, null for none, which the server keeps unless the drawing
// now points clearly elsewhere, so the headline does not flicker between two near-equal guesses), and once more when
// the pen has rested SETTLE_MS after a change (settled: the drawing is most likely finished, and finished drawings
// are guessed right more often than unfinished ones at the same scores, so the server calibrates it as such);
// 'finish' {strokes} for "Finish my drawing". Python answers 'finish' by setting props.value to JSON
// {op: "finish", strokes, word, speed, nonce}; the new strokes are animated in another colour, then kept.
// While strokes are animated (a loaded drawing replaying, the model finishing one) the guesses follow them as they
// appear, as live requests; clearing or loading resets the guesses at once, before the server answers.

const SIZE = 512; // canvas pixels; strokes are recorded in this frame, whatever size the canvas is shown at
const LIVE_MS = 150; // while the pen is down, send the drawing this often (about 6.7 times a second)
const FINISH_HINT_MS = 5000; // the "Finishing…" hint goes away if no answer comes (the error shows as a pop-up)
const STORE_KEY = 'sketchlab.drawing'; // sessionStorage: this tab only
const RESUME_GAP_MS = 1000; // the pause recorded between a restored drawing and the next stroke
const ANSWER_TIMEOUT_MS = 3000; // a request unanswered this long (network trouble) no longer blocks the next
const SETTLE_MS = 2000; // the pen resting this long after a change: ask once more, as a settled drawing
const MAX_FILE_BYTES = 5e6; // a loaded file this big is not one drawing (20,000 points of raw ndjson are ~300 kB)
// The server's limits (sketchlab.strokes MAX_STROKES / MAX_POINTS), written into the template by app.py
const MAX_STROKES = Number(element.querySelector('.sk-pad').dataset.maxStrokes) || Infinity;
const MAX_POINTS = Number(element.querySelector('.sk-pad').dataset.maxPoints) || Infinity;
const NOT_A_DRAWING = 'That file is not a drawing I can read. Load a file saved with “Save strokes”, '
  + 'or one line of the Quick, Draw! ndjson data.';
const EMPTY_GUESSES = 'Draw something on the canvas: I will guess what it is while you draw.'; // as sketchlab/page.py

const canvas = element.querySelector('canvas');
const ctx = canvas.getContext('2d');
const status = element.querySelector('.sk-status');
const fileInput = element.querySelector('input[type=file]');
let strokes = []; // [{pts: [[x, y, t_ms], ...], gen: bool}] finished strokes, oldest first
let undone = []; // strokes taken away by undo, newest last, for redo; emptied by any other change
let current = null; // the stroke being drawn
let t0 = 0; // performance.now() at the first point of the drawing
let seq = 0; // request number, echoed by the server in #guesses[data-seq]
let inflight = 0; // seq of the request awaiting its answer, 0 when none
let pending = false; // the drawing changed while a request was in flight
let giveUp = null; // timer releasing a request that never got an answer
let dirty = false; // points added since the last live request
let live = null; // interval id while the pen is down
let penDownSent = false; // whether the last request went out while the pen was down
let shownSent = null; // the top guess the last request said the page showed
let settledSent = false; // whether the last request went out as settled
let rest = null; // timer sending the settled request once the pen has rested
let freshFrom = 0; // answers to requests before this one are about a drawing since cleared or replaced
let anim = null; // running replay/finish animation
let animLive = null; // interval id sending live requests while an animation draws
let animDirty = false; // the animation drew points since the last live request
let overlay = null; // {strokes, counts, color} drawn on top while animating

const round1 = (v) => Math.round(v * 10) / 10;

function point(e) {
  const r = canvas.getBoundingClientRect();
  return [round1(((e.clientX - r.left) * SIZE) / r.width), round1(((e.clientY - r.top) * SIZE) / r.height),
    Math.round(performance.now() - t0)];
}

function redraw() {
  skClear(ctx);
  for (const s of strokes) skStroke(ctx, s.pts, s.gen ? SK_GEN_INK : SK_INK);
  if (overlay) overlay.strokes.forEach((s, i) => skStroke(ctx, s, overlay.color, overlay.counts[i]));
  if (current) skStroke(ctx, current.pts, SK_INK);
}

// What is on the canvas now: the finished strokes, the part of an animation drawn so far, the stroke being drawn.
function drawing() {
  const all = strokes.map((s) => s.pts);
  if (overlay) overlay.strokes.forEach((s, i) => { if (overlay.counts[i] > 0) all.push(s.slice(0, overlay.counts[i])); });
  if (current && current.pts.length) all.push(current.pts);
  return all;
}

// The drawing is also kept in sessionStorage: Gradio reloads the page when it loses the connection to the server,
// and the drawing must survive that too. Restored at load, with the clock set to continue after its last point.
// Saved at every change and once more as the page goes: a reload can come while the pen is down, and the stroke
// drawn so far is then kept as a finished one.
function save(withCurrent = false) {
  const all = withCurrent && current && current.pts.length ? [...strokes, { pts: current.pts, gen: false }] : strokes;
  try { sessionStorage.setItem(STORE_KEY, JSON.stringify(all)); } catch (err) { /* storage full or off */ }
}
window.addEventListener('pagehide', () => save(true));

function restore() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null'); } catch (err) { return; }
  if (!Array.isArray(saved)) return;
  strokes = saved.filter((s) => s && Array.isArray(s.pts) && s.pts.length
    && s.pts.every((q) => Array.isArray(q) && q.length === 3 && q.every(Number.isFinite)));
  const last = strokes.length ? strokes[strokes.length - 1].pts.slice(-1)[0][2] : 0;
  t0 = performance.now() - last - RESUME_GAP_MS;
}

function hasExtent(all) {
  if (!all.length) return false;
  const [x, y] = all[0][0];
  return all.some((s) => s.some((q) => q[0] !== x || q[1] !== y));
}

// Show the empty state in #guesses now, so guesses about a drawing that is gone never stay on show; the server's
// answer to the request sent next replaces it (the element Gradio rendered stays, only its content changes).
function resetGuesses() {
  const shown = document.querySelector('#guesses .guesses');
  if (!shown) return;
  const hint = document.createElement('p');
  hint.className = 'hint';
  hint.textContent = EMPTY_GUESSES;
  shown.className = 'guesses empty';
  shown.dataset.sure = 'false';
  shown.replaceChildren(hint);
}

// Live requests (pen down) keep one request in flight: a drawing that changes meanwhile is sent once the answer
// arrives (its newest state only; the states in between are never sent). A finished change (pen up, undo, clear,
// strokes added) is `urgent`: it goes at once, and the server drops the older answer still being computed.
// The server echoes `seq` in #guesses[data-seq].
function send(urgent, settled = false) {
  clearTimeout(rest);
  const all = drawing(); // a dot is sent too: the server answers "keep drawing"
  watchAnswers();
  if (inflight && !urgent) { pending = true; return; }
  pending = false;
  seq += 1;
  inflight = seq;
  clearTimeout(giveUp);
  giveUp = setTimeout(() => answered(inflight), ANSWER_TIMEOUT_MS);
  penDownSent = current !== null || anim !== null; // drawing() holds a stroke still being drawn
  shownSent = shownTop();
  settledSent = settled;
  trigger('strokes_done', { strokes: all, seq, pen_down: penDownSent, shown: shownSent, settled });
  if (!settled && !penDownSent && !anim && all.length) rest = setTimeout(() => send(true, true), SETTLE_MS);
}

function answered(upTo) {
  if (!inflight || upTo < inflight) return;
  inflight = 0;
  clearTimeout(giveUp);
  if (pending) { pending = false; send(true); }
}

let observer = null;
function watchAnswers() {
  const box = document.querySelector('#guesses');
  if (observer || !box) return;
  observer = new MutationObserver(() => {
    const shown = box.querySelector('[data-seq]');
    if (shown) answered(Number(shown.dataset.seq));
  });
  observer.observe(box, { subtree: true, childList: true, attributes: true });
}

function say(text) { status.textContent = text || ''; }

function settle() { if (anim) anim.finish(); } // end any animation now, keeping its strokes

function stopAnimLive() {
  clearInterval(animLive);
  animLive = null;
}

function drop() { // end any animation now, dropping its strokes
  if (anim) anim.cancel();
  stopAnimLive();
  anim = null;
  overlay = null;
  canvas.dataset.animating = '';
}

// --- pen ---------------------------------------------------------------------------------------------------------

canvas.addEventListener('pointerdown', (e) => {
  if ((e.pointerType === 'mouse' && e.button !== 0) || current) return; // one pen at a time (a second finger is ignored)
  e.preventDefault();
  clearTimeout(rest);
  settle();
  say(''); // messages about the last action ("Draw something first…") are over once drawing starts
  try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* a pointer the browser no longer tracks */ }
  if (!strokes.length) t0 = performance.now();
  current = { pts: [point(e)], gen: false, id: e.pointerId };
  dirty = true;
  live = setInterval(() => { if (dirty && current) { dirty = false; send(); } }, LIVE_MS);
  redraw();
});

canvas.addEventListener('pointermove', (e) => {
  if (!current || e.pointerId !== current.id) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) current.pts.push(point(ev));
  dirty = true;
  redraw();
});

function penUp(e) {
  if (!current || e.pointerId !== current.id) return;
  if (e.type === 'pointerup') current.pts.push(point(e));
  clearInterval(live);
  live = null;
  // drop the duplicate point pointerup repeats when the pen did not move since the last pointermove
  const pts = current.pts;
  if (pts.length > 1 && pts[pts.length - 1][0] === pts[pts.length - 2][0]
      && pts[pts.length - 1][1] === pts[pts.length - 2][1]) pts.pop();
  strokes.push({ pts, gen: false });
  undone = [];
  current = null;
  save();
  redraw();
  send(true);
}
canvas.addEventListener('pointerup', penUp);
canvas.addEventListener('pointercancel', penUp);

// --- tools -------------------------------------------------------------------------------------------------------

function undo() {
  if (current) return;
  if (anim) { drop(); say(''); } else if (strokes.length) undone.push(strokes.pop());
  save();
  redraw();
  send(true);
}

function redo() {
  if (current || !undone.length) return;
  settle();
  strokes.push(undone.pop());
  save();
  redraw();
  send(true);
}

function clear() {
  drop();
  strokes = [];
  undone = [];
  freshFrom = seq + 1;
  current = null;
  say('');
  save();
  redraw();
  resetGuesses();
  send(true);
}

element.querySelector('.sk-undo').addEventListener('click', undo);
element.querySelector('.sk-redo').addEventListener('click', redo);
element.querySelector('.sk-clear').addEventListener('click', clear);
document.addEventListener('keydown', (e) => {
  if (!(e.ctrlKey || e.metaKey)) return;
  const key = e.key.toLowerCase();
  const action = key === 'z' ? (e.shiftKey ? redo : undo) : (key === 'y' && !e.shiftKey ? redo : null);
  if (!action) return;
  const a = document.activeElement;
  if (a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA' || a.isContentEditable)) return;
  e.preventDefault();
  action();
});

element.querySelector('.sk-finish').addEventListener('click', () => {
  settle();
  const all = drawing();
  if (!all.length) { say('Draw something first, then I can finish it.'); return; }
  if (!hasExtent(all)) { say('Keep drawing: draw a line or two, then I can finish it.'); return; }
  say('Finishing your drawing…');
  setTimeout(() => { if (status.textContent === 'Finishing your drawing…') say(''); }, FINISH_HINT_MS);
  trigger('finish', { strokes: drawing() });
});

// Animate strokes on top of the drawing, then keep them (gen: true strokes are drawn in the model's colour).
function play(newStrokes, color, speed, gen, after) {
  settle();
  clearTimeout(rest); // the drawing is still changing: it rests after the animation
  overlay = { strokes: newStrokes, counts: newStrokes.map(() => 0), color };
  canvas.dataset.animating = '1';
  undone = [];
  animLive = setInterval(() => { if (animDirty && anim) { animDirty = false; send(); } }, LIVE_MS);
  anim = skAnimate(newStrokes, speed, (counts) => {
    if (counts.some((k, i) => k !== overlay.counts[i])) animDirty = true;
    overlay.counts = counts;
    redraw();
  }, () => {
    stopAnimLive();
    overlay = null;
    anim = null;
    for (const s of newStrokes) strokes.push({ pts: s, gen });
    save();
    canvas.dataset.animating = '';
    redraw();
    send(true);
    if (after) after();
  });
}

watch('value', () => {
  let msg;
  try { msg = JSON.parse(props.value || 'null'); } catch (err) { return; }
  if (!msg || msg.op !== 'finish') return;
  if (!msg.strokes || !msg.strokes.length) { say('The model had nothing to add.'); return; }
  if (!strokes.length) t0 = performance.now();
  // the model's points keep the user's timeline: shift its times to start now
  const base = Math.round(performance.now() - t0);
  const first = msg.strokes[0][0][2] || 0;
  const shifted = msg.strokes.map((s, k) => s.map((q) => [q[0], q[1],
    base + Math.max(0, (q[2] || 0) - first) + k * SK_PEN_UP_MS]));
  say(msg.word ? `Finished as “${msg.word}”.` : 'Finished.');
  play(shifted, SK_GEN_INK, msg.speed || 1, true);
});

// --- export and import (Quick, Draw! raw ndjson: {"word", "drawing": [[x...], [y...], [t...]] per stroke}) ---------

function topWord() {
  const w = document.querySelector('#guesses .top-word');
  return w ? w.textContent : '';
}

function shownTop() { // the top guess on show, if it is about the current drawing
  const answer = document.querySelector('#guesses [data-seq]');
  if (!answer || Number(answer.dataset.seq) < freshFrom) return null;
  return topWord() || null;
}

function shownSure() { // whether the page names the current drawing now ("I think it is …")
  const answer = document.querySelector('#guesses [data-seq]');
  return shownTop() !== null && answer.dataset.sure === 'true';
}

// The category picked in "Finish my drawing as", if one is: its label is the word, maybe followed by " · …";
// app.py lists the labels of the choices that are not categories.
const NOT_WORDS = JSON.parse(element.querySelector('.sk-pad').dataset.notWords || '[]');
function chosenWord() {
  const input = document.querySelector('#finish-as input');
  const label = input ? input.value.trim() : '';
  return !label || NOT_WORDS.includes(label) ? '' : label.split(' · ')[0];
}

// The Quick, Draw! record of the drawing: `word` the category the user chose, else the page's top guess;
// `recognized` whether the page named that word with "I think it is", as the game's field says it named it.
function record() {
  const top = shownTop() || '';
  const word = chosenWord() || top;
  return {
    word, countrycode: '', timestamp: new Date().toISOString(), recognized: word !== '' && word === top && shownSure(),
    key_id: '',
    drawing: strokes.map((s) => [s.pts.map((q) => Math.round(q[0])), s.pts.map((q) => Math.round(q[1])),
      s.pts.map((q) => Math.round(q[2]))]),
  };
}

element.querySelector('.sk-png').addEventListener('click', () => {
  settle();
  skDownload('sketch.png', canvas.toDataURL('image/png'));
});

element.querySelector('.sk-ndjson').addEventListener('click', () => {
  settle();
  const blob = new Blob([JSON.stringify(record()) + '\n'], { type: 'application/x-ndjson' });
  const url = URL.createObjectURL(blob);
  skDownload('sketch.ndjson', url);
  setTimeout(() => URL.revokeObjectURL(url), 1000);
});

// A loaded file that cannot be used; its message is for the user as it stands.
class FileProblem extends Error {}

const isCoord = (v) => typeof v === 'number' && Number.isFinite(v);

// Parse one ndjson record (raw with times, or simplified without) into canvas strokes fitted to this canvas.
// Throws FileProblem with what is wrong in the user's words (never the parser's).
function fromRecord(text) {
  const line = text.split('\n').find((l) => l.trim());
  let rec;
  try { rec = JSON.parse(line || ''); } catch (err) { throw new FileProblem(NOT_A_DRAWING); }
  const d = rec && Array.isArray(rec.drawing) ? rec.drawing : null;
  if (!d || !d.length) throw new FileProblem(NOT_A_DRAWING);
  if (d.length > MAX_STROKES) {
    throw new FileProblem(`That drawing has ${d.length} strokes; I can take at most ${MAX_STROKES}. Load a smaller one.`);
  }
  let points = 0;
  const raw = d.map((s, k) => {
    if (!Array.isArray(s) || s.length < 2 || !Array.isArray(s[0]) || !Array.isArray(s[1])
        || !s[0].length || s[0].length !== s[1].length) {
      throw new FileProblem(`Stroke ${k + 1} of that file is not a Quick, Draw! stroke (a list of x and a list of y).`);
    }
    points += s[0].length;
    const times = Array.isArray(s[2]) && s[2].length === s[0].length ? s[2] : [];
    return s[0].map((x, i) => {
      if (!isCoord(x) || !isCoord(s[1][i])) {
        throw new FileProblem(`Point ${i + 1} of stroke ${k + 1} in that file is not a pair of numbers, `
          + 'so it cannot be drawn. Load a drawing saved with “Save strokes”.');
      }
      return [x, s[1][i], isCoord(times[i]) ? times[i] : NaN];
    });
  });
  if (points > MAX_POINTS) {
    throw new FileProblem(`That drawing has ${points} points; I can take at most ${MAX_POINTS}. Load a smaller one.`);
  }
  const map = skFitMap(raw, SIZE, 24);
  return { word: typeof rec.word === 'string' ? rec.word : '',
    strokes: raw.map((s) => s.map((q) => [...map(q).map(round1), q[2]])) };
}

function load(text) {
  let rec;
  try { rec = fromRecord(text); } catch (err) {
    say(err instanceof FileProblem ? err.message : NOT_A_DRAWING);
    return;
  }
  drop();
  strokes = [];
  undone = [];
  freshFrom = seq + 1;
  t0 = performance.now();
  save();
  redraw();
  resetGuesses();
  send(true); // the empty canvas: the guesses start afresh, then follow the replay
  const withTimes = rec.strokes.map((s) => s.map((q) => [q[0], q[1], Number.isFinite(q[2]) ? q[2] : 0]));
  say(rec.word ? `Replaying a drawing of “${rec.word}”…` : 'Replaying…');
  play(withTimes, SK_INK, 1, false, () => say(rec.word ? `Replayed a drawing of “${rec.word}”.` : ''));
}

element.querySelector('.sk-load').addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  const f = fileInput.files && fileInput.files[0];
  if (!f) return;
  if (f.size > MAX_FILE_BYTES) say('That file is too big to be one drawing. Load one line of ndjson.');
  else f.text().then(load, () => say(NOT_A_DRAWING));
  fileInput.value = '';
});

// A small handle for automation and the benchmark (the page itself never needs it).
window.sketchlab = Object.assign(window.sketchlab || {}, {
  strokes: () => drawing(),
  load,
  undo,
  redo,
  clear,
  record,
  seq: () => seq,
  penDownSent: () => penDownSent,
  settledSent: () => settledSent,
  shownSent: () => shownSent,
  target: () => (pending ? seq + 1 : seq), // the request number whose answer will cover the current drawing
});

restore();
redraw();
if (strokes.length) send(true);
