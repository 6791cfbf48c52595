"""What every section reads: input folders, the profile, report settings, and cached loads.

Also the lookups that pair a paper's claim with OUR measured number (`measured_for`). Those
lookups only read pipeline outputs; the one computation they do is a BD value between two
of our RD curves when the BD stage did not write that pair (an ablation variant vs its
paper's baseline). Such values are labelled "computed by the report from RD means, no CI".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rsicbench.reports import loaders

ANCHOR = "jpeg2000"
# BD quantity -> (metric column, "rate" | "quality")
BD_QUANTITIES = {
    "bd_rate_psnr": ("psnr", "rate"),
    "bd_rate": ("psnr", "rate"),
    "bd_psnr": ("psnr", "quality"),
    "bd_rate_msssim": ("msssim_db", "rate"),
    "bd_rate_msssim_db": ("msssim_db", "rate"),
    "bd_msssim_db": ("msssim_db", "quality"),
}
# complexity column -> substrings that identify it in a flattened results/complexity key
COMPLEXITY_FIELDS = {
    "params": ("param",),
    "flops": ("flop", "mac"),
    "enc_s": ("enc",),
    "dec_s": ("dec",),
    "memory": ("mem",),
}
# claim quantity -> complexity column (exact names only: 'hyperparameter' is not 'params')
CLAIM_COMPLEXITY = {"params": "params", "flops": "flops", "macs": "flops", "gflops": "flops",
                    "enc_time": "enc_s", "enc_s": "enc_s", "dec_time": "dec_s", "dec_s": "dec_s",
                    "memory": "memory", "gpu_memory": "memory", "peak_memory": "memory"}
UNIT_SCALE = {"K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "ms": 1e-3, "MB": 1.0, "GB": 1.0}


@dataclass
class Measured:
    value: float
    source: str  # the file (or computation) the number comes from
    ci: tuple[float, float] | None = None


@dataclass
class Context:
    root: Path
    results: Path
    data: Path
    claims_dir: Path
    profile: str
    cfg: dict[str, Any] = field(default_factory=dict)

    # ---- cached loads
    @cached_property
    def datasets(self) -> list[loaders.DatasetInfo]:
        return loaders.load_datasets(self.data)

    @cached_property
    def rd_names(self) -> list[str]:
        return loaders.rd_datasets(self.results)

    def rd(self, ds: str) -> dict[str, list[loaders.RatePoint]]:
        cache = self.__dict__.setdefault("_rd", {})
        if ds not in cache:
            cache[ds] = loaders.load_rd(self.results, ds)
        return cache[ds]

    def bd(self, ds: str) -> list[loaders.BDRow] | None:
        cache = self.__dict__.setdefault("_bd", {})
        if ds not in cache:
            cache[ds] = loaders.load_bd(self.results / "bd" / f"{ds}.json")
        return cache[ds]

    @cached_property
    def bd_names(self) -> list[str]:
        base = self.results / "bd"
        return sorted(p.stem for p in base.glob("*.json")) if base.is_dir() else []

    @cached_property
    def complexity(self) -> dict[str, dict[str, Any]]:
        return loaders.load_complexity(self.results)

    @cached_property
    def downstream(self) -> dict[str, list[loaders.DownstreamResult]]:
        return loaders.load_downstream(self.results)

    @cached_property
    def claims(self) -> dict[str, list[loaders.Claim]]:
        return loaders.load_claims(self.claims_dir)

    @cached_property
    def all_datasets(self) -> list[str]:
        names = {d.name for d in self.datasets} | set(self.rd_names) | set(self.bd_names)
        return sorted(names)

    def paper_prefixes(self, paper: str) -> list[str]:
        """Codec/model name prefixes that belong to a paper (configs/report.yaml `papers:`)."""
        conf = (self.cfg.get("papers") or {}).get(paper) or {}
        pre = conf.get("prefixes")
        if pre:
            return [str(p).lower() for p in pre]
        return ["".join(ch for ch in paper.lower() if ch.isalnum())]

    # ---- our numbers for a claim
    def measured_for(self, claim: loaders.Claim) -> Measured | None:
        q = claim.quantity
        if q in BD_QUANTITIES or q.startswith("bd_"):
            return self.measured_bd(claim.dataset, claim.subject, claim.anchor or ANCHOR, q)
        if q == "oa":
            return self.measured_oa(claim)
        if q in CLAIM_COMPLEXITY:
            return self.measured_complexity(claim.subject, CLAIM_COMPLEXITY[q], claim.unit)
        return None

    def measured_bd(self, ds: str | None, codec: str, anchor: str, quantity: str) -> Measured | None:
        if not ds:
            return None
        rows = self.bd(ds) or []
        for r in rows:
            if r.codec == codec and r.anchor == anchor and quantity in r.values:
                return Measured(r.values[quantity], f"results/bd/{ds}.json", r.ci.get(quantity))
        if anchor == ANCHOR or quantity not in BD_QUANTITIES:
            return None  # the jpeg2000 table is the BD stage's job; never recomputed here
        curves = self.rd(ds)
        if codec not in curves or anchor not in curves:
            return None
        got = bd_between(curves[anchor], curves[codec], quantity, self.cfg.get("bd_method", "pchip"))
        if got is None:
            return None
        value, warns = got
        flag = f"; warning: {'; '.join(warns)}" if warns else ""
        return Measured(value, f"computed by the report from RD means in results/rd/{ds}/ (no CI{flag})")

    def measured_complexity(self, model: str, col: str, unit: str) -> Measured | None:
        row = self.complexity.get(model)
        if not row:
            return None
        key = complexity_key(row, col)
        if key is None or not isinstance(row[key], (int, float)):
            return None
        value = float(row[key])
        value /= UNIT_SCALE.get(unit, 1.0) if col in ("params", "flops") else 1.0
        if col in ("enc_s", "dec_s") and unit == "ms":
            value *= 1e3
        if col == "memory":  # the key's suffix names our unit; convert to the claim's MB/GB
            ours = {"_mb": 2**20, "_gb": 2**30, "_bytes": 1, "_b": 1}.get(next((x for x in ("_mb", "_gb", "_bytes", "_b") if key.lower().endswith(x)), ""), None)
            want = {"MB": 2**20, "GB": 2**30, "B": 1}.get(unit)
            if ours and want:
                value = value * ours / want
        return Measured(value, f"results/complexity/{model}.json:{key}")

    def measured_oa(self, claim: loaders.Claim) -> Measured | None:
        for r in self.downstream.get(claim.dataset or "", []):
            names = {r.name, r.name.split("/")[-1], str(r.extra.get("codec", "")), str(r.extra.get("name", ""))}
            if claim.subject in names and r.oa is not None:
                v = r.oa * 100 if claim.unit == "%" and r.oa <= 1 else r.oa
                return Measured(v, f"results/downstream/{r.ds}/{r.name}")
        return None


def complexity_key(row: dict[str, Any], col: str) -> str | None:
    """The first (sorted) flattened key whose last segment contains one of the column's markers."""
    for key in sorted(row):
        last = key.split(".")[-1].lower()
        if col == "enc_s" and "dec" in last:
            continue
        if any(m in last for m in COMPLEXITY_FIELDS[col]) and isinstance(row[key], (int, float)) and not isinstance(row[key], bool):
            return key
    return None


def bd_between(anchor: list[loaders.RatePoint], test: list[loaders.RatePoint], quantity: str, method: str) -> tuple[float, list[str]] | None:
    """BD of `test` vs `anchor` over the mean RD points of fixed-quality rate points, with the
    suite's own BD code (rsicbench.metrics.bd); (value, warnings), or None when undefined."""
    from rsicbench.metrics import bd

    col, kind = BD_QUANTITIES[quantity]

    def pts(curve):
        xy = [(p.mean("bpp"), p.mean(col)) for p in curve if p.summary.get("target_bpp") is None]
        xy = sorted((x, y) for x, y in xy if np.isfinite(x) and np.isfinite(y) and x > 0)
        return np.array([x for x, _ in xy]), np.array([y for _, y in xy])

    ra, da = pts(anchor)
    rt, dt = pts(test)
    fn = bd.bd_rate if kind == "rate" else bd.bd_psnr
    res = fn(ra, da, rt, dt, method=method)
    if not math.isfinite(res.value):
        return None
    return float(res.value), list(res.warnings)
