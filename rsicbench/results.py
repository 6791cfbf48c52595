"""The results contract: what an evaluation writes under results/ and how every part reads it.

One definition, used by the engine (writer), `rsicbench metrics`, BD, ablation, downstream
and the report (readers). Layout (docs/architecture.md, "Results"):

  results/rd/<ds>/<codec>/<qtag>/per_image.csv    CSV_COLUMNS, one row per image
  results/rd/<ds>/<codec>/<qtag>/summary.json     means, stds, codec description
  results/rd/<ds>/<codec>/<qtag>/recon/<stem>.png decoded images (lossless PNG)
  results/rd/<ds>/<codec>.json                    RD curve: fixed-quality summaries by mean bpp
  results/train/<model>/<rate>/                   a learned model's training run (`run_dir`)

Rate-point tag (qtag): `q<quality>` for a fixed quality (`%g`), `bpp<target>` with two
decimals for the matched-rate mode (per image, the quality nearest the target bpp).

Averaging rule (the one rule; docs/metrics.md "Edge cases"): a summary value is the mean
over images of the per-image values. Before averaging, +inf of a dB metric (DB_KEYS:
identical images) is capped at PSNR_CAP_DB = 100 dB, and the number of capped images is
reported; nan / empty (metric not defined for that image) is skipped. 100 dB is above
anything an 8-bit lossy codec reaches (one wrong grey level in a 256x256x3 image is
106.9 dB), so for finite values the rule is the plain mean.

Core module: imports only the standard library, numpy and rsicbench core (fsutil, paths).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench.fsutil import read_json, write_json, write_text

PSNR_CAP_DB = 100.0
DB_KEYS = frozenset({"psnr", "psnr_band", "msssim_db", "roi_psnr"})
METRIC_COLUMNS: tuple[str, ...] = ("psnr", "psnr_band", "msssim", "msssim_db", "lpips", "vifp", "roi_psnr")
CSV_COLUMNS: tuple[str, ...] = ("image", "width", "height", "bytes", "bpp", *METRIC_COLUMNS, "enc_s", "dec_s", "error")
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in CSV_COLUMNS if c not in ("image", "error"))
PER_IMAGE = "per_image.csv"
SUMMARY = "summary.json"


# ----------------------------------------------------------------------------- images
@dataclass(frozen=True)
class Sample:
    """One image to evaluate: its file, its path relative to the dataset's images folder (the
    key of every per-image result) and its class label ("" or None when unlabelled)."""

    path: str | Path
    relpath: str
    label: str | None = ""


def stem(relpath: str) -> str:
    """The relpath without its extension: the name of an image's recon / part file."""
    p = Path(relpath)
    return str(p.with_suffix("")) if p.suffix else str(p)


# ----------------------------------------------------------------------------- rate points
_QTAG = re.compile(r"^(?:q(?P<q>[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)|bpp(?P<bpp>\d+\.\d\d))$")


@dataclass(frozen=True)
class RatePoint:
    """A fixed quality, or a per-image target bpp (matched-rate mode)."""

    quality: float | None = None
    target_bpp: float | None = None

    def __post_init__(self) -> None:
        if (self.quality is None) == (self.target_bpp is None):
            raise ValueError("a rate point has exactly one of quality / target_bpp")

    @property
    def qtag(self) -> str:
        if self.target_bpp is not None:
            return f"bpp{self.target_bpp:.2f}"
        return f"q{self.quality:g}"

    @classmethod
    def parse(cls, qtag: str) -> RatePoint:
        """The rate point of a tag `q<quality>` / `bpp<target, 2 decimals>`; ValueError otherwise."""
        m = _QTAG.match(str(qtag))
        if not m:
            raise ValueError(f"rate tag {qtag!r}: expected q<quality> (e.g. q50, q0.5) or bpp<target> (e.g. bpp0.70)")
        if m["bpp"] is not None:
            point = cls(target_bpp=float(m["bpp"]))
        else:
            q = float(m["q"])
            point = cls(quality=int(q) if q.is_integer() else q)
        if point.qtag != qtag:  # one folder name per rate point: q50, never q50.0 or q050
            raise ValueError(f"rate tag {qtag!r}: not in canonical form (write {point.qtag!r})")
        return point


def qtag(quality: float | None = None, target_bpp: float | None = None) -> str:
    return RatePoint(quality, target_bpp).qtag


def model_runs_dir(model: str, root: Path | None = None) -> Path:
    """results/train/<model>/: every rate's training run of a learned model."""
    from rsicbench.paths import project_root

    return (root or project_root()) / "results" / "train" / model


def run_dir(model: str, rate: str, root: Path | None = None) -> Path:
    """results/train/<model>/<rate>/: a learned model's training run (checkpoints, log)."""
    return model_runs_dir(model, root) / rate


# ----------------------------------------------------------------------------- averaging
def capped(values: Iterable[float] | np.ndarray, key: str) -> np.ndarray:
    """Per-image values as float64, with +inf replaced by PSNR_CAP_DB for dB metrics."""
    a = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    if key in DB_KEYS:
        a = np.where(np.isposinf(a), PSNR_CAP_DB, a)
    return a


def _num(v: Any) -> float:
    """A per-image value as float; missing (None, '') is nan."""
    return math.nan if v is None or v == "" else float(v)


@dataclass(frozen=True)
class Average:
    mean: float  # nan when no image has a value
    std: float  # population std
    n: int  # images with a value
    n_inf: int  # +inf values capped (dB metrics)


def average(values: Iterable[Any] | np.ndarray, key: str) -> Average:
    """The one averaging rule (module docstring) over per-image values (None / '' = missing)."""
    raw = values if isinstance(values, np.ndarray) else np.asarray([_num(v) for v in values], dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    vals = capped(raw, key)
    ok = vals[~np.isnan(vals)]
    n_inf = int(np.isposinf(raw).sum()) if key in DB_KEYS else 0
    if not ok.size:
        return Average(math.nan, math.nan, 0, n_inf)
    return Average(float(ok.mean()), float(ok.std()), int(ok.size), n_inf)


# ----------------------------------------------------------------------------- files
def point_dir(rd_root: str | os.PathLike, dataset: str, codec: str, tag: str) -> Path:
    return Path(rd_root) / dataset / codec / tag


def curve_path(rd_root: str | os.PathLike, dataset: str, codec: str) -> Path:
    return Path(rd_root) / dataset / f"{codec}.json"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v) if math.isfinite(v) else str(v)  # full precision; inf -> 'inf'
    return str(v)


def write_per_image(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """per_image.csv (CSV_COLUMNS; missing / None / nan cells empty), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in CSV_COLUMNS])
    write_text(path, buf.getvalue())


@dataclass
class PerImage:
    """One per_image.csv: rows of images that succeeded (numbers as float, missing = nan)
    and the failed images with their error."""

    path: Path
    rows: list[dict[str, Any]]
    failed: dict[str, str]

    @property
    def images(self) -> list[str]:
        return [r["image"] for r in self.rows]

    def column(self, key: str) -> np.ndarray:
        return np.asarray([r[key] for r in self.rows], dtype=np.float64)

    def by_image(self) -> dict[str, dict[str, Any]]:
        return {r["image"]: r for r in self.rows}


def read_per_image(path: str | os.PathLike) -> PerImage:
    """Read a per_image.csv; ValueError naming the file for missing columns or a bad number."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing columns {missing} (expected {', '.join(CSV_COLUMNS)})")
            for i, row in enumerate(reader, start=2):
                err = (row.get("error") or "").strip()
                if err:
                    failed[row["image"]] = err
                    continue
                out: dict[str, Any] = {"image": row["image"], "error": ""}
                for c in NUMERIC_COLUMNS:
                    text = (row.get(c) or "").strip()
                    try:
                        out[c] = float(text) if text else math.nan
                    except ValueError:
                        raise ValueError(f"{path}: row {i}, column {c!r}: not a number: {text!r}") from None
                rows.append(out)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found (the engine writes it beside {SUMMARY})") from None
    return PerImage(path, rows, failed)


def read_summary(path: str | os.PathLike) -> dict[str, Any]:
    """A point's summary.json (or the folder holding it); ValueError naming the file if it is not one."""
    path = Path(path)
    if path.is_dir() or path.name != SUMMARY:
        path = path / SUMMARY
    s = read_json(path)
    if not isinstance(s, dict) or not isinstance(s.get("mean"), dict):
        raise ValueError(f"{path}: not a point summary (expected an object with a 'mean' object)")
    return s


def point_dirs(rd_root: str | os.PathLike, dataset: str, codec: str | None = None) -> list[tuple[str, str, Path]]:
    """(codec, qtag, folder) of every rate point with a summary.json under results/rd/<ds>/, sorted."""
    base = Path(rd_root) / dataset
    out = []
    for s in sorted(base.glob(f"{codec if codec is not None else '*'}/*/{SUMMARY}")):
        out.append((s.parent.parent.name, s.parent.name, s.parent))
    return out


def codecs(rd_root: str | os.PathLike, dataset: str) -> list[str]:
    """Codecs with at least one rate point under results/rd/<ds>/."""
    return sorted({c for c, _, _ in point_dirs(rd_root, dataset)})


def curve(rd_root: str | os.PathLike, dataset: str, codec: str) -> list[dict[str, Any]]:
    """The fixed-quality rate points of a codec found on disk, sorted by mean bpp.

    The per-point summary.json files are the single source of truth: a learned model's rate
    points are written by separate `evaluate` stages, so the curve is the union of them.
    """
    pts = []
    for _, _, d in point_dirs(rd_root, dataset, codec):
        s = read_json(d / SUMMARY)
        if isinstance(s, dict) and s.get("target_bpp") is None and isinstance(s.get("mean"), dict):
            pts.append(s)
    pts.sort(key=lambda s: (s["mean"].get("bpp") is None, s["mean"].get("bpp") or 0.0, s.get("qtag", "")))
    return pts


def write_curve(rd_root: str | os.PathLike, dataset: str, codec: str) -> Path:
    """results/rd/<ds>/<codec>.json: every fixed-quality summary on disk, sorted by mean bpp."""
    path = curve_path(rd_root, dataset, codec)
    write_json(path, curve(rd_root, dataset, codec))
    return path


def write_summary(folder: str | os.PathLike, summary: Mapping[str, Any]) -> None:
    write_json(Path(folder) / SUMMARY, dict(summary))
