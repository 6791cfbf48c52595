"""benchmarks/bench_profile_budget.py: the reference step (CompressAI's bmshj2018-hyperprior at its
own width) is built as documented, and each model's cost is carried as a ratio to it."""

from __future__ import annotations

import numpy as np
from bench_loader import load_bench


def test_reference_step_is_compressais_width_at_the_profiles_batch_and_crop():
    from rsicbench.config import settings

    bench = load_bench("bench_profile_budget")
    cfg = settings("train", "ci")
    images = [np.random.default_rng(i).integers(0, 256, (96, 96, 3), dtype=np.uint8) for i in range(3)]
    ref = bench.reference_step(cfg, images, warmup=0, steps=1)
    assert ref["model"] == "bmshj2018-hyperprior" and ref["arch"] == {"N": 128, "M": 192}
    assert (ref["batch"], ref["patch"]) == (cfg["train"]["batch"], cfg["train"]["patch"])  # the profile's, not a typed one
    assert ref["wall_s"] > 0 and ref["cpu_s"] > 0 and ref["params"] > 4_000_000  # N=128/M=192 was really built
