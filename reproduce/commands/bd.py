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
import sys
from pathlib import Path

from rsicbench import results
from rsicbench.fsutil import write_json
from rsicbench.reproduce.evaluation.bd_table import (
    bd_table,
    ltchm_rows,
)


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
    found = [c for c in results.codecs(rd_root, dataset) if results.curve(rd_root, dataset, c)]
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
