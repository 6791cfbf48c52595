"""`rsicbench complexity --model <name> [--checkpoint f]`: params, FLOPs, timing, memory.

Writes results/complexity/<model>.json. Without --checkpoint the model is randomly
initialised at the active profile's widths (timing then reflects untrained latents).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from rsicbench.config import deep_merge, settings
from rsicbench.fsutil import write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench complexity", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--profile")
    ap.add_argument("--size", type=int, help="input side (default: configs/train.yaml complexity.size)")
    ap.add_argument("--repeats", type=int, help="timed repeats (default: configs/train.yaml complexity.repeats)")
    ap.add_argument("--out", help="default results/complexity/<model>.json")
    a = ap.parse_args(argv)
    cfg = settings("train", a.profile)
    torch.set_num_threads(int(cfg.get("threads", 2)))
    torch.manual_seed(int(cfg.get("seed", 0)))
    from rsicbench.reproduce.papers.complexity import measure
    from rsicbench.reproduce.models.registry import create_model, model_arch

    try:
        if a.checkpoint:
            from rsicbench.reproduce.training.weight_sources import load_weights  # train / zoo / checkpoint:<path>

            model, meta = load_weights(a.model, a.checkpoint)
            arch = meta["arch"]
        else:
            arch = model_arch(a.model, deep_merge(cfg.get("arch", {}), cfg.get("models", {}).get(a.model, {}).get("arch", {})))
            model = create_model(a.model, **arch)
        sizes = {"size": 256, "repeats": 3, **(cfg.get("complexity") or {})}
        res = measure(model, a.size or int(sizes["size"]), a.repeats or int(sizes["repeats"]))
    except Exception as e:
        print(f"rsicbench complexity: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    res.update(model=a.model, arch=arch, checkpoint=a.checkpoint, profile=cfg["profile"])
    if a.checkpoint:
        res["source"] = meta.get("source")
    out = Path(a.out or f"results/complexity/{a.model}.json")
    write_json(out, res)
    print(json.dumps({"model": a.model, "params": res["params"]["total"], "gflops": res["flops"] / 1e9,
                      **{k: res["timing"][k] for k in ("encode_s", "decode_s")}, "out": str(out)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
