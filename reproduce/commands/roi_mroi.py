"""`rsicbench roi masks|train|evaluate`: ROI masks as data, and MROI-CFHPM's RD rows.

Settings: configs/roi.yaml `mroi` (common + profile). The runs themselves (what is trained on
what, which rate points, where results go) are reproduce/papers/mroi_runs.py; these handlers
parse, call and print.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def masks_cmd(args: argparse.Namespace) -> int:
    from rsicbench.fsutil import write_json
    from rsicbench.reproduce.roi.masks import build_masks

    stats = build_masks(args.dataset, args.data_dir, args.out_root, progress=sys.stderr.isatty())
    write_json(args.summary or f"results/roi/masks_{args.dataset}.json", stats)
    print(json.dumps(stats, sort_keys=True))
    return 0


def train_cmd(args: argparse.Namespace) -> int:
    from rsicbench.reproduce.papers.mroi_runs import train_model

    result = train_model(args.model, args.rate, progress=not args.quiet and sys.stderr.isatty(),
                         on_change=args.on_config_change)
    print(json.dumps(result, sort_keys=True))
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    from rsicbench.reproduce.papers.mroi_runs import evaluate_codec

    summaries = evaluate_codec(args.codec, args.dataset, Path(args.out_root))
    for s in sorted(summaries, key=lambda s: s["mean"]["bpp"]):
        m = s["mean"]
        print(f"{args.dataset}/{args.codec}/{s['qtag']}: bpp {m['bpp']:.4f} psnr {m['psnr']:.2f} "
              f"roi_psnr {m['roi_psnr'] if m['roi_psnr'] is None else round(m['roi_psnr'], 2)}")
    return 0
