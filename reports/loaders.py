"""Readers for the pipeline's output files (docs/architecture.md), for the report only.

Every reader returns None / an empty collection when its input is absent, so a section can
say "not produced by this run" instead of inventing numbers, and raises ValueError naming the
file when an input is present but malformed. Formats owned by other parts that the contract
leaves loose (BD tables, complexity, downstream) are read tolerantly: the accepted shapes are
listed in each reader's docstring.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench import results


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


# ---------------------------------------------------------------- RD results

@dataclass
class RDPoint:
    """One rate point of one codec on one dataset, as the report reads it: the per-image
    values (rsicbench.results.read_per_image) and the point's summary."""

    codec: str
    qtag: str
    folder: Path
    images: list[str]
    values: dict[str, np.ndarray]  # column -> per-image values of the images that succeeded
    n_failed: int
    failed: list[str]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.images)

    def mean(self, col: str) -> float:
        """The mean by the one averaging rule (rsicbench.results.average: +inf dB capped at 100)."""
        return results.average(self.values[col], col).mean

    def quantiles(self, col: str, qs=(25, 75)) -> tuple[float, ...]:
        v = self.values[col]
        v = v[np.isfinite(v)]
        if not v.size:
            return tuple(math.nan for _ in qs)
        return tuple(float(x) for x in np.percentile(v, qs))

    def count(self, col: str) -> int:
        return int(np.isfinite(self.values[col]).sum())


def read_per_image(path: Path) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """(images, column -> values, failed images) from one per_image.csv; failed rows are kept
    apart; +inf of dB metrics capped as every average caps it (rsicbench.results)."""
    table = results.read_per_image(path)
    arrays = {c: results.capped(table.column(c), c) for c in results.NUMERIC_COLUMNS}
    return table.images, arrays, list(table.failed)


def load_rd(results_dir: Path, ds: str) -> dict[str, list[RDPoint]]:
    """codec -> its rate points (sorted by mean bpp) under results/rd/<ds>/<codec>/<qtag>/."""
    base = results_dir / "rd" / ds
    out: dict[str, list[RDPoint]] = {}
    if not base.is_dir():
        return out
    for codec_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        points = []
        for qdir in sorted(p for p in codec_dir.iterdir() if p.is_dir()):
            csv_path = qdir / results.PER_IMAGE
            if not csv_path.is_file():
                continue  # a rate point still running, or only a recon folder
            images, values, failed = read_per_image(csv_path)
            summary_path = qdir / results.SUMMARY
            summary = read_json_file(summary_path) if summary_path.is_file() else {}
            points.append(RDPoint(codec_dir.name, qdir.name, qdir, images, values, len(failed), failed,
                                  summary if isinstance(summary, dict) else {}))
        if points:
            points.sort(key=lambda p: (math.inf if math.isnan(p.mean("bpp")) else p.mean("bpp"), p.qtag))
            out[codec_dir.name] = points
    return out


def rd_datasets(results: Path) -> list[str]:
    base = results / "rd"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


# ---------------------------------------------------------------- data

@dataclass
class DatasetInfo:
    name: str
    manifest: Path
    rows: list[dict[str, str]]
    splits: dict[str, list[str]]


MANIFEST_COLUMNS = ("relpath", "class", "width", "height", "sha256_rgb")


def read_manifest(path: Path) -> list[dict[str, str]]:
    """data/<ds>/manifest.tsv, with or without a header line (columns as in the contract)."""
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].split("\t")[0].strip().lower() == "relpath":
        header = [h.strip() for h in lines[0].split("\t")]
        lines = lines[1:]
    else:
        header = list(MANIFEST_COLUMNS)
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 4:
            raise ValueError(f"{path}: line {i}: expected {len(header)} tab-separated fields, got {len(parts)}")
        rows.append(dict(zip(header, parts)))
    return rows


def load_datasets(data: Path) -> list[DatasetInfo]:
    out = []
    if not data.is_dir():
        return out
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        man = d / "manifest.tsv"
        if not man.is_file():
            continue
        splits = {}
        sdir = d / "splits"
        if sdir.is_dir():
            for s in sorted(sdir.glob("*.txt")):
                splits[s.stem] = [ln.strip() for ln in s.read_text(encoding="utf-8").splitlines() if ln.strip()]
        out.append(DatasetInfo(d.name, man, read_manifest(man), splits))
    return out


# ---------------------------------------------------------------- BD tables

@dataclass
class BDRow:
    codec: str
    anchor: str
    values: dict[str, float]  # quantity (bd_rate_psnr, bd_psnr, ...) -> value
    ci: dict[str, tuple[float, float]]  # quantity -> (low, high)
    extra: dict[str, Any]


def _ci(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return (math.nan if v[0] is None else float(v[0]), math.nan if v[1] is None else float(v[1]))
    if isinstance(v, dict) and {"low", "high"} <= set(v):
        return float(v["low"]), float(v["high"])
    if isinstance(v, dict) and {"lo", "hi"} <= set(v):
        return float(v["lo"]), float(v["hi"])
    return None


def _bd_row(codec: str, anchor: str, d: dict[str, Any]) -> BDRow:
    values: dict[str, float] = {}
    ci: dict[str, tuple[float, float]] = {}
    extra: dict[str, Any] = {}
    for k, v in d.items():
        if not k.startswith("bd_"):
            extra[k] = v
            continue
        if isinstance(v, dict) and "value" in v:  # {"value": x, "ci": [lo, hi]} or metrics.bd.bootstrap_bd's dict
            values[k] = math.nan if v["value"] is None else float(v["value"])
            c = _ci(v.get("ci")) or _ci([v.get("ci_low"), v.get("ci_high")])
            if c and not all(math.isnan(x) for x in c):
                ci[k] = c
            if v.get("warnings") or v.get("valid") is False:
                extra[f"{k}.warnings"] = "; ".join(map(str, v.get("warnings") or ["flagged invalid"]))
        elif k.endswith("_ci"):
            c = _ci(v)
            if c:
                ci[k[:-3]] = c
        elif k.endswith(("_lo", "_low")):
            base = k.rsplit("_", 1)[0]
            hi = d.get(base + ("_hi" if k.endswith("_lo") else "_high"))
            if isinstance(v, (int, float)) and isinstance(hi, (int, float)):
                ci[base] = (float(v), float(hi))
        elif k.endswith(("_hi", "_high")):
            continue
        elif isinstance(v, (int, float)) or v is None:
            values[k] = math.nan if v is None else float(v)
    return BDRow(codec, anchor, values, ci, extra)


def load_bd(path: Path) -> list[BDRow] | None:
    """results/bd/<ds>.json as rows. Accepted shapes (keys `bd_*` are BD quantities):

    * a list of rows `{"codec": ..., "anchor": ..., "bd_rate_psnr": x, "bd_rate_psnr_ci": [lo, hi], ...}`
    * `{"anchor": ..., "rows"|"results"|"table": [rows]}`
    * `{"anchor": ..., "codecs": {codec: {bd_*: ...}}}` or a plain `{codec: {bd_*: ...}}`
    A value may also be `{"value": x, "ci": [lo, hi]}`; CIs may be `<q>_lo`/`<q>_hi` too.
    """
    if not path.is_file():
        return None
    obj = read_json_file(path)
    anchor = "jpeg2000"
    rows_in: list[tuple[str, dict]] = []
    if isinstance(obj, dict):
        anchor = str(obj.get("anchor", anchor))
        for key in ("rows", "results", "table"):
            if isinstance(obj.get(key), list):
                rows_in = [(str(r.get("codec", r.get("test", ""))), r) for r in obj[key]]
                break
        else:
            codecs = obj.get("codecs")
            mapping = codecs if isinstance(codecs, dict) else obj
            rows_in = [(str(k), v) for k, v in mapping.items() if isinstance(v, dict)]
    elif isinstance(obj, list):
        rows_in = [(str(r.get("codec", r.get("test", ""))), r) for r in obj if isinstance(r, dict)]
    else:
        raise ValueError(f"{path}: expected a JSON object or list of rows, got {type(obj).__name__}")
    rows = []
    for codec, r in rows_in:
        if not isinstance(r, dict):
            raise ValueError(f"{path}: row for {codec!r} is not an object")
        if not codec:
            raise ValueError(f"{path}: a row has no 'codec' field")
        rows.append(_bd_row(codec, str(r.get("anchor", anchor)), {k: v for k, v in r.items() if k not in ("codec", "test", "anchor")}))
    if not any(r.values for r in rows) and rows:
        raise ValueError(f"{path}: no bd_* quantities found in any row")
    return sorted(rows, key=lambda r: (r.anchor, r.codec))


# ---------------------------------------------------------------- complexity / downstream

def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_complexity(results: Path) -> dict[str, dict[str, Any]]:
    """model -> flattened scalars of results/complexity/<model>.json (nested keys joined by '.')."""
    base = results / "complexity"
    out = {}
    if base.is_dir():
        for p in sorted(base.glob("*.json")):
            obj = read_json_file(p)
            if not isinstance(obj, dict):
                raise ValueError(f"{p}: expected a JSON object")
            out[p.stem] = _flatten(obj)
    return out


@dataclass
class DownstreamRun:
    """Everything the classify stages wrote for one dataset (downstream/train.py, evaluate.py)."""

    ds: str
    summary: dict[str, Any] | None  # results/downstream/<ds>/summary.json
    clean: dict[str, Any] | None  # results/downstream/<ds>/clean.json
    points: dict[str, dict[str, dict[str, Any]]]  # codec -> qtag -> <codec>/<qtag>.json
    plots: dict[str, Path]  # file name -> results/downstream/<ds>/plots/<name>.png
    train: dict[str, Any] | None  # results/classifier/<ds>/train.json
    clean_test: dict[str, Any] | None  # results/classifier/<ds>/clean_test.json


def _json_object(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    obj = read_json_file(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_confusion(path: Path, obj: dict[str, Any]) -> None:
    cm = obj.get("confusion")
    if cm is None:
        return
    mat = np.asarray(cm, dtype=np.float64)
    classes = obj.get("classes") or []
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or (classes and len(classes) != mat.shape[0]):
        raise ValueError(f"{path}: 'confusion' must be a square matrix with one row per entry of 'classes' "
                         f"(got shape {mat.shape}, {len(classes)} classes)")


def load_downstream(results: Path) -> dict[str, DownstreamRun]:
    """ds -> the classify stages' files, for every ds with results/downstream/<ds>/ or
    results/classifier/<ds>/. Formats: downstream/evaluate.py and downstream/train.py docstrings
    (OA in %, confusion rows = true class, summary.json `codecs.<codec>.at_target.<t>` with
    `method` matched | interpolated | nearest)."""
    names = set()
    for sub in ("downstream", "classifier"):
        base = results / sub
        if base.is_dir():
            names |= {p.name for p in base.iterdir() if p.is_dir()}
    out: dict[str, DownstreamRun] = {}
    for ds in sorted(names):
        dsdir = results / "downstream" / ds
        points: dict[str, dict[str, dict[str, Any]]] = {}
        if dsdir.is_dir():
            for p in sorted(dsdir.glob("*/*.json")):
                obj = _json_object(p)
                if "oa" not in obj:
                    raise ValueError(f"{p}: no 'oa' (expected downstream/evaluate.py's per-point result)")
                _check_confusion(p, obj)
                points.setdefault(p.parent.name, {})[p.stem] = obj
        summary = _json_object(dsdir / "summary.json")
        if summary is not None and not isinstance(summary.get("codecs"), dict):
            raise ValueError(f"{dsdir / 'summary.json'}: expected a 'codecs' object (downstream/evaluate.py)")
        clean = _json_object(dsdir / "clean.json")
        if clean is not None:
            _check_confusion(dsdir / "clean.json", clean)
        plots = {p.name: p for p in sorted((dsdir / "plots").glob("*.png"))} if (dsdir / "plots").is_dir() else {}
        cdir = results / "classifier" / ds
        out[ds] = DownstreamRun(ds, summary, clean, points, plots, _json_object(cdir / "train.json"),
                                _json_object(cdir / "clean_test.json"))
    return out


# ---------------------------------------------------------------- ablation / fidelity

def load_ablation(results: Path) -> dict[str, dict[str, Any]]:
    """paper -> results/ablation/<paper>.json (reproduce/papers/ablation.py: `rows` of variants, each
    with `variant`, `family`, `modules`, `rd_points`, `bd_rate_psnr`/`bd_psnr` dicts
    {value, valid, warnings}, `bd_rate_psnr_ci` (reproduce/evaluation/paired_bd.py) and its
    `difference`, `params`, `paper_claims`)."""
    base = results / "ablation"
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(base.glob("*.json")) if base.is_dir() else []:
        obj = _json_object(p) or {}  # globbed, so present; {} reports "expected 'rows'" if it vanished
        rows = obj.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "variant" in r for r in rows):
            raise ValueError(f"{p}: expected 'rows', a list of objects with 'variant' (reproduce/papers/ablation.py)")
        out[p.stem] = obj
    return out


def load_fidelity(results: Path) -> list[dict[str, Any]] | None:
    """results/fidelity.json rows (reproduce/papers/fidelity.py: table, name, input, params,
    params_thop, flops, macs_thop, paper_params/paper_flops, rel_diff_*), or None."""
    obj = _json_object(results / "fidelity.json")
    if obj is None:
        return None
    rows = obj.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"table", "name"} <= set(r) for r in rows):
        raise ValueError(f"{results / 'fidelity.json'}: expected 'rows' with 'table' and 'name' (reproduce/papers/fidelity.py)")
    return rows


# ---------------------------------------------------------------- claims

@dataclass
class Claim:
    paper: str
    file: Path
    id: str
    ref: str
    dataset: str | None
    quantity: str
    subject: str
    anchor: str | None
    value: float | None  # None: qualitative claim (text and/or note)
    unit: str
    note: str
    text: str = ""  # the value as written, for a non-numeric claim


def load_claims(claims_dir: Path) -> dict[str, list[Claim]]:
    """paper -> its claims, from claims/<paper>.yaml (rsicbench.claims: format and checks)."""
    from rsicbench.claims import all_claims

    out: dict[str, list[Claim]] = {}
    for f in all_claims(claims_dir).values():
        items = []
        for c in f.claims:
            # a number; or null / a non-numeric text (a setting, an ordering, a trend): a
            # qualitative claim, shown as text and never given a numeric verdict
            raw = c["value"]
            try:
                value = None if raw is None or isinstance(raw, bool) else float(raw)
            except (TypeError, ValueError):
                value = None
            text = "" if value is not None or raw is None else str(raw)
            items.append(Claim(f.paper, f.path, str(c["id"]), str(c["ref"]), c.get("dataset"), str(c["quantity"]),
                               str(c["subject"]), c.get("anchor"), value, str(c.get("unit", "")), str(c.get("note", "")), text))
        out[f.paper] = items
    return out
