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
# complexity column -> the keys reproduce/papers/complexity.py writes (flattened, first present wins);
# memory: CUDA peak when measured on a GPU, else the process RSS growth (includes tensors)
COMPLEXITY_KEYS = {
    "params": ("params.total",),
    "flops": ("flops",),
    "enc_s": ("timing.encode_s",),
    "dec_s": ("timing.decode_s",),
    "memory": ("timing.cuda_max_memory_allocated_bytes", "timing.ru_maxrss_delta_kib"),
}
# fallback for other shapes: substrings that identify a column in a flattened key
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
    # the measurement does not depend on the profile (architecture counts at the papers' config)
    profile_free: bool = False
    # why it cannot be compared with the claim even at the paper profile (other dataset ...)
    mismatch: str = ""


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

    def rd(self, ds: str) -> dict[str, list[loaders.RDPoint]]:
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
    def downstream(self) -> dict[str, loaders.DownstreamRun]:
        return loaders.load_downstream(self.results)

    @cached_property
    def ablation(self) -> dict[str, dict[str, Any]]:
        return loaders.load_ablation(self.results)

    @cached_property
    def fidelity(self) -> list[dict[str, Any]] | None:
        return loaders.load_fidelity(self.results)

    @cached_property
    def papers_cfg(self) -> dict[str, Any]:
        """configs/papers.yaml (variants, fidelity entries) of this project, for the active profile."""
        from rsicbench.config import settings
        from rsicbench.paths import project_root

        root = self.root if (self.root / "configs" / "papers.yaml").is_file() else project_root()
        return settings("papers", self.profile, root)

    def alias(self, subject: str) -> str:
        """Our codec/model name for a paper's subject (configs/report.yaml `subject_aliases`)."""
        return str((self.cfg.get("subject_aliases") or {}).get(subject, subject))

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
        if q in ("params", "flops"):
            got = self.measured_fidelity(claim)
            if got is not None:
                return got
        if ":" in claim.subject:  # "<family>:<variant>" (an ablation row) or "<block>:<name>"
            return self.measured_ablation(claim) if (q in BD_QUANTITIES or q == "params") else None
        # the subject under its own name first, then as a real external tool (configs/external.yaml,
        # e.g. ext-bpg), then under our name for it (subject_aliases, e.g. the hevc stand-in)
        for subject in dict.fromkeys((claim.subject, f"ext-{claim.subject}", self.alias(claim.subject))):
            anchor = claim.anchor or ANCHOR
            if q in BD_QUANTITIES or q.startswith("bd_"):
                got = self.measured_bd(claim.dataset, subject, anchor if anchor in (self.rd(claim.dataset or "") or {}) or anchor == ANCHOR
                                       else self.alias(anchor), q)
            elif q == "oa":
                got = self.measured_oa(claim, subject)
            elif q in CLAIM_COMPLEXITY:
                got = self.measured_complexity(subject, CLAIM_COMPLEXITY[q], claim.unit, q)
            else:
                return None
            if got is not None:
                if subject != claim.subject:
                    got.source = f"as our {subject}: {got.source}"
                return got
        return None

    def measured_fidelity(self, claim: loaders.Claim) -> Measured | None:
        """params/FLOPs of the model or block that configs/papers.yaml `fidelity:` builds for this
        claim (results/fidelity.json), at the papers' configuration: independent of the profile.
        Two counting conventions are measured; the one the paper's table uses (configs/report.yaml
        `fidelity_convention`, fixed per table, never chosen by closeness) is compared, the other shown."""
        if not self.fidelity:
            return None
        stem = claim.file.stem
        entries = [e for e in (self.papers_cfg.get("fidelity") or [])
                   if e.get(f"claim_{claim.quantity}") == f"{stem}:{claim.id}"]
        for e in entries:  # the first configured entry for the claim (the released configuration)
            row = next((r for r in self.fidelity if r.get("table") == e.get("table") and r.get("name") == e.get("name")), None)
            if row is None:
                continue
            keys = ("params", "params_thop") if claim.quantity == "params" else ("flops", "macs_thop")
            scale = UNIT_SCALE.get(claim.unit, 1.0)
            vals = {k: float(row[k]) / scale for k in keys if isinstance(row.get(k), (int, float))}
            conv = next((c for t, c in (self.cfg.get("fidelity_convention") or {}).items()
                         if str(row.get("table", "")).startswith(t)), {})
            k = conv.get(claim.quantity)
            if k not in vals:
                continue
            others = ", ".join(f"{kk} {vals[kk]:.4g}" for kk in keys if kk in vals and kk != k)
            return Measured(vals[k], f"results/fidelity.json: {row['table']} / {row['name']}, {k}"
                            + (f" (other convention: {others})" if others else ""), profile_free=True)
        return None

    def measured_ablation(self, claim: loaders.Claim) -> Measured | None:
        """A `<family>:<variant>` claim from results/ablation/<paper>.json (BD vs the family's baseline)."""
        family, variant = claim.subject.split(":", 1)
        name = f"{family}-{variant}"
        for paper, table in sorted(self.ablation.items()):
            row = next((r for r in table.get("rows", []) if r.get("variant") == name), None)
            if row is None:
                continue
            ds = Path(str(table.get("rd_root", ""))).name or "?"
            if claim.quantity == "params":
                v = row.get("params")
                if not isinstance(v, (int, float)):
                    return None
                return Measured(float(v) / UNIT_SCALE.get(claim.unit, 1.0),
                                f"results/ablation/{paper}.json: {name} as trained at profile {table.get('profile')}")
            bd = row.get(claim.quantity if claim.quantity != "bd_rate" else "bd_rate_psnr")
            if not isinstance(bd, dict) or bd.get("value") is None:
                return None
            why = f"paper on {claim.dataset}, ours on {ds}" if claim.dataset and claim.dataset != ds else ""
            warn = f"; warning: {'; '.join(map(str, bd.get('warnings')))}" if bd.get("warnings") else ""
            boot = row.get("bd_rate_psnr_ci") if claim.quantity in ("bd_rate", "bd_rate_psnr") else None
            ci = ((float(boot["ci_low"]), float(boot["ci_high"])) if isinstance(boot, dict) and boot.get("computable")
                  else None)  # the paired-bootstrap CI (reproduce/evaluation/paired_bd.py)
            return Measured(float(bd["value"]), f"results/ablation/{paper}.json: {name} vs {row.get('anchor')} on {ds}{warn}",
                            ci, mismatch=why)
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

    def measured_complexity(self, model: str, col: str, unit: str, quantity: str = "") -> Measured | None:
        row = self.complexity.get(model)
        if not row:
            return None
        key = complexity_key(row, col)
        if key is None or not isinstance(row[key], (int, float)):
            return None
        if quantity == "gpu_memory" and "cuda" not in key:
            return None  # a CPU RSS figure is not the papers' GPU memory
        value = float(row[key])
        value /= UNIT_SCALE.get(unit, 1.0) if col in ("params", "flops") else 1.0
        if col in ("enc_s", "dec_s") and unit == "ms":
            value *= 1e3
        if col == "memory":  # the key's suffix names our unit; convert to the claim's MB/GB
            suffix = next((x for x in ("_mb", "_gb", "_kib", "_bytes", "_b") if key.lower().endswith(x)), "")
            ours = {"_mb": 2**20, "_gb": 2**30, "_kib": 2**10, "_bytes": 1, "_b": 1}.get(suffix)
            want = {"MB": 2**20, "GB": 2**30, "B": 1}.get(unit)
            if ours and want:
                value = value * ours / want
        return Measured(value, f"results/complexity/{model}.json:{key}")

    def measured_oa(self, claim: loaders.Claim, subject: str) -> Measured | None:
        """An `oa` claim: the clean classifier (subject `original`/`clean`) or a codec's OA at the
        claim's rate (`note`/`bpp` not parsed: the OA at 0.70 bpp, the first target)."""
        run = self.downstream.get(claim.dataset or "")
        if run is None or run.summary is None:
            return None
        if subject in ("original", "clean"):
            oa = (run.summary.get("clean") or {}).get("oa")
            return None if oa is None else Measured(float(oa), f"results/downstream/{run.ds}/summary.json: clean")
        at = ((run.summary.get("codecs") or {}).get(subject) or {}).get("at_target") or {}
        for t, a in sorted(at.items()):
            if a and a.get("oa") is not None:
                return Measured(float(a["oa"]), f"results/downstream/{run.ds}/summary.json: {subject} at {t} bpp ({a.get('method')})")
        return None


def complexity_key(row: dict[str, Any], col: str) -> str | None:
    """The key of `col` in a flattened results/complexity row: the producer's own key
    (COMPLEXITY_KEYS), else the first (sorted) key whose last segment names the column."""
    for key in COMPLEXITY_KEYS[col]:
        if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool):
            return key
    for key in sorted(row):
        last = key.split(".")[-1].lower()
        if col == "enc_s" and "dec" in last:
            continue
        if any(m in last for m in COMPLEXITY_FIELDS[col]) and isinstance(row[key], (int, float)) and not isinstance(row[key], bool):
            return key
    return None


def bd_between(anchor: list[loaders.RDPoint], test: list[loaders.RDPoint], quantity: str, method: str) -> tuple[float, list[str]] | None:
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
