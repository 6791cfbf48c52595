"""`rsicbench bd --dataset ucmerced --anchor jpeg2000` -> results/bd/<ds>.json.

For every codec with an RD curve in results/rd/<ds>/<codec>.json (fixed-quality points),
against the anchor: BD-rate on PSNR-bpp and BD-delta of PSNR, MS-SSIM-dB, LPIPS and VIFp
(rsicbench.metrics.bd, pchip), each with a paired bootstrap CI over images read from the
points' per_image.csv. Only images evaluated without error at every point of both codecs
are used (listed as n_images). Then the LTCHM Table 3 rows (claims/ltchm.yaml) side by side
with ours; their BPG row is compared with the real `ext-bpg` when its curve exists (bpgenc
on PATH, configs/external.yaml), else with `hevc`, the x265 stand-in, and says which.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench.fsutil import write_json
from rsicbench.reproduce.engine import curve_summaries

# (output key, metric column, kind)
BD_MEASURES = [
    ("bd_rate_psnr", "psnr", "rate"),
    ("bd_psnr", "psnr", "quality"),
    ("bd_msssim_db", "msssim_db", "quality"),
    ("bd_lpips", "lpips", "quality"),
    ("bd_vifp", "vifp", "quality"),
]
# LTCHM Table 3 subject -> our codec
PAPER_TO_OURS = {"bpg": "hevc", "avif": "avif", "webp": "webp"}
# a paper subject measured with the real tool when its curve exists (configs/external.yaml),
# else with the stand-in above, which the row then names
REAL_TOOL = {"bpg": "ext-bpg"}
STAND_IN = {"bpg": "stand-in: x265 HEVC intra via pillow-heif (codec hevc); bpgenc was not run"}


def load_points(rd_root: Path, dataset: str, codec: str) -> dict[str, dict[str, dict[str, float]]]:
    """{qtag: {image: row}} for the fixed-quality points of a codec's RD curve."""
    curve = curve_summaries(rd_root, dataset, codec)
    if not curve:
        raise FileNotFoundError(f"{rd_root / dataset / codec}: no fixed-quality rate points (run its sweep/evaluate stages)")
    out = {}
    for s in curve:
        csv_path = rd_root / dataset / codec / s["qtag"] / "per_image.csv"
        try:
            with open(csv_path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            raise FileNotFoundError(f"{csv_path}: per-image results missing (rerun the sweep)") from None
        out[s["qtag"]] = {r["image"]: r for r in rows if not r.get("error")}
    return out


def per_image_arrays(points: dict[str, dict[str, dict]], images: list[str], keys: list[str]) -> dict[str, np.ndarray]:
    arrays = {}
    for k in keys:
        arrays[k] = np.array([[float(points[q][img][k]) for img in images] for q in sorted(points)], dtype=np.float64)
    return arrays


def _has(points: dict[str, dict[str, dict]], images: list[str], key: str) -> bool:
    return all(points[q][img].get(key) not in (None, "") for q in points for img in images)


def bd_table(rd_root: Path, dataset: str, anchor: str, codecs: list[str], boot: dict[str, Any]) -> dict[str, Any]:
    from rsicbench.metrics.bd import bootstrap_bd

    ref = load_points(rd_root, dataset, anchor)
    table = {}
    for codec in codecs:
        test = load_points(rd_root, dataset, codec)
        images = sorted(set.intersection(*(set(v) for v in list(ref.values()) + list(test.values()))))
        entry: dict[str, Any] = {"n_images": len(images), "n_points": len(test), "anchor_points": len(ref)}
        if not images:
            entry["error"] = "no image evaluated without error at every point of both codecs"
            table[codec] = entry
            continue
        for out_key, metric, kind in BD_MEASURES:
            if not (_has(ref, images, metric) and _has(test, images, metric)):
                entry[out_key] = {"value": None, "valid": False, "warnings": [f"{metric} not measured"]}
                continue
            a = per_image_arrays(ref, images, ["bpp", metric])
            t = per_image_arrays(test, images, ["bpp", metric])
            r = bootstrap_bd(a, t, metric, kind=kind, n_boot=int(boot.get("n", 1000)),
                             seed=int(boot.get("seed", 0)), ci=float(boot.get("ci", 0.95)))  # fmt: skip
            entry[out_key] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        table[codec] = entry
    return table


def ltchm_rows(table: dict[str, Any], dataset: str, claims_path: Path) -> list[dict[str, Any]]:
    import yaml

    if not claims_path.is_file():
        return []
    claims = yaml.safe_load(claims_path.read_text(encoding="utf-8")).get("claims", [])
    rows = []
    for c in claims:
        if c.get("ref") != "Table 3" or c.get("dataset") != dataset or c.get("subject") not in PAPER_TO_OURS:
            continue
        real = REAL_TOOL.get(c["subject"])
        ours_codec = real if real in table else PAPER_TO_OURS[c["subject"]]
        ours = (table.get(ours_codec) or {}).get(c["quantity"]) or {}
        rows.append({
            "claim_id": c["id"], "paper_subject": c["subject"], "ours_codec": ours_codec,
            "ours_note": STAND_IN.get(c["subject"]) if ours_codec != real else f"real tool ({real})",
            "quantity": c["quantity"], "unit": c.get("unit"), "paper": c["value"],
            "ours": ours.get("value"), "ours_ci": [ours.get("ci_low"), ours.get("ci_high")],
            "ours_valid": ours.get("valid"),
            "difference": None if ours.get("value") is None else ours["value"] - c["value"],
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["claim_id"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench bd", description="BD-rate / BD-PSNR table against an anchor.")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--anchor", default=None, help="default: configs/eval.yaml anchor (jpeg2000)")
    ap.add_argument("--codecs", nargs="*", help="default: every codec with a curve in results/rd/<ds>/")
    ap.add_argument("--rd-root", default="results/rd")
    ap.add_argument("--out", help="default: results/bd/<ds>.json")
    ap.add_argument("--claims", default="claims/ltchm.yaml")
    ap.add_argument("--profile")
    args = ap.parse_args(argv)
    from rsicbench.config import settings

    cfg = settings("eval", args.profile)
    dataset = args.dataset or cfg["dataset"]
    anchor = args.anchor or cfg["anchor"]
    rd_root = Path(args.rd_root)
    # a codec has a curve when it has fixed-quality rate points on disk
    found = sorted(p.parent.parent.name for p in (rd_root / dataset).glob("*/*/summary.json"))
    found = sorted(c for c in set(found) if curve_summaries(rd_root, dataset, c))
    if anchor not in found:
        print(f"bd: no RD curve for the anchor {anchor!r} in {rd_root / dataset} (have: {', '.join(found) or 'none'})", file=sys.stderr)
        return 2
    codecs = args.codecs if args.codecs else [c for c in found if c != anchor]
    missing = [c for c in codecs if c not in found]
    if missing:
        print(f"bd: no RD curve for {missing} in {rd_root / dataset}", file=sys.stderr)
        return 2
    try:
        table = bd_table(rd_root, dataset, anchor, codecs, cfg.get("bootstrap") or {})
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"bd: {e}", file=sys.stderr)
        return 2
    out = {
        "dataset": dataset, "anchor": anchor, "method": "pchip", "bootstrap": cfg.get("bootstrap"),
        "codecs": table, "ltchm_table3": ltchm_rows(table, dataset, Path(args.claims)),
    }  # fmt: skip
    out_path = Path(args.out) if args.out else Path("results/bd") / f"{dataset}.json"
    write_json(out_path, out)
    print(f"bd: {out_path}: {len(table)} codec(s) vs {anchor}")
    for codec, e in table.items():
        r = e.get("bd_rate_psnr") or {}
        v = r.get("value")
        txt = "n/a" if v is None else f"{v:+.2f}% [{r.get('ci_low') or float('nan'):+.2f}, {r.get('ci_high') or float('nan'):+.2f}]"
        print(f"  {codec:<12} BD-rate {txt}  (images {e['n_images']})")
    for row in out["ltchm_table3"]:
        ours = "n/a" if row["ours"] is None else f"{row['ours']:+.3f}"
        print(f"  LTCHM {row['paper_subject']:<5}-> {row['ours_codec']:<5} {row['quantity']:<13} paper {row['paper']:+.3f}  ours {ours} {row['unit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
