"""Rate audit of container format 4: real bitstream bytes vs the model's estimate, per learned codec.

Trains a ci-width model for `--steps` steps (reproduce.train.train, 64-px crops of UC Merced
from the raw mirror), then runs the engine and `rate_check` (the `evaluate` stage's audit) on
`--images` UC Merced 256x256 images (one per class), and breaks real/est down by cause
(bytes per image, coding/coded_info.py):
  forward    eval-mode forward likelihoods (the estimate before #16: other symbols for
             CompressAI's autoregressive models)
  model      the model's likelihoods of exactly the coded symbols (= the audit's bpp_est)
  table      the same at the scale-table scales the coder uses (GaussianConditional)
  cdf        the coder's integer CDFs incl. escapes (compressai tables; the GMM's 24-bit rows)
  strings    the real rANS stream (one per image); strings - cdf = final state, GMM support
  header     container bytes around the stream
Writes results/bench/rate_audit/<model>-l<lam>-s<steps>/summary.json and prints it;
`--table` instead collects every summary.json there into table.md / table.csv.

    python benchmarks/bench_rate_audit.py bmshj2018-hyperprior 0.05 100 --images 8
    python benchmarks/bench_rate_audit.py --table
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

# ci-profile-like widths: seconds of training per model
ARCH = {"ltchm": {"N": 16, "ep_hidden": 32}, "dmenet": {"N": 16}, "cheng2020-anchor": {"N": 16},
        "cheng2020-gmm": {"N": 16}, "cheng2020-attn": {"N": 16},
        "cfhpm": {"N": 16, "M": 24, "hyper_channels": 16}, "mroi-cfhpm": {"N": 16, "M": 24, "hyper_channels": 16}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("lam", type=float, nargs="?", help="internal lambda (reproduce/training/lambdas.py)")
    ap.add_argument("steps", type=int, nargs="?")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("results/bench/rate_audit"))
    ap.add_argument("--table", action="store_true", help="collect the summaries under --out into table.md/csv")
    ap.add_argument("--arch", type=json.loads, default=None,
                    help='widths instead of the ci-like ARCH entry, e.g. \'{"N": 32}\' (named in the run folder)')
    a = ap.parse_args(argv)
    if a.table:
        from rate_audit_table import write_table

        print(write_table(a.out))
        return 0
    if a.steps is None:
        ap.error("model, lam and steps are required (or --table)")

    from _common import pin_threads

    pin_threads(1)
    import torch

    from rsicbench.imageio import read_rgb
    from rsicbench.paths import shared_path
    from rsicbench.reproduce.coding import container
    from rsicbench.reproduce.evaluation import engine
    from rsicbench.reproduce.coding import learned_stream
    from rsicbench.reproduce.evaluation.rate_audit import rate_check
    from rsicbench.reproduce.codecs.base import create_codec
    from rsicbench.reproduce.training.train import TrainConfig, train

    arch = a.arch or ARCH.get(a.model, {"N": 16, "M": 24})
    tag = "".join(f"-{k}{v}" for k, v in sorted(a.arch.items())) if a.arch else ""
    root = a.out / f"{a.model}-l{a.lam:g}-s{a.steps}{tag}"
    root.mkdir(parents=True, exist_ok=True)
    allp = engine.samples_from_folder(shared_path("datasets", "ucmerced"))
    evals = engine.subset(allp, per_class=1, max_images=a.images)
    held_out = {s.path for s in evals}
    trainp = [s.path for s in engine.subset(allp, per_class=3) if s.path not in held_out][:48]
    t0 = time.time()
    if not (root / "run" / "best.pt").exists():
        cfg = TrainConfig(model=a.model, lam=a.lam, arch=arch, steps=a.steps,
                          batch=4, patch=64, lr=1e-3, val_every=a.steps, ckpt_every=a.steps, val_patch=64,
                          val_images=4, threads=1)
        train(cfg, trainp, trainp[:4], root / "run", progress=False)
    t_train = time.time() - t0
    opts = {"checkpoint": str(root / "run" / "best.pt"), "threads": 1}
    if a.model == "mroi-cfhpm":
        opts["roi_provider"] = "full"
    spec = engine.SweepSpec(codec=a.model, dataset="ucm", split="test", points=[engine.RatePoint(quality=0)],
                            out_root=root / "rd", workers=1, options=opts, metrics={"device": "cpu", "lpips": False})
    res = engine.run_sweep(spec, evals)
    codec = create_codec(a.model, 0, **opts)
    summ = rate_check(codec, evals, spec.point_dir(spec.points[0]))
    header, real_sum, fwd_sum, coded = [], None, {}, {}
    for s in sorted(evals, key=lambda s: s.relpath):
        img = read_rgb(s.path)
        data = codec.encode(img)  # an ROI model takes the `full` provider (opts)
        c = container.unpack(data, learned_stream.tag(codec))
        header.append(len(data) - len(c.payload))
        x, _, _ = codec._to_tensor(img)
        with torch.no_grad():
            out = codec.model(x, roi=torch.ones(1, 1, *x.shape[-2:])) if codec.needs_roi else codec.model(x)
        for k, v in out["likelihoods"].items():
            fwd_sum[k] = fwd_sum.get(k, 0.0) + float((-torch.log2(v)).sum()) / 8
        for k, b in codec.coded_bits(img).items():
            if b.symbols:
                acc = coded.setdefault(k, dict.fromkeys(("model", "table", "cdf"), 0.0))
                for f in acc:  # table/cdf stay NaN where a coder has none
                    acc[f] += getattr(b, f) / 8
        real = [len(c.payload)]
        real_sum = [p + q for p, q in zip(real_sum or [0] * len(real), real)]
    n = len(header)
    tot = {f: sum(v[f] for v in coded.values() if not math.isnan(v[f])) / n for f in ("model", "table", "cdf")}
    # a coder without table/cdf bits (GMM) counts its model bits there: its cost shows as flush
    for f in ("table", "cdf"):
        tot[f] += sum(v["model"] for v in coded.values() if math.isnan(v[f])) / n
    strings = sum(real_sum) / n
    bytes_pi = {"forward": sum(fwd_sum.values()) / n, **tot, "strings": strings, "header": sum(header) / n}
    summ.update(model=a.model, lam=a.lam, steps=a.steps, arch=arch, header_bytes=sorted(set(header)), failed=len(res.failed),
                group_bytes_real=[round(v / n, 1) for v in real_sum],
                likelihood_bytes_forward={k: round(v / n, 1) for k, v in fwd_sum.items()},
                coded_bytes={k: {f: round(x / n, 1) for f, x in v.items()} for k, v in coded.items()},
                bytes_per_image={k: round(v, 2) for k, v in bytes_pi.items()},
                train_s=round(t_train, 1), total_s=round(time.time() - t0, 1))
    print(json.dumps(summ))
    (root / "summary.json").write_text(json.dumps(summ, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
