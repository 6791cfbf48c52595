"""Classical-sweep benchmark: throughput with 2 workers vs 1 (goal >= 1.8x), and a
per-codec encode/decode time table (median per 256x256 UC Merced image, one thread).

  python benchmarks/bench_sweep.py [--images 24] [--codec jpeg2000] [--out results/bench/sweep.json]

Images: the UC Merced test split (data/ucmerced) when present, else the ../shared mirror.
Throughput runs the real engine (metrics included, LPIPS on) into a temporary folder, so
process start-up and metric costs are part of the figure, as in a real sweep.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rsicbench.fsutil import write_json
from rsicbench.imageio import read_rgb
from rsicbench.reproduce.codecs.classical import CLASSICAL_CODECS
from rsicbench.reproduce.codecs.base import create_codec
from rsicbench.reproduce.evaluation.engine import SweepSpec, run_sweep, subset
from rsicbench.results import RatePoint, Sample

MID_QUALITY = {"jpeg": 30, "jpeg2000": 40, "webp": 35, "hevc": 35, "avif": 40, "jpegxl": 40}


def bench_samples(n: int) -> list[Sample]:
    try:
        from rsicbench.datasets import load_split

        samples = load_split("ucmerced", "test")
    except (FileNotFoundError, ValueError, ImportError):
        from rsicbench.paths import shared_path
        from rsicbench.reproduce.evaluation.engine import samples_from_folder

        root = shared_path("datasets", "ucmerced")
        if root is None:
            raise SystemExit("bench_sweep: neither data/ucmerced nor ../shared/datasets/ucmerced is present")
        samples = samples_from_folder(root)
    per_class = max(1, -(-n // 21))
    return subset(samples, per_class=per_class, max_images=n)


def codec_times(samples: list[Sample], repeats: int = 3) -> dict[str, dict[str, float]]:
    import torch

    torch.set_num_threads(1)
    images = [read_rgb(s.path) for s in samples[:8]]
    table = {}
    for name in CLASSICAL_CODECS:
        codec = create_codec(name, MID_QUALITY[name])
        enc, dec, bpp = [], [], []
        for img in images:
            for _ in range(repeats):
                t0 = time.perf_counter()
                data = codec.encode(img)
                t1 = time.perf_counter()
                codec.decode(data)
                t2 = time.perf_counter()
                enc.append(t1 - t0)
                dec.append(t2 - t1)
            bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
        table[name] = {"quality": MID_QUALITY[name], "enc_ms": 1000 * statistics.median(enc),
                       "dec_ms": 1000 * statistics.median(dec), "bpp": statistics.mean(bpp)}  # fmt: skip
    return table


def throughput(samples: list[Sample], codec: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        spec = SweepSpec(codec=codec, dataset="bench", split="test", out_root=Path(tmp),
                         points=[RatePoint(quality=q) for q in (110, 40, 20)] if codec == "jpeg2000"
                         else [RatePoint(quality=MID_QUALITY[codec])],
                         metrics={"device": "cpu", "lpips": True}, workers=workers, threads=1)  # fmt: skip
        t0 = time.perf_counter()
        res = run_sweep(spec, samples)
        wall = time.perf_counter() - t0
        if res.failed:
            raise SystemExit(f"bench_sweep: {len(res.failed)} image(s) failed: {res.failed[:3]}")
        return res.computed / wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--codec", default="jpeg2000", help="codec of the throughput run")
    ap.add_argument("--out", default="results/bench/sweep.json")
    args = ap.parse_args(argv)
    samples = bench_samples(args.images)
    table = codec_times(samples)
    print(f"{'codec':<10} {'quality':>7} {'bpp':>6} {'enc ms':>8} {'dec ms':>8}")
    for name, r in table.items():
        print(f"{name:<10} {r['quality']:>7} {r['bpp']:>6.3f} {r['enc_ms']:>8.2f} {r['dec_ms']:>8.2f}")
    one = throughput(samples, args.codec, 1)
    two = throughput(samples, args.codec, 2)
    ratio = two / one
    print(f"throughput {args.codec}, {len(samples)} images: 1 worker {one:.2f} img-points/s, "
          f"2 workers {two:.2f} img-points/s, speed-up {ratio:.2f}x (goal >= 1.8x)")  # fmt: skip
    write_json(args.out, {"images": len(samples), "codec": args.codec, "codec_times": table,
                          "throughput_1_worker": one, "throughput_2_workers": two,
                          "speedup_2_vs_1": ratio, "goal_speedup": 1.8})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
