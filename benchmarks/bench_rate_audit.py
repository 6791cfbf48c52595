"""Rate audit of container v2: real bitstream bytes vs the model's estimate, per learned codec.

Trains a ci-width model for `--steps` steps (reproduce.train.train, 64-px crops of UC Merced
from the raw mirror), then runs the engine and `rate_check` (the `evaluate` stage's audit) on
`--images` UC Merced 256x256 images (one per class), and breaks the real bytes down into
header and string groups next to each likelihood tensor's estimate. Writes
results/bench/rate_audit/<model>-l<lam>-s<steps>/summary.json and prints it.

    python benchmarks/bench_rate_audit.py bmshj2018-hyperprior 0.05 100 --images 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# ci-profile-like widths: seconds of training per model
ARCH = {"ltchm": {"N": 16, "ep_hidden": 32}, "dmenet": {"N": 16}, "cheng2020-anchor": {"N": 16},
        "cheng2020-gmm": {"N": 16}, "cheng2020-attn": {"N": 16},
        "cfhpm": {"N": 16, "M": 24, "hyper_channels": 16}, "mroi-cfhpm": {"N": 16, "M": 24, "hyper_channels": 16}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("lam", type=float, help="internal lambda (reproduce/training/lambdas.py)")
    ap.add_argument("steps", type=int)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("results/bench/rate_audit"))
    a = ap.parse_args(argv)

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

    root = a.out / f"{a.model}-l{a.lam:g}-s{a.steps}"
    root.mkdir(parents=True, exist_ok=True)
    allp = engine.samples_from_folder(shared_path("datasets", "ucmerced"))
    evals = engine.subset(allp, per_class=1, max_images=a.images)
    held_out = {s.path for s in evals}
    trainp = [s.path for s in engine.subset(allp, per_class=3) if s.path not in held_out][:48]
    t0 = time.time()
    if not (root / "run" / "best.pt").exists():
        cfg = TrainConfig(model=a.model, lam=a.lam, arch=ARCH.get(a.model, {"N": 16, "M": 24}), steps=a.steps,
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
    header, real_sum, est_sum = [], None, {}
    for s in sorted(evals, key=lambda s: s.relpath):
        img = read_rgb(s.path)
        data = codec.encode(img)
        c = container.unpack(data, learned_stream.layout(codec), learned_stream.tag(codec))
        header.append(len(data) - sum(len(x) for g in c.strings for x in g))
        x, _, _ = codec._to_tensor(img)
        with torch.no_grad():
            out = codec.model(x, roi=torch.ones(1, 1, *x.shape[-2:])) if codec.needs_roi else codec.model(x)
        for k, v in out["likelihoods"].items():
            est_sum[k] = est_sum.get(k, 0.0) + float((-torch.log2(v)).sum()) / 8
        real = [sum(len(x) for x in g) for g in c.strings]
        real_sum = [p + q for p, q in zip(real_sum or [0] * len(real), real)]
    n = len(header)
    summ.update(model=a.model, lam=a.lam, steps=a.steps, header_bytes=sorted(set(header)), failed=len(res.failed),
                group_bytes_real=[round(v / n, 1) for v in real_sum],
                likelihood_bytes_est={k: round(v / n, 1) for k, v in est_sum.items()},
                train_s=round(t_train, 1), total_s=round(time.time() - t0, 1))
    print(json.dumps(summ))
    (root / "summary.json").write_text(json.dumps(summ, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
