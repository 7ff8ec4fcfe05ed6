"""How soon the shipped classifiers know a drawing while it is being drawn: the live guesses, measured.

    python -m training.evaluate_live --data ../shared/quickdraw --json runs/eval_live.json

The page asks for guesses while the player draws, and always when a stroke ends (assets/sketchpad.js), so what
the models see most of the time is an unfinished drawing. `training.evaluate` scores finished drawings only. Here
every held-out drawing of n strokes is replayed stroke by stroke: each prefix of k = 1..n strokes goes through the
app's canvas path (`sketchlab.prepare.from_canvas`: Google's simplification re-frames the unfinished drawing, as
the page's would be) and the shipped models (`Classifier.combine`, the calibrated scores the page shows). Sources:
  raw         the players' own input (with its timings): the app's real input;
  simplified  Google's simplified drawings (no timings), the larger set, and the one with the 22 rich classes.
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
and for the simplified source the fused figures of the rich classes (`fused_rich`). A prefix the preprocessing
refuses (a dot) counts as a wrong guess.
The raw drawings are also replayed while the pen is down, as the page asks every LIVE_MS (`pen_down_views`):
  pen_down     over every such request: `n`, `top1`, `top5`, the headline's `sure` / `sure_right`, and their
               `calibration` (the scores come from `Classifier.combine(..., pen_down=True)`, as the app's);
  guessed      gains `share_any_time` and `seconds_any_time`: the first right guess at a stroke end or while drawing,
               the way the game itself listens (it guesses while the player draws, not only between strokes).
For every source, `top_guess_changes`: how often the top guess differs from the answer before (`per_drawing`, and
`share_of_answers` after each drawing's first), in the order the page shows them: a guess that jumps about names
more drawings right at some moment by chance, and is harder to read.
A request the preprocessing refuses (still a dot) is one the page does not send: it is not counted.
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
from sketchlab.classify import Classifier
from sketchlab.errors import DrawingError
from sketchlab.page import SURE
from sketchlab.prepare import Prepared, from_canvas
from sketchlab.runtime import MODELS_DIR
from sketchlab.split import Split
from training.evaluate import BATCH, Reliability, Tally, chosen_split, outputs, rich_mask

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
LIVE_MS = 150  # while the pen is down the page sends the drawing this often (assets/sketchpad.js, LIVE_MS)
DRAWINGS_PER_CHUNK = 128  # drawings replayed at once; their prefixes are scored in batches of BATCH


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
    # shows them (stroke ends and pen-down requests by time; the refused prefixes, which get no answer, left out)


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
    sent: int = 0  # requests sent while the pen was down (timed drawings only)
    sent_top1: int = 0  # of them with the true class first
    sent_top5: int = 0  # ... in the top 5
    sent_sure: int = 0  # ... with a headline "I think it is X"
    sent_sure_right: int = 0  # ... with X right
    answers: int = 0  # answers after each drawing's first (`Replay.shown`)
    changes: int = 0  # of them with another top guess than the answer before
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
    ) -> None:
        """One replayed drawing: the true class's rank and the headline after each of its n strokes, the time of
        each stroke end, (ranks, sure, times) of the requests sent while the pen was down, where timed, and the top
        guess of every answer in the order shown."""
        n = len(ranks)
        if shown is not None and len(shown) > 1:
            self.answers += len(shown) - 1
            self.changes += int((shown[1:] != shown[:-1]).sum())
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
            self.sent += len(tick_ranks)
            self.sent_top1 += int(tick_right.sum())
            self.sent_top5 += int((tick_ranks < 5).sum())
            self.sent_sure += int(tick_sure.sum())
            self.sent_sure_right += int((tick_sure & tick_right).sum())
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
                }
            if self.sent:
                out["pen_down"] = {
                    "n": self.sent,
                    "top1": self.sent_top1 / self.sent,
                    "top5": self.sent_top5 / self.sent,
                    "sure": self.sent_sure / self.sent,
                    "sure_right": self.sent_sure_right / self.sent_sure if self.sent_sure else None,
                }
                guessed["share_any_time"] = self.guessed_any_time / int(self.drawings.sum())
                if self.seconds_any_time:
                    guessed["seconds_any_time"] = float(np.median(self.seconds_any_time))
        out["guessed"] = guessed
        return out


def prefixes(drawing: list) -> list[tuple[int, Prepared]]:
    """(k, the first k strokes through the canvas path) for k = 1..n, without the prefixes it refuses (a dot)."""
    out = []
    for k in range(1, len(drawing) + 1):
        try:
            out.append((k, from_canvas(drawing[:k])))
        except DrawingError:
            continue
    return out


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
    (still a dot: the page sends nothing then)."""
    out = []
    for ms, view in pen_down_views(drawing):
        try:
            out.append((ms, from_canvas(view)))
        except DrawingError:
            continue
    return out


def read_stroke_ends(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0):
    """What the page shows guesses for, in one list: every prefix of every drawing of the split, raw and simplified,
    through the canvas path -> (prepared prefixes, labels (N,)). For fitting the temperatures (`training.fuse`)."""
    prepared, labels = [], []
    for kind in ("raw", "simplified"):
        for drawings, chunk_labels in chunks(root, kind, split, index, per_class):
            for drawing, label in zip(drawings, chunk_labels, strict=True):
                ends = [p for _, p in prefixes(drawing)]
                prepared += ends
                labels += [label] * len(ends)
    return prepared, np.array(labels, np.int64)


def read_pen_down(root: Path, split: Split | None, index: dict[str, int], per_class: int = 0):
    """Every request the page sends while the pen is down (`pen_down_views`) for the raw drawings of the split, the
    ones with timings, through the canvas path -> (prepared requests, labels (N,)). For `training.fuse`."""
    prepared, labels = [], []
    for drawings, chunk_labels in chunks(root, "raw", split, index, per_class):
        for drawing, label in zip(drawings, chunk_labels, strict=True):
            requests = [p for _, p in pen_down_requests(drawing)]
            prepared += requests
            labels += [label] * len(requests)
    return prepared, np.array(labels, np.int64)


def replay(
    clf: Classifier,
    drawings: list,
    labels: list[int],
    timed: bool,
    reliability: dict[str, dict[str, Reliability]] | None = None,
) -> list[Replay]:
    """Every prefix of each drawing through the canvas path and the models, and for `timed` drawings every request
    sent while the pen was down too -> one `Replay` a drawing. The scores also go into `reliability` when given:
    {"stroke_end" | "pen_down": {output: Reliability}}."""
    prepared, owner = [], []  # what could be prepared, and (drawing, is a pen-down request, its index) of each
    tick_ms: list[list[float]] = [[] for _ in drawings]
    for d, drawing in enumerate(drawings):
        for k, p in prefixes(drawing):
            prepared.append(p)
            owner.append((d, False, k - 1))
        for ms, p in pen_down_requests(drawing) if timed else []:
            prepared.append(p)
            owner.append((d, True, len(tick_ms[d])))
            tick_ms[d].append(ms)
    n_classes = len(clf.classes)
    names = outputs(clf)
    # the top guess of each answer, {is a pen-down request: [{output: (n,) or (m,)}]}; -1: no answer (a refused prefix)
    top = {
        False: [{name: np.full(len(d), -1) for name in names} for d in drawings],
        True: [{name: np.full(len(m), -1) for name in names} for m in tick_ms],
    }
    ranks = [{name: np.full(len(d), n_classes, np.int64) for name in names} for d in drawings]
    sure = [{name: np.zeros(len(d), bool) for name in names} for d in drawings]
    tick_ranks = [{name: np.zeros(len(m), np.int64) for name in names} for m in tick_ms]
    tick_sure = [{name: np.zeros(len(m), bool) for name in names} for m in tick_ms]
    for i in range(0, len(prepared), BATCH):
        rows = owner[i : i + BATCH]
        truth = np.array([labels[d] for d, _, _ in rows], np.int64)
        ends = np.array([not down for _, down, _ in rows])
        raw = clf.raw_log_probs(prepared[i : i + BATCH])
        after_stroke, pen_down = clf.combine(raw), clf.combine(raw, pen_down=True)  # as the app scores each
        for name in names:
            s = np.where(ends[:, None], after_stroke[name], pen_down[name])
            if reliability is not None:
                reliability["stroke_end"][name].add(s[ends], truth[ends])
                reliability["pen_down"][name].add(s[~ends], truth[~ends])
            rank = (s > s[np.arange(len(rows)), truth][:, None]).sum(axis=1)
            confident = np.exp(s.max(axis=1)) >= SURE
            best = s.argmax(axis=1)
            for row, (d, down, j) in enumerate(rows):
                (tick_ranks if down else ranks)[d][name][j] = rank[row]
                (tick_sure if down else sure)[d][name][j] = confident[row]
                top[down][d][name][j] = best[row]
    out = []
    for d, drawing in enumerate(drawings):
        ends = np.array([float(s[-1, 2]) for s in drawing]) if timed else np.arange(len(drawing), dtype=np.float64)
        # the answers in the order shown: by time, a stroke's pen-down requests before its end
        when = np.concatenate([np.array(tick_ms[d]), ends])
        order = np.lexsort((np.r_[np.zeros(len(tick_ms[d])), np.ones(len(ends))], when))
        shown = {}
        for name in names:
            tops = np.concatenate([top[True][d][name], top[False][d][name]])[order]
            shown[name] = tops[tops >= 0]
        if not timed:
            out.append(Replay(labels[d], ranks[d], sure[d], None, shown=shown))
            continue
        pen_down = {name: (tick_ranks[d][name], tick_sure[d][name]) for name in names}
        out.append(Replay(labels[d], ranks[d], sure[d], ends, pen_down, np.array(tick_ms[d]), shown))
    return out


def chunks(root: Path, kind: str, split: Split | None, index: dict[str, int], per_class: int = 0):
    """(drawings, labels) of up to DRAWINGS_PER_CHUNK drawings of the models' classes at a time; each drawing a list
    of float64 (n_i, 2) or (n_i, 3) strokes."""
    drawings, labels = [], []
    for rec in qd.iter_drawings(root, kind, split=split, limit_per_word=per_class or None):
        if rec.word in index and len(rec.drawing):
            drawings.append([np.asarray(s, dtype=np.float64) for s in rec.drawing])
            labels.append(index[rec.word])
            if len(drawings) == DRAWINGS_PER_CHUNK:
                yield drawings, labels
                drawings, labels = [], []
    if drawings:
        yield drawings, labels


def evaluate_live(root: Path, split: Split | None, models_dir: Path = MODELS_DIR, per_class: int = 0) -> dict:
    """The module's JSON OUT (see the top): the raw drawings, then the simplified ones, one chunk in memory at a time."""
    clf = Classifier.load(models_dir)
    classes = clf.classes
    index = {w: i for i, w in enumerate(classes)}
    out: dict = {"split": split.value if split else "all", "provider": clf.provider, "problems": clf.problems}
    t = time.time()
    for kind in ("raw", "simplified"):
        tallies = {name: LiveTally(len(classes)) for name in outputs(clf)}
        reliability = {
            m: {name: Reliability(len(classes)) for name in outputs(clf)} for m in ("stroke_end", "pen_down")
        }
        for drawings, labels in chunks(root, kind, split, index, per_class):
            for r in replay(clf, drawings, labels, kind == "raw", reliability):
                for name, tally in tallies.items():
                    pen_down = (*r.pen_down[name], r.pen_down_ms) if r.pen_down else None
                    tally.add(r.label, r.ranks[name], r.sure[name], r.stroke_end_ms, pen_down, r.shown[name])
        out[kind] = {}
        for name, tally in tallies.items():
            out[kind][name] = tally.metrics() | {"calibration": reliability["stroke_end"][name].metrics()}
            if "pen_down" in out[kind][name]:
                out[kind][name]["pen_down"]["calibration"] = reliability["pen_down"][name].metrics()
        if kind == "simplified":
            out["simplified"]["fused_rich"] = tallies["fused"].metrics(rich_mask(root, classes))
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
        for name in ("stroke", "cnn", "fused", "fused_rich"):
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


if __name__ == "__main__":
    main()
