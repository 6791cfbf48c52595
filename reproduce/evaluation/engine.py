"""The evaluation engine: codec x split x rate points -> per-image rows, summaries, RD curve.

Layout (docs/architecture.md):
  results/rd/<ds>/<codec>/<qtag>/per_image.csv      contract columns, sorted by image
  results/rd/<ds>/<codec>/<qtag>/summary.json       means, stds, codec description
  results/rd/<ds>/<codec>/<qtag>/recon/<rel>.png    decoded images, lossless PNG
  results/rd/<ds>/<codec>/<qtag>/parts/<rel>.json   one finished image (the resume record)
  results/rd/<ds>/<codec>.json                      RD curve: list of summaries by bpp
qtag is `q<quality>` for a fixed quality and `bpp<target:.2f>` for the matched-rate mode
(per image, the quality nearest the target bpp by reproduce.search). The layout, columns,
tags and the averaging of summary.json (+inf dB capped at 100 dB) are rsicbench.results.

ROI: `SweepSpec.roi_dir` (optional) = a folder of ROI masks, one per image at
`<roi_dir>/<relpath without extension>.png` (PNG 0/255, 255 = ROI; reproduce.roi_masks).
Each image's mask is read and checked (size, binary values) and passed to the metrics
(`roi_psnr`) and, for codecs with `needs_roi` (MROI-CFHPM), to `encode(image, roi=mask)`
as encoder side information. A missing or bad mask fails that image with the file named.

Resumable: each image's result is written atomically to parts/ when it finishes; a rerun
skips images whose part exists, succeeded, and carries the same configuration key (codec,
library versions, settings, rate point, metric settings). Failed images are retried.
Parallel (`workers` > 1), two ways with the same per-operation thread count `threads`, so
the numbers do not depend on the choice:
  * "thread": `workers` threads of this process. Used for codecs whose `thread_parallel` is
    True (learned codecs without an autoregressive context model: their time is in torch
    calls that release the GIL). Each thread builds its own codec instance (the calling
    thread reuses the one `_describe` built); the MetricSuite (LPIPS weights) is shared, its
    forward passes are read-only. No process start-up, no second copy of LPIPS: on a 2-core
    evaluation of a few dozen images the spawn pool's start-up cost more than the images.
  * "process": a process pool ('spawn', so no forked OpenMP state); each worker builds the
    codec itself from (name, quality, options) and computes the metrics itself (one
    MetricSuite per worker), so the parent only gathers small records. The default for
    classical codecs (library calls of unknown thread safety) and for autoregressive learned
    codecs (mbt2018, Cheng2020, LTCHM: a Python loop per latent position holds the GIL, so
    threads barely overlap; measured on 21 UC Merced images, mbt2018, 2 workers: 25.9 s in
    threads, 21.2 s in processes, start-up included).
`SweepSpec.parallel` = "auto" (the rule above) | "thread" | "process".
Beyond one machine: `SweepSpec.executor = "dask"` runs the same tasks, parts and assembly on
a Dask cluster (reproduce/evaluation/executors.py, docs/scale.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rsicbench import results
from rsicbench.fsutil import read_json, write_bytes, write_json
from rsicbench.reproduce.codecs.base import CodecError, codec_factory, create_codec, mid_quality

# The contract (per-image columns, Sample, RatePoint, the averaging rule) is rsicbench.results;
# RatePoint and Sample are imported here for the engine's signatures.
from rsicbench.results import METRIC_COLUMNS, NUMERIC_COLUMNS, RatePoint, Sample, average, write_per_image
from rsicbench.results import stem as _stem


@dataclass
class SweepSpec:
    codec: str
    dataset: str
    split: str
    points: Sequence[RatePoint]
    out_root: Path = Path("results/rd")
    options: dict[str, Any] = field(default_factory=dict)
    #: passed to rsicbench.metrics.MetricSuite (device, lpips, ...)
    metrics: dict[str, Any] = field(default_factory=lambda: {"device": "cpu", "lpips": True})
    workers: int = 1
    threads: int = 1
    keep_recon: bool = True
    roi_dir: str | None = None
    #: "auto" | "thread" | "process" (module docstring); only used when workers > 1
    parallel: str = "auto"
    #: "local" (the pool above) | "dask" (reproduce.executors: tasks on the cluster at `scheduler`)
    executor: str = "local"
    scheduler: str | None = None

    def point_dir(self, point: RatePoint) -> Path:
        return results.point_dir(self.out_root, self.dataset, self.codec, point.qtag)


@dataclass
class SweepResult:
    summaries: list[dict[str, Any]]
    computed: int
    skipped: int
    failed: list[tuple[str, str, str]]  # (qtag, image, error)


def _describe(spec: SweepSpec, point: RatePoint) -> dict[str, Any]:
    """The codec description for a rate point; validates codec name, quality and options."""
    # Built through the worker-side cache: with one worker the same instance then encodes,
    # so a learned model is loaded once per rate point, not twice.
    if point.quality is not None:
        return _codec(spec.codec, point.quality, spec.options).describe()
    d = _codec(spec.codec, mid_quality(spec.codec), spec.options).describe()
    d["quality"] = None
    d["target_bpp"] = point.target_bpp
    return d


def config_key(describe: dict[str, Any], metrics: dict[str, Any]) -> str:
    blob = json.dumps({"codec": describe, "metrics": metrics}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- worker side
_STATE: dict[str, Any] = {}  # the MetricSuite, shared by the threads of a process
_LOCAL = threading.local()  # codec instances: one set per thread
_SUITE_LOCK = threading.Lock()
_CODEC_CACHE_SIZE = 8  # >= the rate points of one sweep, so each model is built once


def clear_caches() -> None:
    """Forget the cached codecs (this thread's) and MetricSuite: the next sweep builds them anew."""
    _STATE.clear()
    _LOCAL.__dict__.clear()


def _init_worker(threads: int) -> None:
    if mp.parent_process() is not None:  # a pool worker: dies with the sweep (kill -9), never finishes alone
        from rsicbench.lifetime import die_with_parent

        die_with_parent()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(int(threads))
    except ImportError:  # torch is only needed by learned codecs and LPIPS
        pass


def _suite(metrics: dict[str, Any]):
    key = json.dumps(metrics, sort_keys=True)
    with _SUITE_LOCK:  # threads share one suite: build it once
        if _STATE.get("suite_key") != key:
            from rsicbench.metrics import MetricSuite

            _STATE["suite"] = MetricSuite(**metrics)
            _STATE["suite_key"] = key
        return _STATE["suite"]


def _codec(name: str, quality: float, options: dict[str, Any]):
    key = (name, quality, json.dumps(options, sort_keys=True, default=str))
    cache = _LOCAL.__dict__.setdefault("codecs", {})
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
    else:
        while len(cache) >= _CODEC_CACHE_SIZE:  # bounded: learned models hold memory
            cache.pop(next(iter(cache)))
        cache[key] = create_codec(name, quality, **options)
    return cache[key]


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else v
    return v


def _write_recon(path: str, rgb: np.ndarray) -> None:
    """Lossless PNG at zlib level 1: ~2.5x faster than imageio's level 6 (which cost more than
    MS-SSIM per image) for ~13 % more bytes; the pixels, the only thing read back, are equal."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1, optimize=False)
    write_bytes(path, buf.getvalue())


def evaluate_image(task: dict[str, Any]) -> dict[str, Any]:
    """Encode, decode, measure one image; write its recon and its part record. Never raises."""
    from rsicbench.imageio import read_rgb

    row: dict[str, Any] = {"image": task["relpath"], "key": task["key"], "qtag": task["qtag"], "error": ""}
    try:
        ref = read_rgb(task["path"])
        h, w = ref.shape[:2]
        row.update(width=w, height=h)
        roi_mask = None
        if task.get("roi"):
            from rsicbench.reproduce.roi.providers import read_mask

            roi_mask = read_mask(task["roi"], ref.shape)
        if task["target_bpp"] is not None:
            from rsicbench.reproduce.evaluation.search import find_quality

            t0 = time.perf_counter()
            found = find_quality(task["codec"], ref, task["target_bpp"], task["options"])
            data, quality = found.data, found.quality
        else:
            quality = task["quality"]
            enc = _codec(task["codec"], quality, task["options"])  # built (if new) outside enc_s
            t0 = time.perf_counter()
            data = enc.encode(ref, roi=roi_mask) if getattr(enc, "needs_roi", False) else enc.encode(ref)
        enc_s = time.perf_counter() - t0
        codec = _codec(task["codec"], quality, task["options"])
        t0 = time.perf_counter()
        rec = codec.decode(data)
        dec_s = time.perf_counter() - t0
        if rec.shape != ref.shape:
            raise CodecError(f"{task['codec']}: decoded shape {rec.shape} != input {ref.shape}")
        scores = _suite(task["metrics"])(ref, rec, roi_mask=roi_mask)
        row.update({k: _clean(scores.get(k)) for k in METRIC_COLUMNS})
        row.update(bytes=len(data), bpp=8.0 * len(data) / (h * w), enc_s=enc_s, dec_s=dec_s, quality=quality)
        if task["recon"]:
            _write_recon(task["recon"], rec)
    except Exception as e:  # recorded per image; the sweep goes on (engine contract)
        row["error"] = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
        row["traceback"] = traceback.format_exc(limit=5)
    write_json(task["part"], row)
    return row


# ----------------------------------------------------------------------------- parent side
def _tasks(spec: SweepSpec, samples: Sequence[Sample]) -> tuple[list[dict], int, dict[str, dict]]:
    todo, skipped, describes = [], 0, {}
    for point in spec.points:
        desc = _describe(spec, point)
        describes[point.qtag] = desc
        key = config_key(desc, spec.metrics if not spec.roi_dir else {**spec.metrics, "roi_dir": str(spec.roi_dir)})
        base = spec.point_dir(point)
        for s in samples:
            part = base / "parts" / f"{_stem(s.relpath)}.json"
            if part.is_file():
                try:
                    old = read_json(part)
                    if old.get("key") == key and not old.get("error"):
                        skipped += 1
                        continue
                except ValueError:
                    pass  # a damaged part is recomputed
            todo.append(
                {
                    "codec": spec.codec, "options": dict(spec.options), "quality": point.quality,
                    "target_bpp": point.target_bpp, "qtag": point.qtag, "relpath": s.relpath,
                    "path": str(s.path), "key": key, "metrics": dict(spec.metrics),
                    "part": str(part),
                    "roi": str(Path(spec.roi_dir) / f"{_stem(s.relpath)}.png") if spec.roi_dir else "",
                    "recon": str(base / "recon" / f"{_stem(s.relpath)}.png") if spec.keep_recon else "",
                }
            )  # fmt: skip
    return todo, skipped, describes


def _run(todo: list[dict], spec: SweepSpec, on_result: Callable[[dict], None] | None) -> Iterable[dict]:
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc=f"sweep {spec.codec}", unit="img", disable=not sys.stderr.isatty())
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        if spec.executor != "local" and todo:
            from rsicbench.reproduce.evaluation.executors import run_dask

            rows: Iterable[dict] = stack.enter_context(contextlib.closing(run_dask(todo, spec)))
        elif spec.workers <= 1 or len(todo) <= 1:
            _init_worker(spec.threads)
            rows = map(evaluate_image, todo)
        elif _parallel_mode(spec) == "thread":
            _init_worker(spec.threads)
            rows = _run_threads(todo, spec.workers)
        else:
            pool = stack.enter_context(
                mp.get_context("spawn").Pool(spec.workers, initializer=_init_worker, initargs=(spec.threads,)))
            rows = pool.imap_unordered(evaluate_image, todo, chunksize=1)
        for row in rows:
            bar.update(1)
            if on_result:
                on_result(row)
            yield row


def _parallel_mode(spec: SweepSpec) -> str:
    if spec.parallel in ("thread", "process"):
        return spec.parallel
    if spec.parallel != "auto":
        raise ValueError(f"SweepSpec.parallel: {spec.parallel!r}, expected auto | thread | process")
    if not getattr(codec_factory(spec.codec), "thread_parallel", False):
        return "process"
    # the instance decides (a learned codec: by its model); `_describe` built it in this thread
    point = spec.points[0]
    quality = point.quality if point.quality is not None else mid_quality(spec.codec)
    return "thread" if _codec(spec.codec, quality, spec.options).thread_parallel else "process"


def _row(item: dict | BaseException) -> dict:
    if isinstance(item, BaseException):
        raise item
    return item


def _run_threads(todo: list[dict], workers: int) -> Iterable[dict]:
    """evaluate_image over `todo` on `workers` threads (this one included); rows as they finish."""
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    for t in todo:
        tasks.put(t)
    done: queue.SimpleQueue = queue.SimpleQueue()

    def work() -> None:
        while True:
            try:
                t = tasks.get_nowait()
            except queue.Empty:
                return
            try:
                done.put(evaluate_image(t))
            except BaseException as e:  # evaluate_image records image errors; this is a bug: re-raise it
                done.put(e)
                return

    helpers = [threading.Thread(target=work, name=f"sweep-{i}", daemon=True) for i in range(workers - 1)]
    for h in helpers:
        h.start()
    try:
        # This thread works too (it holds the codec `_describe` built): one task at a time,
        # handing out what the helpers finished in between.
        while True:
            try:
                t = tasks.get_nowait()
            except queue.Empty:
                break
            yield evaluate_image(t)
            while not done.empty():
                yield _row(done.get())
        for h in helpers:
            h.join()
        while not done.empty():
            yield _row(done.get())
    finally:
        while True:  # the consumer stopped early: let the helpers run dry, then wait for them
            try:
                tasks.get_nowait()
            except queue.Empty:
                break
        for h in helpers:
            h.join()


def _stats(rows: list[dict]) -> tuple[dict[str, float | None], dict[str, float | None], dict[str, int]]:
    """Means and stds by rsicbench.results.average (+inf dB capped at 100 dB); capped counts."""
    mean, std, n_inf = {}, {}, {}
    for c in NUMERIC_COLUMNS:
        avg = average([r.get(c) for r in rows], c)
        mean[c] = None if math.isnan(avg.mean) else avg.mean
        std[c] = None if math.isnan(avg.std) else avg.std
        if avg.n_inf:
            n_inf[c] = avg.n_inf
    return mean, std, n_inf


def assemble(spec: SweepSpec, samples: Sequence[Sample], point: RatePoint, describe: dict) -> dict[str, Any]:
    """per_image.csv + summary.json of one rate point from its parts (sorted by image)."""
    base = spec.point_dir(point)
    rows = []
    for s in sorted(samples, key=lambda s: s.relpath):
        part = base / "parts" / f"{_stem(s.relpath)}.json"
        rows.append(read_json(part) if part.is_file() else {"image": s.relpath, "error": "not evaluated"})
    write_per_image(base / results.PER_IMAGE, rows)
    ok = [r for r in rows if not r.get("error")]
    mean, std, n_inf = _stats(ok)
    summary = {
        "dataset": spec.dataset,
        "split": spec.split,
        "codec": spec.codec,
        "qtag": point.qtag,
        "quality": point.quality,
        "target_bpp": point.target_bpp,
        "describe": describe,
        "n_images": len(rows),
        "n_ok": len(ok),
        "n_failed": len(rows) - len(ok),
        "failed": {r["image"]: r["error"] for r in rows if r.get("error")},
        "mean": mean,
        "std": std,
        "recon_format": "PNG (lossless, 8-bit RGB) under recon/<relpath>.png" if spec.keep_recon else None,
    }
    if n_inf:  # only when an image was lossless: summaries of lossy points keep their bytes
        summary["n_inf"] = n_inf
    if point.target_bpp is not None:
        summary["qualities"] = {r["image"]: r.get("quality") for r in ok}
    results.write_summary(base, summary)
    return summary


def write_curve(spec: SweepSpec, summaries: list[dict[str, Any]] | None = None) -> Path:
    """results/rd/<ds>/<codec>.json: every fixed-quality summary on disk (rsicbench.results.curve)."""
    return results.write_curve(spec.out_root, spec.dataset, spec.codec)


def run_sweep(
    spec: SweepSpec, samples: Sequence[Sample], on_result: Callable[[dict], None] | None = None
) -> SweepResult:
    """Evaluate every (rate point, image) not yet done; assemble all outputs; report failures."""
    if not samples:
        raise ValueError(f"{spec.dataset}/{spec.split}: no images to evaluate")
    rels = [s.relpath for s in samples]
    if len(set(rels)) != len(rels):
        raise ValueError(f"{spec.dataset}/{spec.split}: duplicate image paths in the sample list")
    todo, skipped, describes = _tasks(spec, samples)
    computed = 0
    for _ in _run(todo, spec, on_result):
        computed += 1
    summaries = [assemble(spec, samples, p, describes[p.qtag]) for p in spec.points]
    if any(p.quality is not None for p in spec.points):
        write_curve(spec, summaries)
    failed = [(s["qtag"], img, err) for s in summaries for img, err in sorted(s["failed"].items())]
    return SweepResult(summaries=summaries, computed=computed, skipped=skipped, failed=failed)


def samples_from_folder(folder: str | os.PathLike, exts=(".png", ".webp", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")) -> list[Sample]:
    """Every image under `folder` (sorted), labelled by its parent folder's name."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())
    return [Sample(str(p), str(p.relative_to(root)), p.parent.name) for p in files]


def subset(samples: Sequence[Sample], per_class: int | None = None, max_images: int | None = None) -> list[Sample]:
    """A deterministic subset: the first `per_class` images of each class (sorted), then cap."""
    out = sorted(samples, key=lambda s: s.relpath)
    if per_class:
        count: dict[str, int] = {}
        keep = []
        for s in out:
            if count.get(s.label, 0) < per_class:
                keep.append(s)
                count[s.label] = count.get(s.label, 0) + 1
        out = keep
    if max_images:
        out = out[: int(max_images)]
    return out
