"""Measure sketchlab's preprocessing and rasterizer against Google's own outputs in the shared data.

    python -m scripts.check_preprocessing [--data ../shared/quickdraw] [--json OUT.json]

1. Rasterizer: every pair in `full/numpy_bitmap_pairs.json` (a Google 28x28 bitmap and the simplified drawing it was
   rendered from): mean absolute pixel error (0-255) and mean Pearson correlation of `rasterize(simplified)` vs
   Google's bitmap. Acceptance: MAE <= 2.0, correlation >= 0.995.
2. Preprocessing: every raw drawing whose key_id also has a simplified record (Google's preprocessing of the same
   input): `simplify(raw)` vs Google's simplified, both rasterized with our rasterizer: mean absolute pixel error,
   and the share of pairs whose point counts are within 10%. Acceptance: MAE <= 2.0, >= 95% within 10%.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sketchlab.data import default_data_dir, iter_drawings, read_bitmaps
from sketchlab.raster import rasterize
from sketchlab.simplify import simplify


def check_raster(root: Path) -> dict:
    pairs = json.loads((root / "full" / "numpy_bitmap_pairs.json").read_text())
    errors, correlations = [], []
    for word, rows in pairs.items():
        bitmaps = read_bitmaps(root, word)
        simplified = {r.key_id: r.drawing for r in iter_drawings(root, "simplified", [word]) if r.key_id}
        for row, key_id in rows.items():
            google = bitmaps[int(row)].reshape(28, 28).astype(np.float64)
            ours = rasterize(simplified[key_id]).astype(np.float64)
            errors.append(np.abs(google - ours).mean())
            correlations.append(np.corrcoef(google.ravel(), ours.ravel())[0, 1])
    return {"pairs": len(errors), "mae": float(np.mean(errors)), "correlation": float(np.mean(correlations))}


def check_simplify(root: Path) -> dict:
    simplified = {r.key_id: r.drawing for r in iter_drawings(root, "simplified") if r.key_id}
    errors, ratios = [], []
    for record in iter_drawings(root, "raw"):
        google = simplified.get(record.key_id)
        if google is None:
            continue
        ours = simplify(record.drawing)
        errors.append(np.abs(rasterize(ours).astype(np.float64) - rasterize(google)).mean())
        ratios.append(sum(map(len, ours)) / sum(map(len, google)))
    ratios = np.array(ratios)
    return {
        "pairs": len(errors),
        "mae": float(np.mean(errors)),
        "points_within_10pct": float(np.mean(np.abs(ratios - 1) <= 0.10)),
        "mean_point_ratio": float(ratios.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="Quick, Draw! folder (official layout)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.data is None or not (args.data / "full").is_dir():
        print("no Quick, Draw! data folder found; pass --data", file=sys.stderr)
        return 2
    raster, simple = check_raster(args.data), check_simplify(args.data)
    print(
        f"rasterizer vs Google bitmaps   pairs {raster['pairs']:5d}  MAE {raster['mae']:.3f}/255 (<= 2.0)  "
        f"correlation {raster['correlation']:.4f} (>= 0.995)"
    )
    print(
        f"simplify(raw) vs Google's      pairs {simple['pairs']:5d}  MAE {simple['mae']:.3f}/255 (<= 2.0)  "
        f"point counts within 10%: {100 * simple['points_within_10pct']:.1f}% (>= 95%)"
    )
    if args.json:
        args.json.write_text(json.dumps({"raster": raster, "simplify": simple}, indent=1) + "\n")
    ok = raster["mae"] <= 2.0 and raster["correlation"] >= 0.995 and simple["mae"] <= 2.0
    ok = ok and simple["points_within_10pct"] >= 0.95
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
