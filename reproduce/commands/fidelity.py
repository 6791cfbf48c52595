"""`rsicbench fidelity`: params/FLOPs of our paper models beside the papers' (claims/*.yaml).

Writes results/fidelity.json and results/fidelity.md; entries come from configs/papers.yaml
(`fidelity:`); `--only "LTCHM Table 5"` restricts to rows whose table starts with that text.
"""

from __future__ import annotations

import argparse

import torch
from tqdm import tqdm

from rsicbench.config import settings
from rsicbench.paths import project_root
from rsicbench.reproduce.papers import fidelity
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench fidelity", description=__doc__)
    ap.add_argument("--only", action="append", default=None, help="table prefix to keep (repeatable)")
    ap.add_argument("--out", default="results/fidelity.json")
    ap.add_argument("--profile", default=None)
    args = ap.parse_args(argv)
    cfg = settings("papers", args.profile)
    torch.set_num_threads(int(cfg.get("threads", 2)))
    only = args.only or cfg.get("fidelity_only")
    entries = [e for e in cfg["fidelity"] if not only or any(e["table"].startswith(o) for o in only)]
    rows = []
    for e in tqdm(entries, desc="fidelity", disable=None):
        rows += fidelity.run([e])
    root = project_root()
    out = root / args.out
    fidelity.write(rows, out, out.with_suffix(".md"))
    print(fidelity.markdown(rows))
    return 0
