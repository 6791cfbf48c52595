"""What a profile's training costs on this machine: every learned model's optimisation step at
the profile's batch, crop and width, measured, times the steps the profile plans for it.

For each model of the profile (`rsicbench train --plan`: the CompressAI baselines and every
paper variant; `--models` to pick), in one process: build it at the profile's resolved arch,
run `--warmup` untimed then `--steps` timed `train_step`s (the trainer's own step: forward,
loss, backward, clipping, both optimizers) on a fixed batch of UC Merced crops, and record
wall and process-CPU seconds per step. The plan: Σ over the profile's rate points of their
`steps` (with `train.finetune` the anchor's full run plus each fine-tuned rate's own steps),
from `run_config`, the same resolution the train stages use. Projected training time =
Σ steps x wall per step. Not counted: validation (16 crops every few hundred steps), process
start, evaluation. A training run's own log.csv `seconds` column is the check against reality.

This shared 2-core host changes speed by up to ~2x over a day (docs/learned.md "A cold default
run"), so a projection is only as good as the moment it was timed. The same process therefore
times a reference step first and last: CompressAI's bmshj2018-hyperprior at its own width
(N=128, M=192) at the profile's batch and crop, through the same train_step. Each model's
`ratio_to_reference` (wall / the mean of both reference timings) is what carries over to
another moment or machine; `reference.drift` (last / first) says how much the host moved during
the run. To project for another moment: ratio x a reference step timed then x steps.

    python benchmarks/bench_profile_budget.py --profile default         # -> results/bench/budget-default.json
    python benchmarks/bench_profile_budget.py --profile default --models mbt2018-mean dmenet-full
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def plan(cfg: dict, model: str) -> tuple[dict, list[dict]]:
    """(the anchor or first run's TrainConfig as a dict, one entry per rate point)."""
    from rsicbench.reproduce.training.run_config import rate_tags, run_config

    runs = [(t, run_config(model, t, cfg)) for t in rate_tags(model, "profile", cfg)]
    points = [{"rate": t, "steps": r.steps, "init_from": r.init_from} for t, r in runs]
    return runs[0][1], points


def measure(tc, images, warmup: int, steps: int) -> dict:
    import torch

    from rsicbench.reproduce.models.registry import create_model
    from rsicbench.reproduce.training.train import batch_at, make_optimizers, train_step

    torch.manual_seed(tc.seed)
    model = create_model(tc.model, **tc.arch)
    opts = make_optimizers(model, tc)
    model.train()
    roi = torch.ones(tc.batch, 1, tc.patch, tc.patch) if getattr(model, "needs_roi", False) else None
    for s in range(warmup):
        train_step(model, batch_at(images, s, tc), roi, opts, tc, s)
    c0, t0 = time.process_time(), time.perf_counter()
    for s in range(warmup, warmup + steps):
        train_step(model, batch_at(images, s, tc), roi, opts, tc, s)
    return {"wall_s": (time.perf_counter() - t0) / steps, "cpu_s": (time.process_time() - c0) / steps,
            "params": sum(p.numel() for p in model.parameters())}


REFERENCE = ("bmshj2018-hyperprior", {"N": 128, "M": 192})  # CompressAI's own width for this model


def reference_step(cfg: dict, images, warmup: int, steps: int) -> dict:
    """The reference step (module docstring) at the profile's batch, crop and recipe."""
    from dataclasses import replace

    from rsicbench.reproduce.training.run_config import run_config

    model, arch = REFERENCE
    tc = replace(run_config(model, "r0", cfg, {"arch": arch}), init_from="")
    return {"model": model, "arch": tc.arch, "batch": tc.batch, "patch": tc.patch, **measure(tc, images, warmup, steps)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--models", nargs="+", help="default: every model of the profile's plan")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    from _common import ucmerced_images
    from rsicbench.config import settings
    from rsicbench.imageio import read_rgb

    torch.set_num_threads(a.threads)
    cfg = settings("train", a.profile)
    paths, source = ucmerced_images("train", 16, "bench_profile_budget")
    images = [read_rgb(str(p)) for p in paths]
    rows, total_s, total_steps = [], 0.0, 0
    load0 = os.getloadavg()
    ref_first = reference_step(cfg, images, a.warmup, a.steps)
    print(f"reference {ref_first['model']} {json.dumps(ref_first['arch'])}: {ref_first['wall_s']:.3f} s/step wall "
          f"(first)", flush=True)
    for model in a.models or sorted(cfg["models"]):
        tc, points = plan(cfg, model)
        m = measure(tc, images, a.warmup, a.steps)
        steps = sum(p["steps"] for p in points)
        row = {"model": model, "arch": tc.arch, "batch": tc.batch, "patch": tc.patch, **m,
               "rate_points": points, "planned_steps": steps, "projected_train_s": steps * m["wall_s"]}
        rows.append(row)
        total_s += row["projected_train_s"]
        total_steps += steps
        print(f"{model:28s} {json.dumps(tc.arch):32s} {m['wall_s']:.3f} s/step wall {m['cpu_s']:.3f} cpu "
              f"({m['wall_s'] / ref_first['wall_s']:.2f}x the first reference step) "
              f"x {steps:6d} steps = {row['projected_train_s'] / 3600:.2f} h", flush=True)
    ref_last = reference_step(cfg, images, a.warmup, a.steps)
    ref_s = (ref_first["wall_s"] + ref_last["wall_s"]) / 2
    for row in rows:
        row["ratio_to_reference"] = row["wall_s"] / ref_s
    reference = {k: ref_first[k] for k in ("model", "arch", "batch", "patch")}
    reference.update(first_wall_s=ref_first["wall_s"], last_wall_s=ref_last["wall_s"], mean_wall_s=ref_s,
                     drift=ref_last["wall_s"] / ref_first["wall_s"])
    print(f"reference last: {ref_last['wall_s']:.3f} s/step wall (drift x{reference['drift']:.2f} over the run)")
    out = {"profile": a.profile, "threads": a.threads, "images": source, "timed_steps": a.steps,
           "loadavg_start": load0, "loadavg_end": os.getloadavg(), "reference": reference, "models": rows,
           "planned_steps": total_steps, "projected_train_h": total_s / 3600,
           "projected_train_reference_steps": total_s / ref_s}
    path = Path(a.out or f"results/bench/budget-{a.profile}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    from rsicbench.fsutil import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(rows)} models, {total_steps} steps: {total_s / 3600:.2f} h of training projected -> {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
