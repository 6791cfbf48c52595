"""What the paper profile costs on this device, measured (`rsicbench doctor`).

For each paper family's full model and baseline (and the CompressAI models the papers compare
with), at the settings `rsicbench train` would use under a profile (training.run_config.run_config on
configs/train.yaml, or configs/roi.yaml `mroi` for MROI-CFHPM):
  * build the model and run optimisation steps (train.make_optimizers/train_step) on real
    crops of the train split (seeded random crops only when the split is not fetched; recorded):
    step 0 pays one-time kernel and allocator set-up (recorded as `first_step_wall_s`), then
    `repeat` timed steps on the same batch, the fastest reported (on a shared machine the others
    are slowed by other processes; all are recorded, with the load average);
  * code one 256x256 image through the real codec path (LearnedCodec encode/decode from a
    checkpoint of those weights, CDF tables updated), timed the same way;
  * record wall and CPU seconds, peak memory (RSS high-water mark; CUDA max allocated on a GPU),
    parameter count, and project the profile's time: Σ over rate points of steps x step time,
    plus rate points x evaluation images x (encode + decode).
A step measured at a smaller batch or crop than the profile's is scaled linearly in pixels
(batch x crop²) and the record says so (`scale`): measured, never guessed. Each distinct
(model, arch) is measured in a fresh process so the RSS peak is its own.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# family -> [(model, role)]; the CompressAI rows are the models the papers' claims compare with
# (claims/*.yaml subjects via configs/report.yaml subject_aliases).
FAMILIES: dict[str, list[tuple[str, str]]] = {
    "LTCHM": [("ltchm-full", "full"), ("ltchm-baseline", "baseline")],
    "MGSS-Net": [("mgss-full", "full"), ("mgss-baseline", "baseline")],
    "DMENet": [("dmenet-full", "full"), ("dmenet-baseline", "baseline")],
    "MROI-CFHPM": [("mroi-cfhpm", "full"), ("cfhpm", "baseline")],
    "CompressAI": [("bmshj2018-factorized-relu", "compared"), ("bmshj2018-hyperprior", "compared"),
                   ("mbt2018-mean", "compared"), ("mbt2018", "compared"), ("cheng2020-attn", "compared")],
}
ROI_MODELS = ("mroi-cfhpm", "cfhpm")  # trained under configs/roi.yaml `mroi` (Landsat-8)
CODEC_SIDE = 256
N_CROP_IMAGES = 8  # train images the measured batch is cropped from


def default_models() -> list[str]:
    return [m for rows in FAMILIES.values() for m, _ in rows]


def family_of(model: str) -> tuple[str, str]:
    for fam, rows in FAMILIES.items():
        for m, role in rows:
            if m == model:
                return fam, role
    return "other", "other"


@dataclasses.dataclass
class Plan:
    """One model under a profile: its TrainConfig per rate tag, dataset and evaluation split."""
    model: str
    family: str
    role: str
    source: str  # the config the settings came from
    dataset: str
    eval_split: str
    configs: list  # TrainConfig per rate tag r0, r1, ...


def _area(model: str, profile: str | None) -> tuple[dict, str, str, str]:
    """(train settings in run_config's shape, dataset, eval split, source name) of `model`."""
    from rsicbench.config import settings

    if model in ROI_MODELS:
        s = settings("roi", profile)
        m = s["mroi"]
        cfg = {"models": m["models"], "train": m["train"], "arch": m["arch"], "seed": s["seed"],
               "threads": s["threads"]}
        return cfg, m["dataset"], m.get("eval", {}).get("split", "test"), "configs/roi.yaml mroi"
    s = settings("train", profile)
    return s, s.get("dataset", "ucmerced"), s.get("eval", {}).get("split", "test"), "configs/train.yaml"


def plan(model: str, profile: str | None) -> Plan:
    from rsicbench.reproduce.training.run_config import check_config, run_config

    cfg, dataset, split, source = _area(model, profile)
    if model not in cfg.get("models", {}):
        raise ValueError(f"{source}: no entry for model {model!r}")
    entry = cfg["models"][model]
    # the rates the profile trains (configs/train.yaml `rates`; the ROI sections: every λ)
    rates = entry.get("rates", range(len(entry.get("lambdas", []))))
    configs = [run_config(model, f"r{i}", cfg) for i in rates]
    for tc in configs:
        check_config(tc)
    fam, role = family_of(model)
    return Plan(model, fam, role, source, dataset, split, configs)


# ---------------------------------------------------------------------------- measurement
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _crops(tc, dataset: str, data_root: str | None, seed: int):
    """(batch of crops, one 256x256 image, data note): real train-split crops when the split
    is fetched, else seeded uniform noise (the note says which and why)."""
    import torch

    from rsicbench.reproduce.training.train import batch_at, centre_crops, load_images

    try:
        from rsicbench.datasets import load_split

        paths = [str(s.path) for s in load_split(dataset, "train", data_root)]
        images = load_images(paths, max(tc.patch, CODEC_SIDE), N_CROP_IMAGES)
        x = batch_at(images, 0, tc)
        img = (centre_crops(images[:1], CODEC_SIDE)[0].permute(1, 2, 0).mul(255).round()
               .to(torch.uint8).numpy())
        return x, img, f"{dataset} train split ({len(images)} images)"
    except (OSError, ValueError, RuntimeError) as e:  # split not fetched (DatasetError: RuntimeError)
        why = " ".join(str(e).split())[:160]
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(tc.batch, 3, tc.patch, tc.patch, generator=g)
        img = np.random.default_rng(seed).integers(0, 256, (CODEC_SIDE, CODEC_SIDE, 3), dtype=np.uint8)
        return x, img, f"seeded random crops ({why})"


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_steps(net, x, roi, opts, tc, device: str, repeat: int) -> tuple[list[tuple[float, float]], dict]:
    """(wall, cpu) seconds of 1 + `repeat` optimisation steps on batch `x`, and the last step's losses."""
    from rsicbench.reproduce.training.train import train_step

    times = []  # (wall, cpu): step 0 pays one-time kernel/allocator set-up; steps 1..repeat are timed
    for step in range(1 + repeat):
        _sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        r, _ = train_step(net, x, roi, opts, tc, step)
        _sync(device)
        times.append((time.perf_counter() - w0, time.process_time() - c0))
    return times, r


def _time_codes(codec, img: np.ndarray, mask: np.ndarray | None, device: str, repeat: int):
    """(encode, decode) seconds of 1 + `repeat` codes of `img`, the last stream and its decoded image."""
    codes = []  # pass 0 pays lazy set-up (recorded as first_code_s); passes 1..repeat are timed
    for _ in range(1 + repeat):
        _sync(device)
        t0 = time.perf_counter()
        data = codec.encode(img) if mask is None else codec.encode(img, roi=mask)
        _sync(device)
        t1 = time.perf_counter()
        rec = codec.decode(data)
        _sync(device)
        codes.append((t1 - t0, time.perf_counter() - t1))
    return codes, data, rec


def measure(model: str, tc, dataset: str, data_root: str | None = None, repeat: int = 2) -> dict[str, Any]:
    """Optimisation steps of `tc` (its batch and patch) and 256x256 encode/decodes: one untimed
    set-up pass, then `repeat` timed ones, the fastest reported (all are recorded)."""
    import torch

    from rsicbench.config import pick_device, seed_everything
    from rsicbench.reproduce.codecs.learned import LearnedCodec  # importing it registers the codecs
    from rsicbench.reproduce.codecs.base import create_codec
    from rsicbench.reproduce.models.registry import create_model
    from rsicbench.reproduce.training.train import _apply_stage, make_optimizers, save_checkpoint

    device = pick_device(tc.device)
    seed_everything(tc.seed, tc.threads)
    x, img, data_note = _crops(tc, dataset, data_root, tc.seed)
    net = create_model(model, **tc.arch).to(device)
    net.train()
    stage = _apply_stage(net, max(tc.steps - 1, 0), tc.steps)  # the final (fullest) stage
    opts = make_optimizers(net, tc)
    params = sum(p.numel() for p in net.parameters())
    x = x.to(device)
    roi = torch.ones_like(x[:, :1]) if getattr(net, "needs_roi", False) else None
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss0, load = _rss_mb(), os.getloadavg()[0]
    times, r = _time_steps(net, x, roi, opts, tc, device, repeat)
    first_wall = times[0][0]
    step_wall, step_cpu = min(times[1:])  # the least disturbed by other processes (timeit's rule)
    rss1 = _rss_mb()
    out = {"device": device, "torch_threads": torch.get_num_threads(), "params": int(params),
           "batch": tc.batch, "patch": tc.patch, "arch": dict(tc.arch), "data": data_note,
           "loss": r["loss"].item(), "step_wall_s": step_wall, "step_cpu_s": step_cpu,
           "first_step_wall_s": first_wall, "timed_steps_wall_s": [t[0] for t in times[1:]],
           "loadavg_1min": load,
           "rss_before_step_mb": rss0, "rss_peak_mb": rss1, "rss_step_delta_mb": rss1 - rss0}
    if stage is not None:
        out["stage"] = stage
    if roi is not None:
        out["roi"] = "all-ones"
    if device.startswith("cuda"):
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    with tempfile.TemporaryDirectory(prefix="rsicbench-doctor-") as tmp:
        ck = Path(tmp) / "weights.pt"
        save_checkpoint(ck, {"model": net.state_dict(), "model_name": model, "arch": dict(tc.arch),
                             "lambda": tc.lam, "step": 1})
        del net, opts
        codec = create_codec(model, 0, checkpoint=str(ck), threads=tc.threads, device=device)
        assert isinstance(codec, LearnedCodec)  # every model name is registered as one
        mask = np.ones(img.shape[:2], bool) if roi is not None else None
        codes, data, rec = _time_codes(codec, img, mask, device, repeat)
    if rec.shape != img.shape:
        raise RuntimeError(f"{model}: decoded {rec.shape}, encoded {img.shape}")
    enc, dec = min(codes[1:], key=sum)
    out.update(encode_s=enc, decode_s=dec, first_code_s=sum(codes[0]), timed_codes_s=codes[1:],
               codec_side=CODEC_SIDE, codec_bytes=len(data),
               rss_peak_after_codec_mb=_rss_mb())
    return out


def _measure_isolated(args: tuple) -> dict[str, Any]:
    return measure(*args)


# ---------------------------------------------------------------------------- projection
def eval_images(dataset: str, split: str, data_root: str | None) -> tuple[int | None, str]:
    try:
        from rsicbench.datasets import load_split

        return len(load_split(dataset, split, data_root)), f"{dataset} {split} split"
    except (OSError, ValueError, RuntimeError) as e:  # DatasetError is a RuntimeError
        return None, f"{dataset} {split} split not available ({' '.join(str(e).split())[:120]})"


def project(p: Plan, by_arch: dict[str, dict], n_eval: int | None) -> dict[str, Any]:
    """Profile time: Σ_r steps_r x step_time(arch_r) x scale + rates x eval images x codec time."""
    train_s = eval_s = 0.0
    for tc in p.configs:
        m = by_arch[_arch_key(tc.arch)]
        scale = (tc.batch * tc.patch**2) / (m["batch"] * m["patch"] ** 2)
        train_s += tc.steps * m["step_wall_s"] * scale
        if n_eval is not None:
            eval_s += n_eval * (m["encode_s"] + m["decode_s"])
    out = {"rates": len(p.configs), "steps_per_rate": [tc.steps for tc in p.configs],
           "projected_train_s": train_s, "projected_eval_s": eval_s if n_eval is not None else None}
    out["projected_total_s"] = train_s + (eval_s if n_eval is not None else 0.0)
    out["projected_total_h"] = out["projected_total_s"] / 3600.0
    return out


def _arch_key(arch: dict) -> str:
    return ",".join(f"{k}={arch[k]}" for k in sorted(arch))


def run(models: list[str], profile: str | None, batch: int | None = None, patch: int | None = None,
        data_root: str | None = None, isolate: bool = True, log=None, repeat: int = 2) -> dict[str, Any]:
    """Measure every model (one process per distinct arch) and project the profile's time."""
    from rsicbench.config import active_profile, pick_device

    rows, t_start, load_start = [], time.perf_counter(), os.getloadavg()
    if batch is None and pick_device("auto") == "cpu":
        batch = 1  # a paper-batch step of the widest models takes minutes on CPU: measure 1, scale
    for name in models:
        p = plan(name, profile)
        by_arch: dict[str, dict] = {}
        for tc in p.configs:
            key = _arch_key(tc.arch)
            if key in by_arch:
                continue
            want = dataclasses.replace(tc, batch=batch or tc.batch, patch=patch or tc.patch)
            if log:
                log(f"doctor: {name} {key} batch {want.batch} crop {want.patch} ...")
            args = (name, want, p.dataset, data_root, repeat)
            if isolate:
                import concurrent.futures as cf
                import multiprocessing as mp

                with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
                    m = ex.submit(_measure_isolated, args).result()
            else:
                m = measure(*args)
            m["scale"] = (tc.batch * tc.patch**2) / (want.batch * want.patch**2)
            m["paper_batch"], m["paper_patch"] = tc.batch, tc.patch
            m["step_wall_s_at_profile"] = m["step_wall_s"] * m["scale"]
            m["step_cpu_s_at_profile"] = m["step_cpu_s"] * m["scale"]
            by_arch[key] = m
            if log:
                log(f"doctor: {name} {key}: step {m['step_wall_s']:.2f} s wall x{m['scale']:g}, "
                    f"encode {m['encode_s']:.2f} s, decode {m['decode_s']:.2f} s, peak RSS {m['rss_peak_mb']:.0f} MB")
        n_eval, eval_note = eval_images(p.dataset, p.eval_split, data_root)
        rows.append({"model": name, "family": p.family, "role": p.role, "source": p.source,
                     "dataset": p.dataset, "eval_images": n_eval, "eval_note": eval_note,
                     "lambdas_compressai": [tc.lam for tc in p.configs],
                     "measurements": list(by_arch.values()), **project(p, by_arch, n_eval)})
    import platform

    import torch

    return {"profile": active_profile(profile), "device": pick_device("auto"),
            "cuda_available": bool(torch.cuda.is_available()),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": str(torch.__version__), "cpu_count": os.cpu_count(),
            "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg()),
            "machine": platform.machine(), "isolated_processes": isolate,
            "batch_override": batch, "patch_override": patch, "timed_repeats": repeat,
            "formula": "projected_total_s = sum_r(steps_r * step_wall_s * scale) + rates * eval_images * "
                       "(encode_s + decode_s); scale = (profile batch * crop^2) / (measured batch * crop^2)",
            "wall_s": time.perf_counter() - t_start, "models": rows}
