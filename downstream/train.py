"""Train the EMTCAL-style classifier on ORIGINAL images; select the model on val, never test.

EMTCAL's recipe (Tang et al., TGRS 2022, official code): random flips + rotation (30 deg),
Adam, cosine learning-rate decay after a linear warm-up (paper: 100 epochs, lr 3e-5,
5 warm-up epochs, batch 32, 224 px). Profiles scale it (configs/downstream.yaml):
fewer epochs, a higher learning rate for the freshly initialised layers (`head_lr_mult`),
a smaller input, and early backbone stages frozen (`freeze`, run without gradients and with
fixed BatchNorm statistics) so `default` fits a 2-core CPU.

Outputs in `<out_dir>/<ds>/` (default results/classifier/ucmerced/):
  latest.pt        resume point (model, optimizer, epoch, best so far), written atomically
  best.pt          best-on-val weights + classes + the settings needed to rebuild the model
  log.csv          one row per epoch
  train.json       settings, data source, split sizes, best epoch, wall time
  clean_test.json  the best model on the clean (original) test split: OA, per-class, confusion
A rerun with the same settings resumes from latest.pt (at an epoch boundary: every epoch's
shuffling, augmentation and DropPath randomness is seeded by (seed, epoch), so a resumed
run equals an uninterrupted one). Different settings start over.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rsicbench import fsutil
from rsicbench.config import seed_everything
from rsicbench.downstream.data import augment, load_items, load_tensor
from rsicbench.downstream.emtcal import EMTCAL
from rsicbench.reproduce.evaluation.engine import subset
from rsicbench.downstream.scores import confusion, predict, scores

#: settings that change the trained model (the resume key); others (paths, threads) do not
MODEL_KEYS = (
    "dataset", "backbone", "pretrained", "input_size", "batch_size", "epochs", "warmup_epochs", "lr",
    "head_lr_mult", "weight_decay", "rotation_deg", "freeze", "train_split", "val_split", "per_class", "seed",
    "drop_path",
)  # fmt: skip


def settings_key(cfg: dict[str, Any]) -> str:
    blob = json.dumps({k: cfg.get(k) for k in MODEL_KEYS}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_torch(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    fsutil.write_bytes(path, buf.getvalue())


def load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: checkpoint not found (run `rsicbench classify train` first)") from None
    except Exception as e:
        raise RuntimeError(f"{path}: cannot read checkpoint ({e})") from None


def build_model(cfg: dict[str, Any], num_classes: int, pretrained: bool | None = None) -> EMTCAL:
    model = EMTCAL(
        num_classes,
        backbone=cfg["backbone"],
        pretrained=cfg["pretrained"] if pretrained is None else pretrained,
        drop_path=float(cfg.get("drop_path", 0.1)),
    )
    model.freeze_backbone_prefix(tuple(cfg.get("freeze") or ()))
    return model


def load_classifier(path: Path) -> tuple[EMTCAL, dict[str, Any]]:
    """The model in best.pt (eval mode) and its metadata (classes, settings, val OA)."""
    ck = load_torch(path)
    for k in ("model", "classes", "settings"):
        if k not in ck:
            raise RuntimeError(f"{path}: not a classifier checkpoint (no {k!r})")
    model = build_model(ck["settings"], len(ck["classes"]), pretrained=False)
    model.load_state_dict(ck["model"], strict=True)
    return model.eval(), ck


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 (EMTCAL's schedule), per optimizer step."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _param_groups(model: EMTCAL, lr: float, head_mult: float, wd: float) -> list[dict]:
    bb = [p for p in model.backbone.parameters() if p.requires_grad]
    new = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    groups = [{"params": new, "lr": lr * head_mult, "base_lr": lr * head_mult, "weight_decay": wd}]
    if bb:
        groups.append({"params": bb, "lr": lr, "base_lr": lr, "weight_decay": wd})
    return groups


def evaluate_items(model: EMTCAL, images: torch.Tensor, labels: np.ndarray, classes: list[str], batch: int) -> dict:
    pred = predict(model, images, batch)
    return scores(confusion(labels, pred, len(classes)), classes)


def _splits(cfg: dict[str, Any], seed: int) -> tuple[list, list, list, str]:
    """(train, val, test items, data source): the configured splits cut to `per_class`, refused
    when a test image is in train/val or a val/test class never occurs in train."""
    ds, source = cfg["dataset"], cfg.get("source", "auto")
    tr_items, src = load_items(ds, cfg["train_split"], seed, source)
    va_items, _ = load_items(ds, cfg["val_split"], seed, source)
    te_items, _ = load_items(ds, cfg.get("test_split", "test"), seed, source)
    tr_items = subset(tr_items, cfg.get("per_class"))
    va_items = subset(va_items, cfg.get("per_class"))
    te_items = subset(te_items, cfg.get("per_class"))
    leak = {i.relpath for i in te_items} & ({i.relpath for i in tr_items} | {i.relpath for i in va_items})
    if leak:
        raise RuntimeError(f"{ds}: {len(leak)} test images in the classifier train/val splits, e.g. {sorted(leak)[:3]}")
    missing = sorted({i.label for i in va_items + te_items} - {i.label for i in tr_items})
    if missing:
        raise RuntimeError(f"{ds}: classes {missing} appear in val/test but not in {cfg['train_split']}")
    return tr_items, va_items, te_items, src


@dataclass
class _Run:
    """One classifier run: settings, data tensors, model, optimizer and the step plan."""
    cfg: dict[str, Any]
    out: Path
    key: str
    classes: list[str]
    x_tr: torch.Tensor
    y_tr: torch.Tensor
    x_va: torch.Tensor
    y_va: np.ndarray
    model: EMTCAL
    opt: torch.optim.Optimizer
    seed: int
    batch: int
    steps_per_epoch: int
    epochs: int
    total: int  # optimizer steps of the whole run
    warm: int  # warm-up steps


def _resume(r: _Run, log) -> tuple[int, float, int, list]:
    """(epochs done, best val OA, its epoch, log rows) from latest.pt when its settings key matches."""
    latest = r.out / "latest.pt"
    if latest.is_file():
        ck = load_torch(latest)
        if ck.get("key") == r.key:
            r.model.load_state_dict(ck["model"])
            r.opt.load_state_dict(ck["optimizer"])
            start, best_oa, best_epoch, rows = int(ck["epoch"]), float(ck["best_oa"]), int(ck["best_epoch"]), list(ck["rows"])
            log(f"resuming after epoch {start} (best val OA {best_oa:.2f} at epoch {best_epoch})")
            return start, best_oa, best_epoch, rows
        log(f"{latest}: different settings, starting over")
    return 0, -1.0, -1, []


def _train_epoch(r: _Run, epoch: int) -> tuple[float, float]:
    """One pass over the train images, shuffling, augmentation and DropPath seeded by (seed,
    epoch); returns (mean loss, accuracy %)."""
    torch.manual_seed(r.seed * 100003 + epoch)  # DropPath randomness
    gen = torch.Generator().manual_seed(r.seed * 100003 + epoch)
    order = torch.randperm(len(r.y_tr), generator=gen)
    r.model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for s in range(r.steps_per_epoch):
        f = lr_factor(epoch * r.steps_per_epoch + s, r.total, r.warm)
        for g in r.opt.param_groups:
            g["lr"] = g["base_lr"] * f
        idx = order[s * r.batch : (s + 1) * r.batch]
        xb = augment(r.x_tr[idx].float(), gen, float(r.cfg["rotation_deg"]))
        logits = r.model(xb)
        loss = F.cross_entropy(logits, r.y_tr[idx])
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite training loss at epoch {epoch + 1}, step {s + 1}")
        r.opt.zero_grad(set_to_none=True)
        loss.backward()
        r.opt.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == r.y_tr[idx]).sum())
        seen += len(idx)
    return loss_sum / seen, 100.0 * correct / seen


def _epoch(r: _Run, epoch: int, best_oa: float, best_epoch: int, rows: list, log) -> tuple[float, int]:
    """Train one epoch, validate, write best.pt (on a strictly better val OA), latest.pt and
    log.csv; returns the (possibly new) best val OA and its epoch."""
    t0, c0 = time.time(), time.process_time()
    train_loss, train_acc = _train_epoch(r, epoch)
    val = evaluate_items(r.model, r.x_va, r.y_va, r.classes, int(r.cfg["eval_batch"]))
    row = {
        "epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
        "val_oa": val["oa"], "lr": r.opt.param_groups[-1]["lr"], "seconds": time.time() - t0,
        "cpu_seconds": time.process_time() - c0,
    }  # fmt: skip
    rows.append(row)
    if val["oa"] > best_oa:  # strict: ties keep the earlier epoch
        best_oa, best_epoch = val["oa"], epoch + 1
        save_torch(r.out / "best.pt", {
            "model": r.model.state_dict(), "classes": r.classes, "settings": {k: r.cfg.get(k) for k in MODEL_KEYS},
            "val_oa": best_oa, "epoch": best_epoch, "key": r.key,
        })  # fmt: skip
    save_torch(r.out / "latest.pt", {
        "model": r.model.state_dict(), "optimizer": r.opt.state_dict(), "epoch": epoch + 1, "best_oa": best_oa,
        "best_epoch": best_epoch, "rows": rows, "key": r.key,
    })  # fmt: skip
    _write_log(r.out / "log.csv", rows)
    log(f"epoch {epoch + 1}/{r.epochs}: loss {row['train_loss']:.4f}, train {row['train_acc']:.2f}%, "
        f"val OA {val['oa']:.2f}%, {row['seconds']:.1f}s")
    return best_oa, best_epoch


def _clean_test(r: _Run, te_items: list, src: str, best_epoch: int, progress: bool) -> dict:
    """The best.pt model on the clean test split -> clean_test.json (OA, per class, confusion)."""
    best_model, _ = load_classifier(r.out / "best.pt")
    cidx = {c: i for i, c in enumerate(r.classes)}
    x_te = load_tensor([i.path for i in te_items], int(r.cfg["input_size"]), progress)
    y_te = np.array([cidx[i.label] for i in te_items])
    clean = evaluate_items(best_model, x_te, y_te, r.classes, int(r.cfg["eval_batch"]))
    clean.update({"dataset": r.cfg["dataset"], "split": r.cfg.get("test_split", "test"), "data_source": src,
                  "epoch": best_epoch, "images": [i.relpath for i in te_items]})
    fsutil.write_json(r.out / "clean_test.json", clean)
    return clean


def _setup(cfg: dict[str, Any], tr_items: list, va_items: list, progress: bool) -> _Run:
    """Data tensors, model, optimizer and step plan of a run."""
    seed, size = int(cfg.get("seed", 0)), int(cfg["input_size"])
    classes = sorted({i.label for i in tr_items})
    cidx = {c: i for i, c in enumerate(classes)}
    x_tr = load_tensor([i.path for i in tr_items], size, progress)
    y_tr = torch.tensor([cidx[i.label] for i in tr_items])
    x_va = load_tensor([i.path for i in va_items], size, progress)
    y_va = np.array([cidx[i.label] for i in va_items])
    model = build_model(cfg, len(classes))
    opt = torch.optim.Adam(_param_groups(model, float(cfg["lr"]), float(cfg["head_lr_mult"]), float(cfg["weight_decay"])))
    bs = int(cfg["batch_size"])
    steps_per_epoch = math.ceil(len(tr_items) / bs)
    epochs = int(cfg["epochs"])
    return _Run(cfg, Path(cfg["out_dir"]) / cfg["dataset"], settings_key(cfg), classes, x_tr, y_tr, x_va, y_va,
                model, opt, seed, bs, steps_per_epoch, epochs, epochs * steps_per_epoch,
                int(round(float(cfg["warmup_epochs"]) * steps_per_epoch)))


def train(cfg: dict[str, Any], log=print) -> dict[str, Any]:
    ds = cfg["dataset"]
    seed = int(cfg.get("seed", 0))
    seed_everything(seed, int(cfg.get("threads", 2)))
    tr_items, va_items, te_items, src = _splits(cfg, seed)
    log(f"classify train: {ds} ({src}), {len(tr_items)} train / {len(va_items)} val / {len(te_items)} test, "
        f"{len({i.label for i in tr_items})} classes, input {int(cfg['input_size'])}px")
    progress = sys.stderr.isatty()
    r = _setup(cfg, tr_items, va_items, progress)
    start, best_oa, best_epoch, rows = _resume(r, log)
    t_all = time.time()
    for epoch in range(start, r.epochs):
        best_oa, best_epoch = _epoch(r, epoch, best_oa, best_epoch, rows, log)

    train_s = sum(row["seconds"] for row in rows)
    clean = _clean_test(r, te_items, src, best_epoch, progress)
    info = {
        "settings": {k: cfg.get(k) for k in MODEL_KEYS}, "key": r.key, "data_source": src,
        "n_train": len(tr_items), "n_val": len(va_items), "n_test": len(te_items), "classes": r.classes,
        "best_epoch": best_epoch, "best_val_oa": best_oa, "clean_test_oa": clean["oa"],
        "train_seconds_total": train_s,
        "train_cpu_seconds_total": sum(row.get("cpu_seconds") or 0.0 for row in rows), "session_seconds": time.time() - t_all,
        "trainable_params": sum(p.numel() for p in r.model.parameters() if p.requires_grad),
        "params": sum(p.numel() for p in r.model.parameters()),
    }  # fmt: skip
    fsutil.write_json(r.out / "train.json", info)
    log(f"best val OA {best_oa:.2f}% (epoch {best_epoch}); clean test OA {clean['oa']:.2f}% on {len(te_items)} images")
    return info


def _write_log(path: Path, rows: list[dict]) -> None:
    cols = ["epoch", "train_loss", "train_acc", "val_oa", "lr", "seconds", "cpu_seconds"]
    fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = [",".join(cols)] + [",".join(fmt(r.get(c)) for c in cols) for r in rows]
    fsutil.write_text(path, "\n".join(lines) + "\n")
