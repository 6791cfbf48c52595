"""Training parity: our trainer vs a loop built only from CompressAI's parts, step by step.

Both sides start from the same weights (our registry builds the model under the seed, the
reference is `compressai.models.<Class>(N, M)` with that state dict loaded) and get the
SAME batch tensor at every step: each batch is drawn once (our `batch_at`: random crops
and flips of the UC Merced train split) and fed to both loops in turn. The quantization
noise is part of the input too: both seed torch with `train.step_seed(seed, step)` right
before the forward pass (our train_step does; the reference does it explicitly).

(a) ours: `reproduce.training.train.make_optimizers` + `train_step`, the functions train() runs.
(b) reference, CompressAI only (the loop body of its examples/train.py):
    `compressai.optimizers.net_aux_optimizer` (Adam, net lr / aux lr),
    `compressai.losses.RateDistortionLoss(lmbda)`, backward,
    `clip_grad_norm_(net.parameters(), 1.0)`, step, `net.aux_loss()` backward, aux step,
    and torch's MultiStepLR at the same milestone as ours (CompressAI's example uses
    ReduceLROnPlateau on a test loss; a fixed milestone keeps both schedules identical).
Per step the losses (and bpp, MSE, aux) of both sides are recorded; they must agree to
`--rtol` at every step. Afterwards both final models code the evaluation images with real
bitstreams (`LearnedCodec`, entropy tables from `update(force=True)`) and their mean bpp
and PSNR are compared (targets: bpp within 2 %, PSNR within 0.1 dB).

    python benchmarks/bench_train_parity.py                 # 2,000 steps, both models
    python benchmarks/bench_train_parity.py --steps 50      # short run
writes results/bench/train_parity.json (and the two final state dicts per model next to it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

# models in both worlds: our registry name -> compressai.models class name
REFERENCE_CLASSES = {"bmshj2018-hyperprior": "ScaleHyperprior", "mbt2018-mean": "MeanScaleHyperprior"}


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class OurLoop:
    """Our trainer's step code, driven with given batches."""

    def __init__(self, model: torch.nn.Module, cfg) -> None:
        from rsicbench.reproduce.training.train import make_optimizers

        self.model, self.cfg = model, cfg
        self.opts = make_optimizers(model, cfg)
        model.train()

    def step(self, x: torch.Tensor, step: int) -> dict[str, float]:
        from rsicbench.reproduce.training.train import train_step

        r, aux = train_step(self.model, x, None, self.opts, self.cfg, step)
        return {"loss": r["loss"].item(), "bpp": r["bpp"].item(), "mse": r["mse"].item(), "aux": aux.item(),
                "lr": self.opts.opt.param_groups[0]["lr"]}


class ReferenceLoop:
    """CompressAI examples/train.py's step, built only from CompressAI's parts (+ torch)."""

    def __init__(self, name: str, state: dict, cfg) -> None:
        import compressai.models as cm
        from compressai.losses import RateDistortionLoss
        from compressai.optimizers import net_aux_optimizer

        self.cfg = cfg
        self.net = getattr(cm, REFERENCE_CLASSES[name])(N=int(cfg.arch["N"]), M=int(cfg.arch["M"]))
        self.net.load_state_dict(state)
        self.net.train()
        conf = {"net": {"type": "Adam", "lr": cfg.lr}, "aux": {"type": "Adam", "lr": cfg.aux_lr}}
        opts = net_aux_optimizer(self.net, conf)
        self.opt, self.aux_opt = opts["net"], opts["aux"]
        self.criterion = RateDistortionLoss(lmbda=cfg.lam)
        milestones = sorted(max(1, int(f * cfg.steps)) for f in cfg.lr_milestones)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones, gamma=cfg.lr_gamma)

    def step(self, x: torch.Tensor, step: int) -> dict[str, float]:
        from rsicbench.reproduce.training.train import step_seed

        torch.manual_seed(step_seed(self.cfg.seed, step))  # the same quantization noise as ours
        self.opt.zero_grad()
        self.aux_opt.zero_grad()
        out = self.net(x)
        crit = self.criterion(out, x)
        crit["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip)
        self.opt.step()
        aux = self.net.aux_loss()
        aux.backward()
        self.aux_opt.step()
        self.sched.step()
        return {"loss": crit["loss"].item(), "bpp": crit["bpp_loss"].item(), "mse": crit["mse_loss"].item(),
                "aux": aux.item(), "lr": self.opt.param_groups[0]["lr"]}


def build_pair(name: str, cfg, ours_cfg=None) -> tuple[OurLoop, ReferenceLoop]:
    """Both loops from the same weights; `ours_cfg` (default `cfg`) lets a test change our side only."""
    from rsicbench.config import seed_everything
    from rsicbench.reproduce.models.registry import create_model

    seed_everything(cfg.seed, cfg.threads)  # as train() does before building the model
    ours = create_model(name, **cfg.arch)
    ref = ReferenceLoop(name, {k: v.clone() for k, v in ours.state_dict().items()}, cfg)
    return OurLoop(ours, ours_cfg or cfg), ref


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def run_pair(name: str, cfg, batches, rtol: float, log=None, log_every: int = 100, ours_cfg=None) -> dict[str, Any]:
    """Train both loops on `batches` (an iterable of (step, tensor)); per-step records."""
    ours, ref = build_pair(name, cfg, ours_cfg)
    rows: list[dict[str, Any]] = []
    t_ours = [0.0, 0.0]
    t_ref = [0.0, 0.0]
    first_bad = None
    for step, x in batches:
        a = _now()
        o = ours.step(x, step)
        b = _now()
        r = ref.step(x, step)
        c = _now()
        t_ours[0] += b[0] - a[0]
        t_ours[1] += b[1] - a[1]
        t_ref[0] += c[0] - b[0]
        t_ref[1] += c[1] - b[1]
        row = {"step": step, "ours": o, "ref": r, "rel": {k: rel_diff(o[k], r[k]) for k in ("loss", "bpp", "mse", "aux")}}
        rows.append(row)
        if first_bad is None and max(row["rel"].values()) > rtol:
            first_bad = step
        if log and (step + 1) % log_every == 0:
            log(f"{name} step {step + 1}: loss ours {o['loss']:.6f} ref {r['loss']:.6f} "
                f"(max rel diff so far {max(x['rel']['loss'] for x in rows):.2e}); "
                f"wall {t_ours[0]:.0f}/{t_ref[0]:.0f} s, CPU {t_ours[1]:.0f}/{t_ref[1]:.0f} s")
    return {"rows": rows, "first_step_over_rtol": first_bad, "ours_model": ours.model, "ref_model": ref.net,
            "ours_wall_s": t_ours[0], "ours_cpu_s": t_ours[1], "ref_wall_s": t_ref[0], "ref_cpu_s": t_ref[1]}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"steps_run": len(rows)}
    for k in ("loss", "bpp", "mse", "aux"):
        out[f"max_rel_diff_{k}"] = max((r["rel"][k] for r in rows), default=None)
        out[f"max_abs_diff_{k}"] = max((abs(r["ours"][k] - r["ref"][k]) for r in rows), default=None)
    out["bit_identical_loss_steps"] = sum(r["ours"]["loss"] == r["ref"]["loss"] for r in rows)
    return out


# ---------------------------------------------------------------------------- data
def batch_stream(images: list[np.ndarray], cfg, steps: int):
    """(step, batch) for steps 0..steps-1: our trainer's crops, drawn once and shared by both loops."""
    from rsicbench.reproduce.training.train import batch_at

    for step in range(steps):
        yield step, batch_at(images, step, cfg)


def ucmerced_split(split: str):
    """UC Merced `split` items (data/ucmerced, else the ../shared mirror with the same split rule)."""
    from rsicbench.downstream.data import load_items

    items, source = load_items("ucmerced", split)
    return items, source


def eval_samples(per_class: int):
    from rsicbench.reproduce.evaluation.engine import subset
    from rsicbench.results import Sample

    items, source = ucmerced_split("test")
    return subset([Sample(i.path, i.relpath, i.label) for i in items], per_class=per_class), source


# ---------------------------------------------------------------------------- evaluation
def evaluate(model: torch.nn.Module, name: str, ckpt: Path, samples, threads: int) -> dict[str, Any]:
    """Mean real-bitstream bpp and PSNR of `model` (saved to `ckpt`, coded by LearnedCodec)."""
    from rsicbench.fsutil import atomic_path
    from rsicbench.imageio import read_rgb
    from rsicbench.metrics.psnr import psnr
    with atomic_path(ckpt) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    from rsicbench.reproduce.codecs.base import create_codec

    codec = create_codec(name, quality=0, source="checkpoint", checkpoint=str(ckpt), threads=threads)
    bpps, psnrs = [], []
    for s in samples:
        img = read_rgb(s.path)
        data = codec.encode(img)
        rec = codec.decode(data)
        bpps.append(8.0 * len(data) / (img.shape[0] * img.shape[1]))
        psnrs.append(psnr(img, rec))
    return {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs)), "images": len(samples),
            "weights": codec.fingerprint}


# ---------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(REFERENCE_CLASSES), choices=list(REFERENCE_CLASSES))
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--N", type=int, default=32)
    ap.add_argument("--M", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lam", type=float, default=0.013, help="CompressAI λ (R + λ·255²·MSE)")
    ap.add_argument("--lr", type=float, default=1e-4, help="network lr, both sides (CompressAI's example default)")
    ap.add_argument("--aux-lr", type=float, default=1e-3, help="aux (quantiles) lr, both sides")
    ap.add_argument("--milestone", type=float, default=0.9, help="lr x0.1 at this fraction of the steps, both sides")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=0, help="train images the crops come from (0: the whole split)")
    ap.add_argument("--per-class", type=int, default=None,
                    help="evaluation images per class of the test split (default: the default profile's)")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--out", default="results/bench/train_parity.json")
    a = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    import compressai

    from rsicbench.config import settings
    from rsicbench.fsutil import write_json
    from rsicbench.reproduce.training.train import TrainConfig, load_images

    def log(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)

    per_class = a.per_class if a.per_class is not None else settings("eval", profile="default").get("per_class")
    out = Path(a.out)
    items, train_source = ucmerced_split("train")
    cfg = TrainConfig(model="", lam=a.lam, arch={"N": a.N, "M": a.M}, steps=a.steps, batch=a.batch, patch=a.patch,
                      lr=a.lr, aux_lr=a.aux_lr, lr_milestones=(a.milestone,), lr_gamma=0.1, clip=1.0,
                      seed=a.seed, device="cpu", threads=a.threads, max_train_images=a.images)
    t0 = time.perf_counter()
    images = load_images([i.path for i in items], a.patch, a.images)
    log(f"{len(images)} train images from {train_source} in {time.perf_counter() - t0:.0f} s")
    samples, test_source = eval_samples(per_class) if not a.no_eval else ([], None)
    result: dict[str, Any] = {
        "benchmark": "training parity: reproduce.training.train (make_optimizers + train_step) vs CompressAI parts",
        "command": "python benchmarks/bench_train_parity.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {"N": a.N, "M": a.M, "batch": a.batch, "patch": a.patch, "lambda_compressai": a.lam,
                     "lr": a.lr, "aux_lr": a.aux_lr, "lr_milestone": a.milestone, "lr_gamma": 0.1, "clip": 1.0,
                     "threads": a.threads, "seed": a.seed, "deterministic": True, "rtol": a.rtol,
                     "train_images": f"{len(images)} of the UC Merced train split ({train_source})",
                     "eval_images": (f"{len(samples)}: {per_class} per class of the UC Merced test split "
                                     f"({test_source})") if samples else None},
        "reference": ("compressai.models.<Class> + compressai.optimizers.net_aux_optimizer (Adam) + "
                      "compressai.losses.RateDistortionLoss + clip_grad_norm_(net.parameters(), 1.0) + "
                      "net.aux_loss() + torch MultiStepLR"),
        "torch": torch.__version__, "compressai": compressai.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "models": {},
    }
    all_ok = True
    for name in a.models:
        cfg.model = name
        log(f"{name}: {a.steps} steps, N={a.N} M={a.M}, batch {a.batch}, {a.patch}px crops, λ {a.lam}")
        load0 = os.getloadavg()[0]
        res = run_pair(name, cfg, batch_stream(images, cfg, a.steps), a.rtol, log)
        s = summary(res["rows"])
        entry: dict[str, Any] = {
            **s, "steps": a.steps, "first_step_over_rtol": res["first_step_over_rtol"],
            "steps_identical_within_rtol": res["first_step_over_rtol"] is None,
            "ours_wall_s": res["ours_wall_s"], "ours_cpu_s": res["ours_cpu_s"],
            "reference_wall_s": res["ref_wall_s"], "reference_cpu_s": res["ref_cpu_s"],
            "load_average_start_end": [load0, os.getloadavg()[0]],
            "final_train_loss": {"ours": res["rows"][-1]["ours"]["loss"], "reference": res["rows"][-1]["ref"]["loss"]},
            "per_step": {side: {k: [r[key][k] for r in res["rows"]] for k in ("loss", "bpp", "mse", "aux")}
                         for side, key in (("ours", "ours"), ("reference", "ref"))},
        }
        ok = entry["steps_identical_within_rtol"]
        if samples:
            ev = {side: evaluate(m, name, out.parent / "train_parity" / f"{name}-{side}.pt", samples, a.threads)
                  for side, m in (("ours", res["ours_model"]), ("reference", res["ref_model"]))}
            o, r = ev["ours"], ev["reference"]
            entry["eval"] = ev
            entry["eval_bpp_rel_diff"] = abs(o["bpp"] - r["bpp"]) / r["bpp"]
            entry["eval_psnr_diff_db"] = abs(o["psnr"] - r["psnr"])
            entry["eval_targets_met"] = entry["eval_bpp_rel_diff"] <= 0.02 and entry["eval_psnr_diff_db"] <= 0.1
            ok = ok and entry["eval_targets_met"]
            log(f"{name}: eval ours {o['bpp']:.4f} bpp {o['psnr']:.3f} dB, reference {r['bpp']:.4f} bpp "
                f"{r['psnr']:.3f} dB")
        entry["parity"] = ok
        all_ok = all_ok and ok
        log(f"{name}: max rel loss diff {s['max_rel_diff_loss']:.3e}, bit-identical losses "
            f"{s['bit_identical_loss_steps']}/{s['steps_run']}, parity {'OK' if ok else 'FAILED'}")
        result["models"][name] = entry
        result["parity"] = all_ok
        write_json(out, result)  # after every model: a late kill keeps what finished
    log(f"-> {out}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
