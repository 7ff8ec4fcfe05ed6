"""How soon the shipped classifiers know a drawing while it is being drawn: the live guesses, measured.

    python -m training.evaluate_live --data ../shared/quickdraw --json runs/eval_live.json

The page asks for guesses while the player draws, and always when a stroke ends (assets/sketchpad.js), so what
the models see most of the time is an unfinished drawing. `training.evaluate` scores finished drawings only. Here
every held-out drawing of n strokes is replayed stroke by stroke: each prefix of k = 1..n strokes goes through the
app's canvas path (`sketchlab.prepare.from_canvas`: Google's simplification re-frames the unfinished drawing, as
the page's would be) and the shipped models (`Classifier.combine`, the calibrated scores the page shows). Sources:
  raw         the players' own input (with its timings): the app's real input;
  simplified  Google's simplified drawings (no timings), the larger set, and the one with the rich classes.
For each source and output (stroke, cnn, fused), JSON OUT holds
  at_fraction  {"0.25" | "0.5" | "0.75" | "1.0": {"n", "top1", "top3", "top5", "macro_top1", "macro_top5"}}: the
               guesses after the first ceil(f * n) strokes (1.0: the finished drawing, as `training.evaluate` has
               it, but through the canvas path);
  guessed      how Quick, Draw! scores a player (the game stops at its first right guess): `share` of the drawings
               whose top guess was right after some stroke, `macro_share` with every class weighing the same,
               `stroke_fraction` the mean k / n of that first right guess, `seconds` (raw only) the median time
               from the first point to the end of that stroke;
  calibration  `training.evaluate.Reliability` over every stroke end: how honest the bars are while drawing;
  headline     what the page's headline said after each stroke: the `sure` share of stroke ends where it said "I
               think it is X" (the top guess at least `sketchlab.page.SURE` likely) and `sure_right`, how often X
               was right then;
and for each source the fused figures of the rich classes (`fused_rich`: >= 440 drawings in --data;
`fused_rich_first_release`: `training.evaluate.RICH_FIRST_RELEASE`), and under `groups` every output's figures
again for the drawings with and without a key_id. A prefix the page does not send (taps on one spot) counts as a wrong guess.
The raw drawings are also replayed while the pen is down, as the page asks every LIVE_MS (`pen_down_views`):
  pen_down     over every such request: `n`, `top1`, `top5`, the headline's `sure` / `sure_right`, and their
               `calibration` (the scores come from `Classifier.combine(..., pen_down=True)`, as the app's);
  guessed      gains `share_any_time` and `seconds_any_time`: the first right guess at a stroke end or while drawing,
               the way the game itself listens (it guesses while the player draws, not only between strokes).
Once the pen has rested SETTLE_MS after a stroke (and after the last one of every drawing) the page asks once more,
as `settled` (`Classifier.combine(..., settled=True)`: temperatures fitted on such moments):
  settled      over every such answer: `n`, `top1`, `top5`, the headline's `sure` / `sure_right`, `calibration`;
               the untimed simplified drawings have one, after their last stroke (the finished drawing).
For every source, `top_guess_changes`: how often the top guess differs from the answer before (`per_drawing`, and
`share_of_answers` after each drawing's first; `back_per_drawing`: the changes back to a guess shown first within the
last FLICKER answers, a flicker), in the order the page shows them: a guess that jumps about names
more drawings right at some moment by chance, and is harder to read; so `guessed.share_steady` counts only the
drawings named right in two answers in a row. The fused guesses are ordered as the page orders them: the one shown
first stays first unless beaten by `Fusion.hold` (`held`); their probabilities, and so the calibration, are the
model's own. JSON OUT records that `hold`.
A request the page does not send (taps on one spot: it says "keep drawing" itself) is not counted.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sketchlab import data as qd
from sketchlab.classify import Classifier, hold_order
from sketchlab.errors import DrawingError
from sketchlab.page import SURE, only_dots
from sketchlab.prepare import Prepared, from_canvas
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split
from training.evaluate import BATCH, RICH_FIRST_RELEASE, Reliability, Tally, chosen_split, outputs, rich_mask

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
LIVE_MS = 150  # while the pen is down the page sends the drawing this often (assets/sketchpad.js, LIVE_MS)
SETTLE_MS = 2000  # the pen resting this long after a stroke: the page asks once more, settled (sketchpad.js)
KINDS = ("stroke_end", "pen_down", "settled")  # the page's requests, by what `Classifier.combine` is told
END, DOWN, SETTLED = range(len(KINDS))
FLICKER = 3  # a top guess that comes back within this many answers (about half a second while drawing) flickered
DRAWINGS_PER_CHUNK = 128  # drawings replayed at once; their prefixes are scored in batches of BATCH
KEY_GROUPS = ("with_key_id", "without_key_id")  # every figure again for the records with and without a key_id


@dataclass
class Replay:
    """The rank of the true class after each stroke of one drawing, for each output."""

    label: int
    ranks: dict[str, np.ndarray]  # output -> (n,) int rank after strokes 1..n (0 = first; a refused prefix: C)
    sure: dict[str, np.ndarray]  # output -> (n,) bool: the top guess at least SURE likely ("I think it is X")
    stroke_end_ms: np.ndarray | None  # (n,) time of each stroke's last point, raw drawings only
    pen_down: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # raw only: output -> (ranks, sure), (m,) each,
    # at the m requests sent while the pen was down (`pen_down_views`)
    pen_down_ms: np.ndarray | None = None  # (m,) their times, ms from the drawing's first point
    shown: dict[str, np.ndarray] | None = None  # output -> the top guess of every answer, in the order the page
    # shows them (stroke ends and pen-down requests by time; the refused prefixes, which get no answer, and the
    # settled answers, which re-state the drawing of the answer before, left out)
    settled: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # output -> (ranks, sure) of the settled answers


@dataclass
class Answered:
    """Counts over a set of answers (one kind of request): how many, how often the true class was first or in the
    top 5, how often the headline said "I think it is X", and how often X was right then."""

    n: int = 0
    top1: int = 0
    top5: int = 0
    sure: int = 0
    sure_right: int = 0

    def add(self, ranks: np.ndarray, sure: np.ndarray) -> None:
        """(m,) ranks of the true class and (m,) whether the headline was sure, at m answers."""
        self.n += len(ranks)
        self.top1 += int((ranks == 0).sum())
        self.top5 += int((ranks < 5).sum())
        self.sure += int(sure.sum())
        self.sure_right += int((sure & (ranks == 0)).sum())

    def metrics(self) -> dict:
        return {
            "n": self.n,
            "top1": self.top1 / self.n,
            "top5": self.top5 / self.n,
            "sure": self.sure / self.n,
            "sure_right": self.sure_right / self.sure if self.sure else None,
        }


@dataclass
class LiveTally:
    """One output's counts over replayed drawings: `Tally`s of the guesses at each fraction of the strokes, and the
    first right guess."""

    n_classes: int
    at: dict[float, Tally] = field(init=False)
    drawings: np.ndarray = field(init=False)  # (C,) replayed drawings of each class
    guessed: np.ndarray = field(init=False)  # (C,) of them right after some stroke
    first_right: list[float] = field(default_factory=list)  # k / n of each drawing's first right guess
    seconds: list[float] = field(default_factory=list)  # its time, where the drawing has timings
    stroke_ends: int = 0  # prefixes seen (every stroke end of every drawing)
    sure: int = 0  # of them with a headline "I think it is X"
    sure_right: int = 0  # of those with X right
    pen_down: Answered = field(default_factory=Answered)  # requests sent while the pen was down (timed drawings)
    answers: int = 0  # answers after each drawing's first (`Replay.shown`)
    changes: int = 0  # of them with another top guess than the answer before
    flickers: int = 0  # of those, back to a top guess of the FLICKER answers before
    steady: int = 0  # drawings whose top guess was right in two answers in a row at some moment (`Replay.shown`)
    settled: Answered = field(default_factory=Answered)  # the pen resting SETTLE_MS after a stroke, and every
    # finished drawing
    guessed_any_time: int = 0  # drawings right at a stroke end or while the pen was down (timed drawings only)
    seconds_any_time: list[float] = field(default_factory=list)  # the time of each one's first right guess

    def __post_init__(self) -> None:
        self.at = {f: Tally(self.n_classes) for f in FRACTIONS}
        self.drawings = np.zeros(self.n_classes, np.int64)
        self.guessed = np.zeros(self.n_classes, np.int64)

    def add(
        self,
        label: int,
        ranks: np.ndarray,
        sure: np.ndarray,
        stroke_end_ms: np.ndarray | None,
        pen_down: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        shown: np.ndarray | None = None,
        settled: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """One replayed drawing: the true class's rank and the headline after each of its n strokes, the time of
        each stroke end, (ranks, sure, times) of the requests sent while the pen was down, where timed, the top
        guess of every answer in the order shown, and (ranks, sure) of the settled answers."""
        n = len(ranks)
        if settled is not None:
            self.settled.add(*settled)
        if shown is not None and len(shown) > 1:
            self.answers += len(shown) - 1
            self.changes += int((shown[1:] != shown[:-1]).sum())
            self.steady += bool(((shown[1:] == label) & (shown[:-1] == label)).any())
            for i in np.flatnonzero(shown[1:] != shown[:-1]) + 1:  # back to a guess of the last FLICKER answers
                self.flickers += bool((shown[max(0, i - FLICKER) : i - 1] == shown[i]).any())
        self.stroke_ends += n
        self.sure += int(sure.sum())
        self.sure_right += int((sure & (ranks == 0)).sum())
        for f, tally in self.at.items():
            k = max(1, math.ceil(f * n - 1e-9))
            tally.add_ranks(np.array([ranks[k - 1]]), np.array([label]))
        self.drawings[label] += 1
        right = np.flatnonzero(ranks == 0)
        if len(right):
            self.guessed[label] += 1
            self.first_right.append((right[0] + 1) / n)
            if stroke_end_ms is not None:
                self.seconds.append(float(stroke_end_ms[right[0]]) / 1000.0)
        if pen_down is not None:
            tick_ranks, tick_sure, tick_ms = pen_down
            tick_right = tick_ranks == 0
            self.pen_down.add(tick_ranks, tick_sure)
            times = np.concatenate([stroke_end_ms[ranks == 0], tick_ms[tick_right]])
            if len(times):
                self.guessed_any_time += 1
                self.seconds_any_time.append(float(times.min()) / 1000.0)

    def metrics(self, keep: np.ndarray | None = None) -> dict:
        """The figures over every class, or over the classes in the (C,) bool mask `keep` (no stroke fractions or
        times then: those are not kept per class)."""
        keep = np.ones(self.n_classes, bool) if keep is None else keep
        has = keep & (self.drawings > 0)
        if not has.any():
            return {"n": 0}
        out = {"n": int(self.drawings[has].sum()), "at_fraction": {}}
        for f, tally in self.at.items():
            m = tally.subset(keep)
            rates = tally.hits[1][has] / tally.n[has]
            out["at_fraction"][str(f)] = {**m, "macro_top1": float(rates.mean())}
        guessed = {
            "share": float(self.guessed[has].sum() / self.drawings[has].sum()),
            "macro_share": float((self.guessed[has] / self.drawings[has]).mean()),
        }
        if keep.all():
            out["headline"] = {
                "sure": self.sure / max(self.stroke_ends, 1),
                "sure_right": self.sure_right / self.sure if self.sure else None,
            }
            guessed["stroke_fraction"] = float(np.mean(self.first_right)) if self.first_right else None
            if self.seconds:
                guessed["seconds"] = float(np.median(self.seconds))
            if self.answers:
                out["top_guess_changes"] = {
                    "per_drawing": self.changes / int(self.drawings.sum()),
                    "share_of_answers": self.changes / self.answers,
                    "back_per_drawing": self.flickers / int(self.drawings.sum()),
                }
                guessed["share_steady"] = self.steady / int(self.drawings.sum())
            if self.pen_down.n:
                out["pen_down"] = self.pen_down.metrics()
                guessed["share_any_time"] = self.guessed_any_time / int(self.drawings.sum())
                if self.seconds_any_time:
                    guessed["seconds_any_time"] = float(np.median(self.seconds_any_time))
            if self.settled.n:
                out["settled"] = self.settled.metrics()
        out["guessed"] = guessed
        return out


def page_request(view: list) -> Prepared | None:
    """What the page sends for a drawing on the canvas, through the canvas path; None when it sends nothing: taps on
    one spot only (`sketchlab.page.only_dots`: the page says "keep drawing" itself) or a drawing it refuses."""
    if only_dots(view):
        return None
    try:
        return from_canvas(view)
    except DrawingError:
        return None


def prefixes(drawing: list) -> list[tuple[int, Prepared]]:
    """(k, the first k strokes through the canvas path) for k = 1..n, without those the page does not send."""
    return [(k, p) for k in range(1, len(drawing) + 1) if (p := page_request(drawing[:k])) is not None]


def pen_down_views(drawing: list, every_ms: float = LIVE_MS) -> list[tuple[float, list]]:
    """What the page sends while the pen is down, for a drawing with timings (strokes of (n_i, 3) [x, y, t ms]).

    The page starts a timer at each pen-down and, every `every_ms` until the pen-up, sends the strokes finished so
    far and the points of the current one drawn by then, if a point came since the last request. -> one (the
    request's time in ms, that unfinished drawing) per request. The stroke ends themselves are `prefixes`.
    """
    views = []
    for j, stroke in enumerate(drawing):
        t = np.maximum.accumulate(stroke[:, 2])  # a player's clock can step back a little: never count a point twice
        sent = 0
        tick = t[0] + every_ms
        while tick < t[-1]:
            drawn = int(np.searchsorted(t, tick, side="right"))
            if drawn > sent:
                views.append((float(tick), drawing[:j] + [stroke[:drawn]]))
                sent = drawn
            tick += every_ms
    return views


def pen_down_requests(drawing: list) -> list[tuple[float, Prepared]]:
    """(time in ms, the request through the canvas path) for each of `pen_down_views`, without the ones it refuses
    (`page_request`: taps on one spot get nothing)."""
    return [(ms, p) for ms, view in pen_down_views(drawing) if (p := page_request(view)) is not None]


def read_stroke_ends(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0):
    """What the page shows guesses for, in one list: every prefix of every drawing of the split, raw and simplified,
    through the canvas path -> (prepared prefixes, labels (N,)). For fitting the temperatures (`training.fuse`)."""
    prepared, labels = [], []
    for kind in ("raw", "simplified"):
        for drawings, chunk_labels, _ in chunks(root, kind, split, index, per_class):
            for drawing, label in zip(drawings, chunk_labels, strict=True):
                ends = [p for _, p in prefixes(drawing)]
                prepared += ends
                labels += [label] * len(ends)
    return prepared, np.array(labels, np.int64)


def settled_after(drawing: list, timed: bool) -> list[int]:
    """The strokes (0-based) after which the page sends a settled request: the last one, and for a drawing with
    timings every stroke followed by a pause of at least SETTLE_MS (the page's timer runs from the pen-up)."""
    last = len(drawing) - 1
    if not timed:
        return [last]
    return [k for k in range(last) if drawing[k + 1][0, 2] - drawing[k][-1, 2] >= SETTLE_MS] + [last]


def read_settled(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0):
    """What the page sends once the pen has rested (`settled_after`), for every drawing of the split, raw (timed)
    and simplified (the finished drawing only), through the canvas path -> (prepared drawings, labels (N,)). For
    fitting the settled temperatures (`training.fuse`)."""
    prepared, labels = [], []
    for kind in ("raw", "simplified"):
        for drawings, chunk_labels, _ in chunks(root, kind, split, index, per_class):
            for drawing, label in zip(drawings, chunk_labels, strict=True):
                for k in settled_after(drawing, kind == "raw"):
                    if (request := page_request(drawing[: k + 1])) is not None:  # still a dot: nothing sent
                        prepared.append(request)
                        labels.append(label)
    return prepared, np.array(labels, np.int64)


def read_pen_down(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0):
    """Every request the page sends while the pen is down (`pen_down_views`) for the raw drawings of the split, the
    ones with timings, through the canvas path -> (prepared requests, labels (N,)). For `training.fuse`."""
    prepared, labels = [], []
    for drawings, chunk_labels, _ in chunks(root, "raw", split, index, per_class):
        for drawing, label in zip(drawings, chunk_labels, strict=True):
            requests = [p for _, p in pen_down_requests(drawing)]
            prepared += requests
            labels += [label] * len(requests)
    return prepared, np.array(labels, np.int64)


def page_order(drawing: list, timed: bool) -> list[tuple[float, int, int, Prepared]]:
    """Every answer the page shows for one drawing, in the order shown -> (its time: ms from the first point, or the
    stroke's number for a drawing without timings; its kind: END, DOWN or SETTLED (`KINDS`); its index among the
    drawing's stroke ends or pen-down requests (a settled request: the stroke end it follows); the request through
    the canvas path). A stroke's pen-down requests come before its end, and its settled request, if any, after it;
    only drawings with timings have pen-down requests and pauses."""
    ends = [(float(drawing[k - 1][-1, 2]) if timed else float(k), END, k - 1, p) for k, p in prefixes(drawing)]
    rest = set(settled_after(drawing, timed))
    settled = [(t + (SETTLE_MS if timed else 0.5), SETTLED, k, p) for t, _, k, p in ends if k in rest]
    ticks = [(ms, DOWN, j, p) for j, (ms, p) in enumerate(pen_down_requests(drawing) if timed else [])]
    return sorted(ends + settled + ticks, key=lambda a: (a[0], a[1] != DOWN, a[1]))


@dataclass
class Answers:
    """One drawing's answers in the order the page shows them (`page_order`), scored as the app scores them."""

    label: int
    kind: np.ndarray  # (m,) int: END, DOWN (sent while the pen was down) or SETTLED (`KINDS`)
    index: np.ndarray  # (m,) int: which stroke end (0..n-1) or which pen-down request each answer is
    ms: np.ndarray  # (m,) its time
    scores: dict[str, np.ndarray]  # output -> (m, C) calibrated log-probabilities (`Fusion.hold` orders them later)


def score_answers(clf: Classifier, drawings: list, labels: list[int], timed: bool) -> list[Answers]:
    """Every answer of each drawing through the canvas path and the models, in batches of BATCH -> one `Answers` a
    drawing. The hold is left out: it depends on the answer shown before, so `held` applies it in order."""
    orders = [page_order(drawing, timed) for drawing in drawings]
    flat = [a for order in orders for a in order]
    names = outputs(clf)
    scores = {name: np.empty((len(flat), len(clf.classes)), np.float32) for name in names}
    for i in range(0, len(flat), BATCH):
        rows = flat[i : i + BATCH]
        raw = clf.raw_log_probs([p for *_, p in rows])
        kind = np.array([k for _, k, _, _ in rows])[:, None]
        # as the app scores each kind of request
        end, down, rest = clf.combine(raw), clf.combine(raw, pen_down=True), clf.combine(raw, settled=True)
        for name in names:
            scores[name][i : i + len(rows)] = np.where(
                kind == DOWN, down[name], np.where(kind == SETTLED, rest[name], end[name])
            )
    out, start = [], 0
    for label, order in zip(labels, orders, strict=True):
        rows = slice(start, start + len(order))
        start += len(order)
        out.append(
            Answers(
                label,
                np.array([k for _, k, _, _ in order], np.int64),
                np.array([j for _, _, j, _ in order], np.int64),
                np.array([t for t, *_ in order], np.float64),
                {name: v[rows] for name, v in scores.items()},
            )
        )
    return out


def held(scores: np.ndarray, hold: float) -> np.ndarray:
    """(m, C) fused log-probabilities of one drawing's answers in the page's order -> what orders each answer's
    guesses on the page: its scores with `hold` for the guess shown first before it (`sketchlab.classify.hold_order`),
    in turn."""
    if not hold or len(scores) < 2:
        return scores
    out = scores.copy()
    for i in range(1, len(out)):
        out[i] = hold_order(out[i : i + 1], out[i - 1 : i].argmax(axis=1), hold)[0]
    return out


def replay(
    clf: Classifier,
    drawings: list,
    labels: list[int],
    timed: bool,
    reliability: dict[str, dict[str, Reliability]] | None = None,
) -> list[Replay]:
    """Every prefix of each drawing through the canvas path and the models, and for `timed` drawings every request
    sent while the pen was down too, and the settled requests, the fused guesses held as the page holds them
    (`Fusion.hold`) -> one `Replay` a drawing. The scores also go into `reliability` when given: {"stroke_end" |
    "pen_down" | "settled": {output: Reliability}} (`KINDS`)."""
    answers = score_answers(clf, drawings, labels, timed)
    return replay_scored(drawings, answers, timed, clf.fusion.hold, reliability)


def replay_scored(
    drawings: list,
    scored: list[Answers],
    timed: bool,
    hold: float,
    reliability: dict[str, dict[str, Reliability]] | None = None,
) -> list[Replay]:
    """`replay` from the drawings' `score_answers`, the fused guesses held by `hold` (`training.fuse` tries several)."""
    out = []
    for drawing, answers in zip(drawings, scored, strict=True):
        n, end, down, rest = len(drawing), answers.kind == END, answers.kind == DOWN, answers.kind == SETTLED
        ticks = answers.index[down]
        ranks, sure, tick_ranks, tick_sure, shown, settled = {}, {}, {}, {}, {}, {}
        for name, s in answers.scores.items():
            n_classes = s.shape[1]
            truth = np.full(len(s), answers.label)
            if reliability is not None:  # the probabilities shown: the hold never changes them
                for kind, rows in zip(KINDS, (end, down, rest), strict=True):
                    reliability[kind][name].add(s[rows], truth[rows])
            order = held(s, hold) if name == "fused" else s  # the order shown
            rank = (order > order[:, answers.label][:, None]).sum(axis=1)
            top = order.argmax(axis=1)
            confident = np.exp(s[np.arange(len(s)), top]) >= SURE
            ranks[name] = np.full(n, n_classes, np.int64)  # a refused prefix: no answer, counted wrong
            sure[name] = np.zeros(n, bool)
            ranks[name][answers.index[end]] = rank[end]
            sure[name][answers.index[end]] = confident[end]
            tick_ranks[name], tick_sure[name] = np.empty(len(ticks), np.int64), np.empty(len(ticks), bool)
            tick_ranks[name][ticks], tick_sure[name][ticks] = rank[down], confident[down]
            shown[name] = top[~rest]  # a settled answer re-states the last one's drawing: not a change of mind
            settled[name] = (rank[rest], confident[rest])
        if not timed:
            out.append(Replay(answers.label, ranks, sure, None, shown=shown, settled=settled))
            continue
        ends = np.array([float(stroke[-1, 2]) for stroke in drawing])
        pen_down = {name: (tick_ranks[name], tick_sure[name]) for name in ranks}
        tick_ms = np.empty(len(ticks))
        tick_ms[ticks] = answers.ms[down]
        out.append(Replay(answers.label, ranks, sure, ends, pen_down, tick_ms, shown, settled))
    return out


def chunks(root: Path, kind: str, split: Split | None, index: dict[str, int], per_class: int = 0):
    """(drawings, labels, keyed) of up to DRAWINGS_PER_CHUNK drawings of the models' classes at a time; each drawing
    a list of float64 (n_i, 2) or (n_i, 3) strokes; `keyed[i]`: the record has a key_id."""
    drawings, labels, keyed = [], [], []
    for rec in qd.iter_drawings(root, kind, split=split, limit_per_word=per_class or None):
        if rec.word in index and len(rec.drawing):
            drawings.append([np.asarray(s, dtype=np.float64) for s in rec.drawing])
            labels.append(index[rec.word])
            keyed.append(rec.key_id is not None)
            if len(drawings) == DRAWINGS_PER_CHUNK:
                yield drawings, labels, keyed
                drawings, labels, keyed = [], [], []
    if drawings:
        yield drawings, labels, keyed


def evaluate_live(root: Path, split: Split | None, models_dir: Path = MODELS_DIR, per_class: int = 0) -> dict:
    """The module's JSON OUT (see the top): the raw drawings, then the simplified ones, one chunk in memory at a time."""
    clf = Classifier.load(models_dir)
    classes = clf.classes
    index = {w: i for i, w in enumerate(classes)}
    out: dict = {"split": split.value if split else "all", "provider": clf.provider, "problems": clf.problems}
    out |= {"hold": clf.fusion.hold}  # the fused guesses are ordered as the page orders them (`held`)
    t = time.time()
    rich, first = rich_mask(root, classes), np.isin(classes, RICH_FIRST_RELEASE)
    for kind in ("raw", "simplified"):
        tallies = {name: LiveTally(len(classes)) for name in outputs(clf)}
        grouped = {g: {name: LiveTally(len(classes)) for name in outputs(clf)} for g in KEY_GROUPS}
        reliability = {m: {name: Reliability(len(classes)) for name in outputs(clf)} for m in KINDS}
        for drawings, labels, keyed in chunks(root, kind, split, index, per_class):
            for r, has_key in zip(replay(clf, drawings, labels, kind == "raw", reliability), keyed, strict=True):
                group = grouped[KEY_GROUPS[0] if has_key else KEY_GROUPS[1]]
                for name, tally in tallies.items():
                    pen_down = (*r.pen_down[name], r.pen_down_ms) if r.pen_down else None
                    args = (r.label, r.ranks[name], r.sure[name], r.stroke_end_ms, pen_down, r.shown[name])
                    tally.add(*args, r.settled[name])
                    group[name].add(*args, r.settled[name])
        out[kind] = {}
        for name, tally in tallies.items():
            out[kind][name] = tally.metrics() | {"calibration": reliability["stroke_end"][name].metrics()}
            for part in ("pen_down", "settled"):
                if part in out[kind][name]:
                    out[kind][name][part]["calibration"] = reliability[part][name].metrics()
        out[kind]["fused_rich"] = tallies["fused"].metrics(rich)
        out[kind]["fused_rich_first_release"] = tallies["fused"].metrics(first)
        out[kind]["groups"] = {
            g: {name: tally.metrics() for name, tally in by_name.items()}
            | {"fused_rich": by_name["fused"].metrics(rich)}
            for g, by_name in grouped.items()
        }
    out["seconds"] = time.time() - t
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder in the official layout")
    parser.add_argument("--json", required=True, help="where to write the figures")
    parser.add_argument("--split", choices=["auto", "test", "valid", "train", "all"], default="auto")
    parser.add_argument("--models-dir", default=str(MODELS_DIR))
    parser.add_argument("--per-class", type=int, default=0, help="at most this many drawings a class (0: all)")
    args = parser.parse_args(argv)
    root = Path(args.data)
    _, split = chosen_split(root, args.split, Path(args.models_dir))
    out = evaluate_live(root, split, Path(args.models_dir), args.per_class)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    for kind in ("raw", "simplified"):
        for g, by_name in out[kind]["groups"].items():
            m = by_name["fused"]
            if m.get("n"):
                print(f"{kind:10s} fused {g}: n={m['n']} guessed {m['guessed']}")
        for name in ("stroke", "cnn", "fused", "fused_rich", "fused_rich_first_release"):
            m = out[kind].get(name)
            if not m or not m.get("n"):
                continue
            at = " ".join(f"{f}:{v['top1']:.3f}/{v['top5']:.3f}" for f, v in m["at_fraction"].items())
            print(f"{kind:10s} {name:10s} n={m['n']:5d} top1/top5 at stroke fraction {at}  guessed {m['guessed']}")
            if "headline" in m:
                c = m["calibration"]
                print(
                    f"{'':21s} headline after each stroke: {m['headline']}; ece {c['ece']:.3f} / {c['ece_classes']:.3f}"
                )
            if "pen_down" in m:
                p = m["pen_down"]
                print(
                    f"{'':21s} while the pen is down: n={p['n']} top1 {p['top1']:.3f} top5 {p['top5']:.3f} headline "
                    f"sure {p['sure']:.3f}, right {p['sure_right']}; ece {p['calibration']['ece']:.3f}"
                )
            if "settled" in m:
                p = m["settled"]
                print(
                    f"{'':21s} once the pen rests: n={p['n']} top1 {p['top1']:.3f} top5 {p['top5']:.3f} headline "
                    f"sure {p['sure']:.3f}, right {p['sure_right']}; ece {p['calibration']['ece']:.3f} / "
                    f"{p['calibration']['ece_classes']:.3f}"
                )


if __name__ == "__main__":
    main()
