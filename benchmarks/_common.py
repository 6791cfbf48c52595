"""Set-up shared by the benchmarks that compare our code with CompressAI's (bench_eval, bench_train)."""

from __future__ import annotations

import os
from pathlib import Path


def pin_threads(threads: int) -> None:
    """Fix the CPU thread budget of this process: OpenMP (unless the caller set it) and torch."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)


def ucmerced_images(split: str, n: int, who: str) -> tuple[list[Path], str]:
    """`n` evenly spaced UC Merced images of `split` (sorted) and where they came from.

    data/ucmerced/splits/<split>.txt if the dataset stage has run, else every image of the
    raw mirror (../shared/datasets/ucmerced/<class>/*.webp).
    """
    from rsicbench.paths import project_root, shared_path

    if (project_root() / "data" / "ucmerced" / "splits" / f"{split}.txt").is_file():
        from rsicbench.datasets import load_split

        paths, source = [Path(s.path) for s in load_split("ucmerced", split)], f"data/ucmerced {split} split"
    else:
        root = shared_path("datasets", "ucmerced")
        if root is None:
            raise SystemExit(f"{who}: no UC Merced images (data/ucmerced or ../shared/datasets/ucmerced)")
        paths, source = sorted(root.glob("*/*.webp")), f"{root} (all classes)"
    if not paths:
        raise SystemExit(f"{who}: the UC Merced {split} image list ({source}) is empty")
    step = max(1, len(paths) // n)
    return paths[::step][:n], source
