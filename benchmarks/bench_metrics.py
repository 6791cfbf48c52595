"""Throughput of the full metric set per 256x256 pair vs the reference packages one by one.

Reference (same process, same threads): for each pair, numpy PSNR, pytorch_msssim.ms_ssim,
the lpips package's LPIPS(alex, v0.1) forward (same local AlexNet weights), piq.vif_p.
Ours: MetricSuite.compute_batch over all pairs (batched), and MetricSuite(...) one pair at a
time (single). Ours computes more (psnr_band, msssim_db, roi_psnr) in that time.
VIFp values are compared with piq run in float64 (piq's float32 result has ~1e-4 rounding
error of its own; that difference is reported as vifp_vs_piq_float32). Rounds alternate reference/ours; the median round time is used. Values are checked to
agree (max relative difference, target 1e-4).

    python benchmarks/bench_metrics.py [--pairs 8] [--rounds 5] [--threads 2]
writes results/bench/metrics.json; speed is reported as ratio = t_reference / t_ours
(> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time

import numpy as np
import torch


def _pairs(n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    from PIL import Image

    from rsicbench.imageio import read_rgb
    from rsicbench.paths import shared_path

    root = shared_path("datasets", "ucmerced")
    refs: list[np.ndarray] = []
    if root is not None:
        files = [f for f in sorted(root.glob("*/*.webp"))]
        rng = np.random.default_rng(seed)
        for f in rng.permutation(len(files)):
            img = read_rgb(files[int(f)])
            if img.shape[:2] == (256, 256):
                refs.append(img)
            if len(refs) == n:
                break
        source = f"UC Merced ({root})"
    else:
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:256, 0:256]
        for _ in range(n):
            base = np.stack([x, y, (x + y) / 2], axis=2) + rng.normal(0, 20, (256, 256, 3))
            refs.append(np.clip(base, 0, 255).astype(np.uint8))
        source = "generated"
    recs = []
    for i, r in enumerate(refs):
        buf = io.BytesIO()
        Image.fromarray(r).save(buf, "JPEG", quality=(10, 30, 60, 90)[i % 4])
        buf.seek(0)
        recs.append(np.array(Image.open(buf).convert("RGB")))
    return refs, recs, source


def _reference_model():
    import warnings

    import lpips

    from rsicbench.metrics import lpips_alex

    state, _ = lpips_alex.load_features_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    for idx, sl in lpips_alex._SLICE_OF.items():
        conv = getattr(getattr(model.net, f"slice{sl}"), str(idx))
        conv.weight.data.copy_(state[f"features.{idx}.weight"])
        conv.bias.data.copy_(state[f"features.{idx}.bias"])
    return model


def reference_values(refs, recs, model) -> list[dict[str, float]]:
    import piq
    from pytorch_msssim import ms_ssim

    out = []
    with torch.no_grad():
        for a, b in zip(refs, recs):
            mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
            ta = torch.from_numpy(a).permute(2, 0, 1)[None].float()
            tb = torch.from_numpy(b).permute(2, 0, 1)[None].float()
            out.append({
                "psnr": float(10 * np.log10(255.0**2 / mse)),
                "msssim": ms_ssim(ta, tb, data_range=255).item(),
                "lpips": model(ta / 127.5 - 1, tb / 127.5 - 1).item(),
                "vifp": piq.vif_p(tb, ta, data_range=255.0).item(),
            })
    return out


def main(argv: list[str] | None = None) -> int:
    from rsicbench.fsutil import write_json
    from rsicbench.metrics import MetricSuite
    from rsicbench.paths import project_root

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    refs, recs, source = _pairs(args.pairs, args.seed)
    model = _reference_model()
    suite = MetricSuite(device="cpu", batch_size=args.pairs)

    def run_ref():
        return reference_values(refs, recs, model)

    def run_batch():
        return suite.compute_batch(refs, recs)

    def run_single():
        return [suite(a, b) for a, b in zip(refs, recs)]

    runs = {"reference": run_ref, "batched": run_batch, "single": run_single}
    results = {k: f() for k, f in runs.items()}  # warm-up, and the values we compare
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}

    # VIFp: piq in float32 is itself up to ~1e-4 off (variance cancellation); the
    # agreement check uses piq in float64 (same algorithm), computed outside the timing.
    import piq

    vif64 = [piq.vif_p(torch.from_numpy(b).permute(2, 0, 1)[None].double(),
                       torch.from_numpy(a).permute(2, 0, 1)[None].double(), data_range=255.0).item()
             for a, b in zip(refs, recs)]
    max_rel = {"vifp_vs_piq_float32": max(abs(o["vifp"] - r["vifp"]) / r["vifp"]
                                          for o, r in zip(results["batched"], results["reference"]))}
    for r, v in zip(results["reference"], vif64):
        r["vifp"] = v
    for key in ("psnr", "msssim", "lpips", "vifp"):
        diffs = [abs(o[key] - r[key]) / abs(r[key]) for o, r in zip(results["batched"], results["reference"])]
        diffs += [abs(o[key] - r[key]) / abs(r[key]) for o, r in zip(results["single"], results["reference"])]
        max_rel[key] = max(diffs)
    agree = all(v <= 1e-4 for k, v in max_rel.items() if k != "vifp_vs_piq_float32")
    report = {
        "area": "metrics",
        "what": "full metric set per 256x256 pair vs reference packages one by one",
        "pairs": len(refs),
        "source": source,
        "threads": args.threads,
        "rounds": args.rounds,
        "ms_per_pair": {k: 1000 * v / len(refs) for k, v in med.items()},
        "ratio_batched": med["reference"] / med["batched"],
        "ratio_single": med["reference"] / med["single"],
        "max_rel_diff": max_rel,
        "values_agree_1e-4": agree,
        "command": "python benchmarks/bench_metrics.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = args.out or str(project_root() / "results" / "bench" / "metrics.json")
    write_json(out, report)
    print(f"reference {report['ms_per_pair']['reference']:.1f} ms/pair, batched {report['ms_per_pair']['batched']:.1f}, "
          f"single {report['ms_per_pair']['single']:.1f}; ratio batched {report['ratio_batched']:.2f}, "
          f"single {report['ratio_single']:.2f}; max rel diff {max_rel}; -> {out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
