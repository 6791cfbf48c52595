"""Evaluation throughput: our learned evaluation vs compressai.utils.eval_model, same checkpoint.

Both sides, same process, same CPU budget (--threads cores), same checkpoint file, same images:
  * reference: what `python -m compressai.utils.eval_model checkpoint <dir> -a <arch> -p <ckpt>`
    does with real entropy coding (`entropy_estimation=False`): load the state dict,
    `<arch>.from_state_dict` + `update(force=True)` (its `load_checkpoint`, re-done here only
    to read the file with weights_only=True), then `eval_model(...)`: per image PIL read,
    zero-pad to 64, compress, decompress, PSNR-RGB and MS-SSIM-RGB (pytorch_msssim).
    Its bpp counts the first string of each latent (len(s[0])) - the byte count of a
    batch-of-one bitstream, no header.
  * ours: `reproduce.evaluation.engine.run_sweep` of the learned codec adapter, i.e. the
    `rsicbench evaluate` path: build the codec (load, update(force=True), weights
    fingerprint) and the MetricSuite (LPIPS weights), per image read_rgb, replicate-pad,
    compress, pack the container (v2 header + CRC-16), unpack and check it, decompress, crop,
    the FULL metric set of rsicbench.metrics.MetricSuite (PSNR, band PSNR, MS-SSIM (+dB),
    LPIPS-Alex, VIFp), write the lossless PNG reconstruction and the resume record, then
    per_image.csv, summary.json and the RD curve. Each repetition writes into a fresh folder
    (nothing is skipped) and starts with empty engine caches, so like the reference it
    builds its models inside the timed round.
CPU budget (--threads T, default 2 = this machine's cores): the reference runs with T torch
threads and with 1 (its only knob: eval_model is one sequential loop), and the faster of the
two counts; ours runs the engine with
workers=T, 1 torch thread each (configs/train.yaml's default-profile setting; the engine's
"auto" mode: threads of this process, or a process pool for autoregressive models). Both
sides thus use at most T cores.
One warm-up round per side is not timed (imports, allocator). Rounds alternate which side
goes first; throughput = images / median round wall time; ratio = ours / reference
(images/s, goal >= 1.0 with the full metric set). Process CPU time per round (all threads)
is recorded too (pool workers included): on a shared machine wall time partly measures the
other tenants. A second,
diagnostic phase repeats this with ours computing only PSNR (+band) and MS-SSIM, the
reference's metric set, to separate the cost of the pipeline from the cost of the extra
metrics (LPIPS, VIFp).

Checkpoint: --checkpoint (ours or CompressAI format), else results/train/<model>/r1/best.pt
if it exists, else a seeded UNTRAINED model at --N/--M saved in CompressAI format (same
compute per image; its bitstreams are larger than a trained model's).

    python benchmarks/bench_eval.py                  # 42 UC Merced test images, 2 cores
    python benchmarks/bench_eval.py --model mbt2018  # a context model: decoding dominates
    python benchmarks/bench_eval.py --threads 1      # both sides on one core
    python benchmarks/bench_eval.py --quick          # 4 images, N=32 M=48 (if untrained)
writes results/bench/eval-<model>.json. 42 images = the default profile's evaluation set
(2 per class): per-round set-up (model and LPIPS build) weighs as it does in `evaluate@`.
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


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the engine's process pool)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def test_images(n: int) -> tuple[list[Path], str]:
    return ucmerced_images("test", n, "bench_eval")


def make_checkpoint(a, tmp: Path) -> tuple[Path, str]:
    if a.checkpoint:
        return Path(a.checkpoint), "given"
    from rsicbench.results import run_dir

    trained = run_dir(a.model, "r1") / "best.pt"
    if trained.is_file():
        return trained, "trained (results/train)"
    from rsicbench.reproduce.models.registry import create_model

    torch.manual_seed(0)
    net = create_model(a.model, N=a.N, M=a.M)
    net.update(force=True)
    path = tmp / "untrained.pth.tar"
    torch.save({"state_dict": net.state_dict()}, path)
    return path, f"untrained seeded N={a.N} M={a.M} (no trained checkpoint found)"


def state_dict_of(path: Path) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if "model" in obj and "model_name" in obj:  # ours
        return obj["model"]
    for key in ("network", "state_dict", "model_state_dict"):  # as compressai's load_checkpoint
        if key in obj:
            return obj[key]
    return obj


def run_reference(arch: str, ckpt: Path, files: list[Path], root: Path, threads: int) -> tuple[float, dict]:
    from compressai.utils.eval_model.__main__ import eval_model
    from compressai.zoo.image import model_architectures as architectures  # what eval_model uses

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    net = architectures[arch].from_state_dict(state_dict_of(ckpt))
    net.update(force=True)
    net = net.eval()
    metrics = eval_model(net, Path(root), Path(root), files, entropy_estimation=False,
                         architecture=arch, half=False, per_image=False)
    return time.perf_counter() - t0, dict(metrics)


FULL = {"device": "cpu", "lpips": True}  # the metric set of configs/train.yaml `eval.metrics`
SAME_AS_REFERENCE = {"device": "cpu", "lpips": False, "vifp": False}  # PSNR (+band) and MS-SSIM


def run_ours(model: str, ckpt: Path, files: list[Path], root: Path, out: Path, threads: int,
             metrics: dict) -> tuple[float, dict]:
    from rsicbench.reproduce.evaluation import engine
    from rsicbench.results import Sample
    samples = [Sample(str(p), str(p.relative_to(root)) if p.is_relative_to(root) else p.name) for p in files]
    spec = engine.SweepSpec(codec=model, dataset="bench", split="test", points=[engine.RatePoint(quality=1)],
                            out_root=out, options={"checkpoint": str(ckpt), "threads": 1},
                            metrics=dict(metrics), workers=threads, threads=1)
    engine.clear_caches()  # codec + MetricSuite are built inside the timed round
    t0 = time.perf_counter()
    res = engine.run_sweep(spec, samples)
    dt = time.perf_counter() - t0
    if res.failed:
        raise SystemExit(f"bench_eval: our evaluation failed on {res.failed[:3]}")
    return dt, res.summaries[0]["mean"]


def phase(name: str, metrics: dict, a, ckpt: Path, files: list[Path], root: Path, tmp: Path) -> dict:
    """Warm-up round + `a.rounds` rotated rounds of ours (with `metrics`) vs the reference.

    With a budget of T > 1 cores the reference is timed with T torch threads and with 1, and
    its faster setting counts (its best use of the budget: on a loaded machine OpenMP teams
    of T threads can be far slower than one thread).
    """
    ref_threads = [a.threads] + ([1] if a.threads > 1 else [])
    sides = ["ours"] + [f"ref{t}" for t in ref_threads]
    times: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    values: dict[str, dict] = {}
    for rnd in range(a.rounds + 1):  # round 0: warm-up, not timed (imports, allocator)
        for side in sides[rnd % len(sides):] + sides[: rnd % len(sides)]:
            c0 = cpu_seconds()
            if side == "ours":
                dt, values[side] = run_ours(a.model, ckpt, files, root, tmp / f"{name}{rnd}", a.threads, metrics)
            else:
                dt, values[side] = run_reference(a.model, ckpt, files, root, int(side[3:]))
            dc = cpu_seconds() - c0
            if rnd:
                times[side].append(dt)
                cpu[side].append(dc)
            print(f"{name} round {rnd}{' (warm-up)' if rnd == 0 else ''} {side}: {dt:.2f} s wall, {dc:.2f} s CPU",
                  file=sys.stderr)
    n = len(files)
    ips = {k: n / statistics.median(v) for k, v in times.items()}
    cps = {k: n / statistics.median(v) for k, v in cpu.items()}
    best = max(sides[1:], key=lambda k: ips[k])
    ref = values[best]
    return {"ours_metrics": metrics, "ours_round_s": times["ours"], "ours_round_cpu_s": cpu["ours"],
            "reference_round_s": {k[3:]: times[k] for k in sides[1:]},
            "reference_round_cpu_s": {k[3:]: cpu[k] for k in sides[1:]},
            "reference_images_per_s_by_threads": {k[3:]: ips[k] for k in sides[1:]},
            "reference_threads_used": int(best[3:]),
            "ours_images_per_s": ips["ours"], "reference_images_per_s": ips[best],
            "ratio_ours_over_reference": ips["ours"] / ips[best],
            "ours_images_per_cpu_s": cps["ours"], "reference_images_per_cpu_s": max(cps[k] for k in sides[1:]),
            "ratio_per_cpu_s": cps["ours"] / max(cps[k] for k in sides[1:]),
            "ours_mean": {k: values["ours"].get(k) for k in ("bpp", "psnr", "msssim", "lpips", "vifp")},
            "reference_mean": {k: ref.get(k) for k in ("bpp", "psnr-rgb", "ms-ssim-rgb")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bmshj2018-hyperprior")
    ap.add_argument("--checkpoint")
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=192)
    ap.add_argument("--images", type=int, help="default 42 (--quick: 4)")
    ap.add_argument("--threads", type=int, default=2,
                    help="CPU budget in cores: reference torch threads; our engine workers (1 thread each)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-same-metrics", action="store_true",
                    help="skip the diagnostic phase where ours computes only PSNR + MS-SSIM")
    ap.add_argument("--quick", action="store_true", help="4 images, N=32 M=48")
    ap.add_argument("--out", help="default results/bench/eval-<model>.json")
    a = ap.parse_args(argv)
    a.out = a.out or f"results/bench/eval-{a.model}.json"
    if a.quick:
        a.N, a.M = 32, 48
    a.images = a.images or (4 if a.quick else 42)
    pin_threads(a.threads)
    from rsicbench.fsutil import write_json

    files, source = test_images(a.images)
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        ckpt, ckpt_kind = make_checkpoint(a, Path(tmp))
        full = phase("full", FULL, a, ckpt, files, root, Path(tmp))
        same = None if a.no_same_metrics else phase("same", SAME_AS_REFERENCE, a, ckpt, files, root, Path(tmp))
    ratio = full["ratio_ours_over_reference"]
    result = {
        "benchmark": "learned evaluation throughput: engine + codec adapter + MetricSuite vs compressai eval_model",
        "command": "python benchmarks/bench_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": a.model, "checkpoint": ckpt_kind, "images": f"{len(files)} images from {source}",
        "image_files": [str(p.relative_to(root)) for p in files], "threads": a.threads, "rounds": a.rounds,
        "budget": f"{a.threads} core(s): reference torch.set_num_threads({a.threads})"
                  + (" or 1, whichever is faster" if a.threads > 1 else "")
                  + f"; ours engine workers={a.threads} x 1 torch thread"
                  + (" (engine parallel mode auto)" if a.threads > 1 else ""),
        "full_metric_set": full, "same_metrics_as_reference": same,
        "ratio_ours_over_reference": ratio, "goal": "ratio (full metric set) >= 1.0", "goal_met": ratio >= 1.0,
        "ours_computes": "codec + MetricSuite build; real coding + container; psnr, psnr_band, msssim, "
                         "msssim_db, lpips (alex), vifp; writes recon PNG, parts, per_image.csv, summary.json, RD curve",
        "reference_computes": "model build; real coding (entropy_estimation=False); psnr-rgb, ms-ssim-rgb; no files",
        "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    write_json(Path(a.out), result)
    for label, ph in (("full metric set", full), ("PSNR+MS-SSIM only", same)):
        if ph:
            print(f"{label}: images/s ours {ph['ours_images_per_s']:.3f}, reference "
                  f"{ph['reference_images_per_s']:.3f} ({ph['reference_threads_used']} thread(s)), ratio {ph['ratio_ours_over_reference']:.3f}; "
                  f"images per CPU-s ratio {ph['ratio_per_cpu_s']:.3f}")
    print(f"goal ratio >= 1.0 (full metric set): {'met' if ratio >= 1.0 else 'MISSED'} -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
