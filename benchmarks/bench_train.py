"""Training-step time: our loop (reproduce/training/train.py) vs a CompressAI examples/train.py step.

Reference step (the loop body of CompressAI's examples/train.py, same process, same model
architecture and init seed, same batch and crops, same thread count): Adam(lr 1e-4) on the
non-`.quantiles` parameters + Adam(lr 1e-3) on the quantiles, compressai.losses.
RateDistortionLoss (λ·255²·MSE + bpp), backward, clip_grad_norm_(1.0) on all parameters,
step, aux_loss().backward(), aux step.

Ours: the real `reproduce.training.train.train()` loop (its step is `train_step`; timing whole train()
iterations keeps the loop's bookkeeping in the figure), so each repetition runs a short train()
of warmup+steps+1 steps with validation/checkpoints only at the end, and we time the
interval between consecutive `batch_at` calls (wrapped with a timestamp recorder in this
process only). One interval = one complete loop iteration: crop sampling, noise seeding,
forward, loss, backward, clipping, both optimizer steps, LR scheduler, .item() logging,
tqdm. The last step (final validation + checkpoint) and the warm-up steps are not timed.
The reference draws its batches with the same `batch_at`, so data cost is equal.

Repetitions alternate which side goes first; the statistic is the median step time over
all timed steps of each side; ratio = ours / reference (goal <= 1.05), on wall time (the
goal) and on process CPU time (robust to other tenants of a shared machine).

    python benchmarks/bench_train.py            # hyperprior N=128 M=192, batch 8, 128² crops, 2 threads
    python benchmarks/bench_train.py --quick    # N=32 M=48, batch 4, 64² crops
writes results/bench/train.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import pin_threads, ucmerced_images


def train_images(n: int) -> tuple[list[str], str]:
    """`n` UC Merced train-split paths (evenly spaced, sorted): data/ucmerced, else ../shared."""
    paths, source = ucmerced_images("train", n, "bench_train")
    return [str(p) for p in paths], source


def _now() -> tuple[float, float]:
    """(wall, process CPU) seconds. CPU time is reported too: on a shared, overloaded machine
    wall time mostly measures the other tenants."""
    return time.perf_counter(), time.process_time()


def time_ours(cfg, paths, out_dir: Path, warmup: int) -> list[tuple[float, float]]:
    from rsicbench.reproduce.training import train as T
    stamps: list[tuple[float, float]] = []
    real = T.batch_at

    def stamped(*a, **k):
        stamps.append(_now())
        return real(*a, **k)

    T.batch_at = stamped  # train() looks batch_at up in its module at every step
    try:
        T.train(cfg, paths, paths[:1], out_dir, progress=False)
    finally:
        T.batch_at = real
    if len(stamps) != cfg.steps:
        raise SystemExit(f"bench_train: train() called batch_at {len(stamps)} times for {cfg.steps} steps; "
                         "the loop changed - update this benchmark's timing hook")
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])][warmup:]


def time_reference(cfg, images, warmup: int, steps: int) -> list[tuple[float, float]]:
    """CompressAI examples/train.py loop body over the same batches (`batch_at`)."""
    from compressai.losses import RateDistortionLoss

    from rsicbench.reproduce.models.registry import create_model
    from rsicbench.reproduce.training.train import batch_at

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    net = create_model(cfg.model, **cfg.arch)
    net.train()
    named = dict(net.named_parameters())
    main = [p for n, p in named.items() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in named.items() if n.endswith(".quantiles") and p.requires_grad]
    opt = torch.optim.Adam(main, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr)
    criterion = RateDistortionLoss(lmbda=cfg.lam)
    times = []
    for step in range(warmup + steps):
        t0 = _now()
        d = batch_at(images, step, cfg)
        opt.zero_grad()
        aux_opt.zero_grad()
        out = net(d)
        loss = criterion(out, d)
        loss["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
        opt.step()
        aux_loss = net.aux_loss()
        aux_loss.backward()
        aux_opt.step()
        t1 = _now()
        times.append((t1[0] - t0[0], t1[1] - t0[1]))
    return times[warmup:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bmshj2018-hyperprior")
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per repetition and side")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--images", type=int, default=32, help="train images the crops come from")
    ap.add_argument("--lam", type=float, default=0.013)
    ap.add_argument("--quick", action="store_true", help="N=32 M=48, batch 4, 64² crops")
    ap.add_argument("--out", default="results/bench/train.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.N, a.M, a.batch, a.patch = 32, 48, 4, 64
    pin_threads(a.threads)
    from rsicbench.fsutil import write_json
    from rsicbench.reproduce.training.train import TrainConfig, load_images

    paths, source = train_images(a.images)
    cfg = TrainConfig(model=a.model, lam=a.lam, arch={"N": a.N, "M": a.M}, steps=a.warmup + a.steps + 1,
                      batch=a.batch, patch=a.patch, clip=1.0, lr_milestones=(0.9,), val_every=10**9,
                      ckpt_every=10**9, val_patch=64, val_images=1, seed=0, device="cpu", threads=a.threads)
    images = load_images(paths, a.patch)
    ours: list[tuple[float, float]] = []
    ref: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        for rep in range(a.reps):
            order = ("ours", "ref") if rep % 2 == 0 else ("ref", "ours")
            for side in order:
                if side == "ours":
                    ours += time_ours(cfg, paths, Path(tmp) / f"rep{rep}", a.warmup)
                else:
                    ref += time_reference(cfg, images, a.warmup, a.steps)
            print(f"rep {rep + 1}/{a.reps}: median wall ours {statistics.median(t for t, _ in ours):.3f} s/step, "
                  f"reference {statistics.median(t for t, _ in ref):.3f} s/step", file=sys.stderr)
    m_ours, m_ref = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in ref)
    c_ours, c_ref = statistics.median(c for _, c in ours), statistics.median(c for _, c in ref)
    result = {
        "benchmark": "training step: reproduce.training.train loop vs CompressAI examples/train.py step",
        "command": "python benchmarks/bench_train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": a.model, "arch": {"N": a.N, "M": a.M}, "batch": a.batch, "patch": a.patch,
        "threads": a.threads, "steps_per_rep": a.steps, "warmup": a.warmup, "reps": a.reps,
        "lambda": a.lam, "images": f"{len(paths)} images from {source}",
        "ours_step_s_median": m_ours, "reference_step_s_median": m_ref,
        "ours_step_s": [t for t, _ in ours], "reference_step_s": [t for t, _ in ref],
        "ours_step_cpu_s_median": c_ours, "reference_step_cpu_s_median": c_ref,
        "ours_step_cpu_s": [c for _, c in ours], "reference_step_cpu_s": [c for _, c in ref],
        "ratio_ours_over_reference": m_ours / m_ref, "ratio_cpu_time": c_ours / c_ref, "goal": "ratio <= 1.05",
        "goal_met": m_ours / m_ref <= 1.05,
        "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    write_json(Path(a.out), result)
    print(f"median step wall: ours {m_ours:.4f} s, reference {m_ref:.4f} s, ratio {m_ours / m_ref:.3f} "
          f"(goal <= 1.05); CPU time: ours {c_ours:.4f} s, reference {c_ref:.4f} s, ratio {c_ours / c_ref:.3f}; "
          f"load average {os.getloadavg()[0]:.1f} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
