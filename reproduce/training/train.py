"""Training loop shared by every learned model: L = R + λ·D, checkpoints, resume, DDP.

Loss (CompressAI's examples/train.py convention, see lambdas.py):
    R = Σ −log2 p(ŷ), p(ẑ) / #pixels                  (bits per pixel, from likelihoods)
    D = 255²·MSE(x, x̂) (+ model.extra_loss(x, out))   or  1 − MS-SSIM(x, x̂)  (`distortion`)
    L = R + λ·D
`model.extra_loss(x, out)` (hook, e.g. DMENet's MDEI term) is added INSIDE the λ-weighted
distortion.

ROI models (`model.needs_roi`, e.g. MROI-CFHPM): `train(..., roi_for=f)` with
f(path, image) -> HxW bool mask (an ROI provider, or a precomputed mask read by path). The
mask of each training image is computed ONCE at load time and cropped/flipped with exactly
the same window as the image, so the model receives the provider's mask for each crop.
Without `roi_for` such a model gets an all-ones mask (a warning says so; the result dict
records `roi: "all-ones"`).
Staged models (`set_stage` + `stage_for_step`, e.g. CFHPM's 3-stage schedule, Sec. 4.3):
the stage is set before every step from (step, steps). best.pt is only written in the
final stage, because a checkpoint from an earlier stage has a different decoder path and
the val losses of different stages are not comparable.

Two optimizers as CompressAI: Adam on the network, Adam on the entropy-bottleneck quantiles
(the `.quantiles` parameters) driven by `model.aux_loss()`. MultiStepLR at fractions of the
run (`lr_milestones`), gradient-norm clipping (`clip`).

Data: random `patch`x`patch` crops of train images (held in memory as uint8), horizontal
flips; the batch of step s comes from numpy's generator seeded by (seed, s) and the
quantization noise from torch seeded by (seed, s), so a resumed run draws exactly the
batches it would have drawn. Validation: eval-mode forward on centre crops of the val
split (`val_patch`), every `val_every` steps and at the end.

Checkpoints (atomic, torch.save; read back with weights_only=True):
    <out>/latest.pt  every `ckpt_every` steps and at the end (full state: resume)
    <out>/best.pt    whenever the val loss improves (CDF tables updated: ready to code)
    <out>/log.csv    step, train loss/bpp/mse, val loss/bpp/psnr, lr, seconds
A rerun with the same output folder resumes from latest.pt (kill -9 safe: files are
replaced only when complete).

DDP: launch with `torchrun --nproc_per_node=<gpus> -m rsicbench.cli train ...` (add
`--nnodes/--node_rank/--master_addr` for several nodes). Each rank draws different crops
(seed + rank); rank 0 validates and writes checkpoints. Only the single-process path is
tested here.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rsicbench.errors import UserError
from rsicbench.fsutil import atomic_path, write_text
from rsicbench.imageio import read_rgb

LOG_COLUMNS = ["step", "loss", "bpp", "mse", "aux", "val_loss", "val_bpp", "val_psnr", "lr", "seconds"]


@dataclass
class TrainConfig:
    model: str
    lam: float  # internal (CompressAI) λ
    arch: dict
    steps: int = 20
    batch: int = 4
    patch: int = 64
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_milestones: Sequence[float] = (0.9,)
    lr_gamma: float = 0.1
    clip: float = 1.0
    distortion: str = "mse"
    val_every: int = 10
    val_patch: int = 64
    val_images: int = 8
    ckpt_every: int = 10
    seed: int = 0
    device: str = "auto"
    threads: int = 2
    max_train_images: int = 0  # 0: all
    # Fine-tuning (configs/train.yaml `train.finetune`, run_config.py): the anchor rate saves its
    # weights at step `snapshot_at` (shared.pt); a rate with `init_from` starts from them instead
    # of the seed's initialisation. The command fills in init_steps (the steps behind those
    # weights: the budget) and init_digest (their fingerprint: a retrained anchor is another run).
    snapshot_at: int = 0
    init_from: str = ""
    init_steps: int = 0
    init_digest: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ---------------------------------------------------------------------------- data
def load_images(paths: Sequence[str], min_side: int, limit: int = 0, with_paths: bool = False):
    """uint8 images (sorted paths); images smaller than a crop are skipped (named in an error if all are).

    `with_paths=True` returns (images, their paths) so per-image side data (ROI masks) can follow.
    """
    paths = sorted(str(p) for p in paths)
    if limit:
        paths = paths[:limit] if len(paths) <= limit else [paths[i] for i in np.linspace(0, len(paths) - 1, limit).astype(int)]
    kept = [(p, im) for p, im in ((p, read_rgb(p)) for p in paths) if min(im.shape[:2]) >= min_side]
    if not kept:
        raise ValueError(f"no training image of at least {min_side}x{min_side} among {len(paths)} files "
                         f"(first: {paths[0] if paths else 'none'})")
    imgs = [im for _, im in kept]
    return (imgs, [p for p, _ in kept]) if with_paths else imgs


def load_masks(paths: Sequence[str], images: Sequence[np.ndarray], roi_for) -> list[np.ndarray]:
    """One HxW bool ROI per image from `roi_for(path, image)`; checked against the image size."""
    from rsicbench.reproduce.roi.providers import check_mask

    return [check_mask(roi_for(p, im), im.shape, p) for p, im in zip(paths, images)]


def batch_at(images: list[np.ndarray], step: int, cfg: TrainConfig, rank: int = 0,
             masks: list[np.ndarray] | None = None):
    """The crops of `step`; with `masks`, also Bx1xPxP ROI crops from the SAME windows/flips."""
    rng = np.random.default_rng([cfg.seed, rank, step])
    out = np.empty((cfg.batch, cfg.patch, cfg.patch, 3), np.uint8)
    rois = np.empty((cfg.batch, 1, cfg.patch, cfg.patch), np.float32)
    for b in range(cfg.batch):
        i = rng.integers(len(images))
        im = images[i]
        y = rng.integers(im.shape[0] - cfg.patch + 1)
        x = rng.integers(im.shape[1] - cfg.patch + 1)
        crop = im[y:y + cfg.patch, x:x + cfg.patch]
        flip = rng.random() < 0.5
        out[b] = crop[:, ::-1] if flip else crop
        if masks is not None:
            m = masks[i][y:y + cfg.patch, x:x + cfg.patch]
            rois[b, 0] = m[:, ::-1] if flip else m
    # contiguous NCHW: a channels-last view crashed conv backward (torch 2.14 CPU, masked conv)
    x_t = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
    return x_t if masks is None else (x_t, torch.from_numpy(rois))


def centre_crops(images: list[np.ndarray], size: int) -> torch.Tensor:
    crops = []
    for im in images:
        y, x = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        crops.append(im[y:y + size, x:x + size])
    a = np.stack(crops)
    if a.ndim == 3:  # HxW masks -> Nx1xSxS
        return torch.from_numpy(a[:, None].astype(np.float32))
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().float().div_(255.0)


# ---------------------------------------------------------------------------- loss
def rd_loss(model, x: torch.Tensor, out: dict, lam: float, distortion: str) -> dict[str, torch.Tensor]:
    n, _, h, w = x.shape
    # CompressAI's RateDistortionLoss arithmetic (ln / -ln2 per likelihood tensor), so our loss
    # equals its loss bit for bit (benchmarks/bench_train_parity.py), not just to rounding
    bpp = sum(torch.log(lk).sum() / (-math.log(2) * (n * h * w)) for lk in out["likelihoods"].values())
    x_hat = out["x_hat"]
    mse = F.mse_loss(x_hat, x)
    if distortion == "mse":
        dist = 255.0**2 * mse
    elif distortion == "ms-ssim":
        from pytorch_msssim import ms_ssim

        if min(h, w) <= 160:
            raise ValueError(f"ms-ssim distortion needs crops larger than 160 px (5 scales), got {h}x{w}")
        dist = 1.0 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
    else:
        raise ValueError(f"unknown distortion {distortion!r}; use mse or ms-ssim")
    hook = getattr(_unwrap(model), "extra_loss", None)
    if hook is not None:
        extra = hook(x, out)
        if extra is not None:
            dist = dist + extra
    return {"loss": bpp + lam * dist, "bpp": bpp, "mse": mse}


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def _forward(model, x, roi: torch.Tensor | None = None):
    if getattr(_unwrap(model), "needs_roi", False):
        return model(x, roi=torch.ones_like(x[:, :1]) if roi is None else roi)
    return model(x)


def _apply_stage(model, step: int, total: int) -> int | None:
    """Set a staged model's training stage for `step`; returns the stage (None: not staged)."""
    net = _unwrap(model)
    if not (hasattr(net, "set_stage") and hasattr(net, "stage_for_step")):
        return None
    stage = int(net.stage_for_step(step, total))
    net.set_stage(stage)
    return stage


def split_parameters(model) -> tuple[list, list]:
    main, aux = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (aux if name.endswith(".quantiles") else main).append(p)
    return main, aux


@dataclass
class Optimizers:
    main: list  # the network's parameters (clipped); `.quantiles` go to aux_opt
    opt: torch.optim.Optimizer
    aux_opt: torch.optim.Optimizer
    sched: Any


def make_optimizers(model, cfg: TrainConfig) -> Optimizers:
    main_p, aux_p = split_parameters(model)
    opt = torch.optim.Adam(main_p, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, sorted(max(1, int(f * cfg.steps)) for f in cfg.lr_milestones), gamma=cfg.lr_gamma)
    return Optimizers(main_p, opt, torch.optim.Adam(aux_p, lr=cfg.aux_lr), sched)


def step_seed(seed: int, step: int) -> int:
    """torch seed of `step`'s quantization noise (a function of the step, so a resume redraws it)."""
    return seed * 1_000_003 + step


class TrainingDiverged(UserError):
    """The RD loss became NaN or infinite: raised before the step is taken, so no weights
    written so far carry it (a NaN run otherwise trains on for hours and is evaluated)."""


def train_step(model, x: torch.Tensor, roi: torch.Tensor | None, opts: Optimizers, cfg: TrainConfig,
               step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimisation step on batch `x` (the body of train()'s loop; benchmarks/
    bench_train_parity.py drives it with a given batch sequence). Returns (rd_loss dict, aux loss).
    Raises TrainingDiverged, before any update, when the loss is not finite."""
    torch.manual_seed(step_seed(cfg.seed, step))  # quantization noise of this step: resumable
    opts.opt.zero_grad(set_to_none=True)
    opts.aux_opt.zero_grad(set_to_none=True)
    r = rd_loss(model, x, _forward(model, x, roi), cfg.lam, cfg.distortion)
    if not math.isfinite(float(r["loss"].detach())):
        parts = ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in r.items() if k != "loss" and v.numel() == 1)
        raise TrainingDiverged(f"{cfg.model} at λ {cfg.lam:g}: the loss is {float(r['loss'].detach())} at step "
                               f"{step + 1} ({parts}): training diverged; no update was made")
    r["loss"].backward()
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(opts.main, cfg.clip)
    opts.opt.step()
    aux = _unwrap(model).aux_loss()
    aux.backward()
    opts.aux_opt.step()
    opts.sched.step()
    return r, aux


# ---------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


_RESUME_KEYS = ("model", "optimizer", "aux_optimizer", "scheduler", "step", "best_val")


def _unusable(path: Path, why: str) -> UserError:
    return UserError(f"{path}: cannot resume from it: {why}; move it away to start this run over, "
                     f"or train into another --out folder")


def load_resume_state(path: Path) -> dict:
    """latest.pt for resuming, or a UserError naming the file. weights_only=True: a payload
    that is more than tensors and plain containers is refused, never run."""
    import zipfile

    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
        raise _unusable(path, "truncated or corrupt (not a complete torch checkpoint archive)")
    try:
        ck = load_checkpoint(path)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged files
        from rsicbench.reproduce.models.checkpoints import load_failure

        why = load_failure(e)
        raise _unusable(path, why) from None
    missing = [k for k in _RESUME_KEYS if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise _unusable(path, f"not a training checkpoint (missing {', '.join(missing)})")
    return ck


def _state(model, opt, aux_opt, sched, cfg, step, best, with_cdf: bool) -> dict:
    net = _unwrap(model)
    if with_cdf:
        net.update(force=True)
    return {"model": net.state_dict(), "model_name": cfg.model, "arch": dict(cfg.arch),
            "lambda": cfg.lam, "step": step, "best_val": best, "config": _plain(cfg.__dict__),
            "optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
            "scheduler": sched.state_dict(), "torch": str(torch.__version__)}


def _plain(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _read_log(path: Path, upto: int) -> list[list[str]]:
    if not path.is_file():
        return []
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))[1:]
    return [r for r in rows if r and int(r[0]) <= upto]


def _write_log(path: Path, rows: list[list[Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LOG_COLUMNS)
    w.writerows(rows)
    write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------- main loop
@torch.no_grad()
def validate(model, val: torch.Tensor, cfg: TrainConfig, device: str,
             val_roi: torch.Tensor | None = None) -> dict[str, float]:
    net = _unwrap(model)
    net.eval()
    tot = {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
    for i in range(val.size(0)):
        x = val[i:i + 1].to(device)
        roi = None if val_roi is None else val_roi[i:i + 1].to(device)
        r = rd_loss(net, x, _forward(net, x, roi), cfg.lam, cfg.distortion)
        for k in tot:
            tot[k] += float(r[k]) / val.size(0)
    net.train()
    psnr = 10 * math.log10(1.0 / max(tot["mse"], 1e-12))
    return {"val_loss": tot["loss"], "val_bpp": tot["bpp"], "val_psnr": psnr}


def _init_process(cfg: TrainConfig) -> tuple[bool, int, str]:
    """(ddp, rank, device); under torchrun, joins the process group and binds this rank's GPU."""
    from rsicbench.config import pick_device

    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device(cfg.device)
    if ddp:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
    return ddp, rank, device


_PathsImages = tuple[Sequence[str], Sequence[np.ndarray]]


def _roi_masks(model, cfg: TrainConfig, train_set: _PathsImages, val_set: _PathsImages, roi_for):
    """(train masks, val ROI crops, ROI source) of a model that needs ROI masks, from
    `roi_for` on the (paths, images) of each set; all None for other models."""
    if not getattr(model, "needs_roi", False):
        return None, None, None
    if roi_for is None:
        import warnings

        warnings.warn(f"{cfg.model} needs an ROI mask but no ROI provider was given: training with all-ones masks",
                      RuntimeWarning, stacklevel=3)
        return None, None, "all-ones"
    masks = load_masks(*train_set, roi_for)
    return masks, centre_crops(load_masks(*val_set, roi_for), cfg.val_patch), "provider"


# Settings that do not change what a run learns: a resume may differ in them.
_RUN_ONLY_KEYS = ("device", "threads", "ckpt_every")


def _as_built(model: str, arch: dict) -> dict:
    """`arch` as the model is built with it: runs recorded before registry.model_arch kept a
    profile-wide M that LTCHM/DMENet/Cheng2020 never took, and are the same runs."""
    from rsicbench.reproduce.models.registry import model_arch

    try:
        return model_arch(model, dict(arch))
    except ValueError:
        return dict(arch)  # compared as recorded; building it reports the problem


def config_changes(ck: dict, cfg: TrainConfig, ignore: Sequence[str] = ()) -> dict[str, tuple[Any, Any]]:
    """What differs between the run of checkpoint `ck` (latest.pt) and `cfg`: {key: (then, now)};
    {} = same run. A checkpoint without its config (older runs) is compared by model and arch only."""
    then = {"model": ck.get("model_name"), "arch": ck.get("arch") or {}, **(ck.get("config") or {})}
    then["arch"] = _as_built(cfg.model, then["arch"] or {})
    now = {**_plain(cfg.__dict__), "arch": _as_built(cfg.model, cfg.arch)}
    keys = [k for k in now if k not in (*_RUN_ONLY_KEYS, *ignore) and (k in then or k in ("model", "arch"))]
    return {k: (then.get(k), now[k]) for k in keys if then.get(k) != now[k]}


def set_aside(out_dir: Path) -> Path:
    """Move a superseded run out of the way (nothing computed is deleted):
    <out>/../../.superseded/<model>/<rate>-<UTC time>."""
    dest = out_dir.parent.parent / ".superseded" / out_dir.parent.name / \
        f"{out_dir.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(out_dir, dest)
    return dest


def _check_same_run(out_dir: Path, cfg: TrainConfig, on_change: str) -> tuple[str | None, dict | None]:
    """Resume only the run `cfg` describes: a changed setting (λ, lr, arch, ...) is an error
    naming it (a changed `steps` is allowed: train longer, lr milestones as the run started),
    or with on_change="restart" (the pipeline: results never depend on a run's history, so
    `steps` counts too) the old run is set aside. Returns (what was set aside, the checkpoint
    to resume from), each None when there is none; latest.pt is read once."""
    latest = out_dir / "latest.pt"
    if not latest.is_file():
        return None, None
    ck = load_resume_state(latest)
    changed = config_changes(ck, cfg, ignore=() if on_change == "restart" else ("steps",))
    if not changed:
        return None, ck
    what = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in changed.items()))
    if on_change != "restart":
        raise UserError(f"{latest}: was trained with other settings ({what}); move {out_dir} away, "
                        f"train into another --out folder, or pass --on-config-change restart")
    return f"{set_aside(out_dir)} ({what})", None


def _resume(ck: dict, latest: Path, model, opts: Optimizers) -> tuple[int, float]:
    """Load checkpoint `ck` (read from latest.pt) into the model and optimizers; returns
    (step, best val loss) to go on from."""
    try:
        model.load_state_dict(ck["model"])
        opts.opt.load_state_dict(ck["optimizer"])
        opts.aux_opt.load_state_dict(ck["aux_optimizer"])
        opts.sched.load_state_dict(ck["scheduler"])
        return int(ck["step"]), float(ck["best_val"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise _unusable(latest, f"its state does not fit this model ({type(e).__name__}: "
                                f"{' '.join(str(e).split())[:200]})") from None


def _load_init(model, state: dict, cfg: TrainConfig) -> None:
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{cfg.model}: the weights of {cfg.init_from} (init_from) do not fit this run "
                        f"({' '.join(str(e).split())[:200]}); fine-tune only between rates of the same width") from None


SHARED = "shared.pt"  # an anchor's weights at `snapshot_at`


def anchor_state(anchor_dir: Path) -> tuple[dict, int, str]:
    """(weights, steps behind them, fingerprint) to fine-tune from: the anchor's shared.pt
    (written at its `snapshot_at`), else its finished run's final weights; or a UserError
    saying what to train first."""
    from rsicbench.reproduce.models.checkpoints import state_fingerprint

    shared, latest = anchor_dir / SHARED, anchor_dir / "latest.pt"
    if shared.is_file():
        try:
            ck = load_checkpoint(shared)
            state, steps = ck["model"], int(ck["step"]) + int(ck.get("init_steps") or 0)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
            raise UserError(f"{shared}: not usable to fine-tune from ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:160]}); retrain {anchor_dir.name}") from None
        return state, steps, state_fingerprint(state)
    run = f"rsicbench train --model {anchor_dir.parent.name} --rate {anchor_dir.name}"
    if not latest.is_file():
        raise UserError(f"{latest}: missing; fine-tuning starts from that run: train it first ({run})")
    ck = load_resume_state(latest)
    conf = ck.get("config") or {}
    planned, snap = int(conf.get("steps") or 0), int(conf.get("snapshot_at") or 0)
    if snap or int(ck["step"]) < planned:
        raise UserError(f"{anchor_dir}: that run is at step {ck['step']} of {planned} and has not written "
                        f"{SHARED} (at step {snap or planned}); finish it first ({run}: it resumes)")
    return ck["model"], int(ck["step"]) + int(conf.get("init_steps") or 0), state_fingerprint(ck["model"])


@dataclass
class _Run:
    """What the step loop works with besides the step counter and the best val loss."""
    model: Any  # DDP-wrapped under torchrun
    opts: Optimizers
    cfg: TrainConfig
    out_dir: Path
    images: list
    masks: list | None
    val: torch.Tensor
    val_roi: torch.Tensor | None
    device: str
    rank: int
    final_stage: int | None
    log_rows: list
    t0: float = 0.0


def _loop(run: _Run, step: int, best: float, progress: bool) -> tuple[int, float]:
    """Steps `step`..cfg.steps; returns (steps done, best val loss)."""
    from tqdm import tqdm

    cfg = run.cfg
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", disable=not progress)
    while step < cfg.steps:
        stage = _apply_stage(run.model, step, cfg.steps)
        if run.masks is None:
            x, roi = batch_at(run.images, step, cfg, run.rank).to(run.device), None
        else:
            x, roi = (t.to(run.device) for t in batch_at(run.images, step, cfg, run.rank, run.masks))
        try:
            r, aux = train_step(run.model, x, roi, run.opts, cfg, step)
        except TrainingDiverged as e:
            kept = (f"its latest.pt (written every {cfg.ckpt_every} steps) is kept"
                    if (run.out_dir / "latest.pt").is_file() else "no checkpoint had been written yet")
            raise TrainingDiverged(f"{run.out_dir}: {e}; {kept}. A lower lr (--set lr=...) or another "
                                   f"recipe (configs/train.yaml: lr, steps, finetune.from) may train") from None
        step += 1
        bar.update(1)
        row = {"step": step, "loss": r["loss"].item(), "bpp": r["bpp"].item(), "mse": r["mse"].item(),
               "aux": aux.item(), "lr": run.opts.opt.param_groups[0]["lr"]}
        if run.rank == 0:
            best = _after_step(run, step, best, stage, row)
    bar.close()
    return step, best


def _after_step(run: _Run, step: int, best: float, stage: int | None, row: dict) -> float:
    """Rank 0 after `step`: validation (+ best.pt, final stage only) every `val_every` steps,
    log.csv + latest.pt every `ckpt_every` steps and at the end; returns the best val loss."""
    cfg, o = run.cfg, run.opts
    if step % cfg.val_every == 0 or step == cfg.steps:
        row.update(validate(run.model, run.val, cfg, run.device, run.val_roi))
        if row["val_loss"] < best and stage == run.final_stage:
            best = row["val_loss"]
            save_checkpoint(run.out_dir / "best.pt", _state(run.model, o.opt, o.aux_opt, o.sched, cfg, step, best, True))
        row["seconds"] = time.perf_counter() - run.t0
        run.log_rows.append([row.get(c, "") for c in LOG_COLUMNS])
    if step == cfg.snapshot_at:  # the weights the other rates fine-tune from
        save_checkpoint(run.out_dir / SHARED, {"model": _unwrap(run.model).state_dict(), "step": step,
                                               "init_steps": cfg.init_steps})
    if step % cfg.ckpt_every == 0 or step == cfg.steps:
        _write_log(run.out_dir / "log.csv", run.log_rows)
        save_checkpoint(run.out_dir / "latest.pt", _state(run.model, o.opt, o.aux_opt, o.sched, cfg, step, best, False))
    return best


def train(cfg: TrainConfig, train_paths: Sequence[str], val_paths: Sequence[str], out_dir: Path,
          progress: bool = True, roi_for=None, on_change: str = "error", init: dict | None = None) -> dict:
    """Train (or resume) the run `cfg` into out_dir. on_change: what to do when out_dir holds a
    run with other settings: "error" (default) or "restart" (set it aside, train from scratch).
    init: a model state_dict to start from (fine-tuning, cfg.init_from); ignored on resume."""
    from rsicbench.config import seed_everything
    from rsicbench.reproduce.models.registry import create_model

    out_dir = Path(out_dir)
    ddp, rank, device = _init_process(cfg)
    superseded, ck = _check_same_run(out_dir, cfg, on_change) if rank == 0 else (None, None)
    latest = out_dir / "latest.pt"
    if ddp:  # the other ranks resume only after rank 0 has set a superseded run aside
        import torch.distributed as dist

        dist.barrier()
        if rank != 0 and latest.is_file():
            ck = load_resume_state(latest)
    seed_everything(cfg.seed, cfg.threads)
    images, kept = load_images(train_paths, cfg.patch, cfg.max_train_images, with_paths=True)
    val_imgs, val_kept = load_images(val_paths, cfg.val_patch, cfg.val_images, with_paths=True)
    val = centre_crops(val_imgs, cfg.val_patch)

    model = create_model(cfg.model, **cfg.arch).to(device)
    masks, val_roi, roi_source = _roi_masks(model, cfg, (kept, images), (val_kept, val_imgs), roi_for)
    final_stage = _apply_stage(model, max(cfg.steps - 1, 0), cfg.steps)
    opts = make_optimizers(model, cfg)
    if ck is None and init is not None:
        _load_init(model, init, cfg)
    step, best = _resume(ck, latest, model, opts) if ck is not None else (0, math.inf)
    resumed_from = step
    run = _Run(model, opts, cfg, out_dir, images, masks, val, val_roi, device, rank, final_stage,
               _read_log(out_dir / "log.csv", step))
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        run.model = DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)
    run.model.train()
    run.t0 = time.perf_counter()
    step, best = _loop(run, step, best, progress)
    if ddp:
        import torch.distributed as dist

        dist.destroy_process_group()
    out = {"steps": step, "resumed_from": resumed_from, "best_val_loss": best,
           "seconds": time.perf_counter() - run.t0, "device": device}
    if superseded:
        out["superseded"] = superseded
    if roi_source:
        out["roi"] = roi_source
    if final_stage is not None:
        out["final_stage"] = final_stage
    return out
