"""Per-paper ablation tables: each variant vs ITS paper's baseline variant, beside the claims.

Input (the engine's RD layout, docs/architecture.md):
    results/rd/<ds>/<model>/q<i>/summary.json   (mean bpp, psnr, describe.arch ...)
where <model> = `<family>-<variant>` (configs/papers.yaml variants; reproduce/models/variants.py)
and q<i> = the rate tags that were evaluated. Output: results/ablation/<paper>.json.

Per variant: its module switches, the rate points found, BD-rate (PSNR) and BD-PSNR vs the
family's `baseline` variant (rsicbench.metrics.bd: pchip, negative BD-rate = fewer bits), the
parameter count of the model as evaluated (arch from the summary), and the paper's claimed
numbers for that variant (claims/<paper>.yaml, subject `<family>:<variant>`). A BD that
cannot be computed (fewer than 2 rate points, non-monotonic curve, missing run) is reported
as value null with `valid: false` and the reasons - never silently dropped.
`bd_rate_psnr_ci`: the paired-bootstrap interval of that BD-rate over the images both curves
share (reproduce/evaluation/paired_bd.py). Each RD point carries the `budget` its summary
records (steps, crop, width, source).

Seed controls (a row with `seed_offset`, rsicbench.config): the family baseline retrained with
another seed, `role: "seed control"`. The bootstrap interval covers the choice of images, not
training noise, so the family's `seed_gap` = the largest |BD-rate| of its seed controls against
the baseline is the yardstick of training noise. A module variant's `difference`:
"no difference measured" when its interval includes 0; "within seed noise" when it excludes 0
but its bound nearest 0 lies within ±seed_gap (the difference is not larger than the baseline's
own difference from itself); otherwise the interval's direction ("test needs fewer/more bits").
Without a computable seed control the seed step is skipped and the family's `seed_gap` says why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rsicbench import results
from rsicbench.claims import read_claims
from rsicbench.config import seed_offset

#: paper -> (claims file stem, variant families whose ablations it reports)
PAPERS = {"ltchm": ("ltchm", ["ltchm"]), "mgss": ("mgssnet", ["mgss", "mgss_factorized"]),
          "dmenet": ("dmenet", ["dmenet"])}
BASELINE = "baseline"
SEED_CONTROL = "seed control"
WITHIN_SEED_NOISE = "within seed noise"
_ROLE_ORDER = {"baseline": 0, SEED_CONTROL: 1, "module variant": 2}  # table order within a family


def read_points(rd_root: Path, model: str) -> tuple[list[dict], list[str]]:
    """Mean RD points (sorted by bpp) of every q<i> of `model`; plus problems found."""
    d = rd_root / model
    points, problems = [], []
    if not d.is_dir():
        return [], [f"{d}: no RD results (variant not evaluated)"]
    for _, tag, folder in results.point_dirs(rd_root.parent, rd_root.name, model):
        if not tag.startswith("q"):
            continue  # matched-rate points (bpp<t>) are not on the RD curve
        s = folder / results.SUMMARY
        js = results.read_summary(s)
        bpp, psnr = js["mean"].get("bpp"), js["mean"].get("psnr")
        if js.get("n_ok", 0) == 0 or bpp is None or psnr is None:
            problems.append(f"{s}: no successfully coded image")
            continue
        points.append({"qtag": js.get("qtag", s.parent.name), "bpp": float(bpp), "psnr": float(psnr),
                       "n_ok": int(js.get("n_ok", 0)), "arch": (js.get("describe") or {}).get("arch"),
                       "lambda_compressai": (js.get("describe") or {}).get("lambda_compressai"),
                       "budget": point_budget(js.get("describe") or {})})
    points.sort(key=lambda p: p["bpp"])
    return points, problems


def _bd(kind: str, anchor: list[dict], test: list[dict]) -> dict:
    from rsicbench.metrics.bd import bd_psnr, bd_rate

    fn = bd_rate if kind == "rate" else bd_psnr
    r = fn([p["bpp"] for p in anchor], [p["psnr"] for p in anchor],
           [p["bpp"] for p in test], [p["psnr"] for p in test]).as_dict()
    if r["value"] is not None and isinstance(r["value"], float) and math.isnan(r["value"]):
        r["value"] = None
    if isinstance(r.get("overlap"), float) and math.isnan(r["overlap"]):
        r["overlap"] = None
    return r


def point_budget(describe: dict) -> dict | None:
    """The training budget a learned point's summary records (None for a non-learned codec)."""
    if not describe.get("source"):
        return None
    train = describe.get("train") or {}
    return {"source": describe.get("source"), "arch": describe.get("arch"), "steps": train.get("steps"),
            "patch": train.get("patch"), "batch": train.get("batch"), "checkpoint_step": describe.get("step")}


def _unavailable(reason: str) -> dict:
    return {"value": None, "valid": False, "warnings": [reason]}


def count_params(model: str, arch: dict | None) -> int | None:
    if arch is None:
        return None
    from rsicbench.reproduce.models.registry import create_model

    net = create_model(model, **arch)
    return int(sum(p.numel() for p in net.parameters()))


def paper_claims(claims: list[dict], family: str, variant: str) -> list[dict]:
    subject = f"{family}:{variant}"
    keep = ("id", "ref", "quantity", "value", "unit", "dataset", "note")
    return [{k: c[k] for k in keep if k in c} for c in claims if c.get("subject") == subject]


def _role(variant: str, switches: dict) -> str:
    return "baseline" if variant == BASELINE else SEED_CONTROL if seed_offset(switches) else "module variant"


def seed_gap(rows: list[dict]) -> dict:
    """A family's training-noise yardstick from its seed-control rows (module docstring)."""
    controls = [r for r in rows if r["role"] == SEED_CONTROL]
    measured = [(abs(r["bd_rate_psnr"]["value"]), r["variant"]) for r in controls
                if r["bd_rate_psnr"].get("value") is not None]
    if not measured:
        why = ("no seed-control row (configs/papers.yaml: the baseline's switches + seed_offset)" if not controls else
               "; ".join(f"{r['variant']}: " + "; ".join(map(str, r["bd_rate_psnr"].get("warnings") or ["no BD-rate"]))
                         for r in controls))
        return {"value": None, "controls": [r["variant"] for r in controls], "reason": why}
    value, worst = max(measured)
    return {"value": value, "controls": [r["variant"] for r in controls], "largest": worst, "reason": None}


def seed_verdict(ci: dict | None, gap: float | None) -> str | None:
    """The images' verdict (paired_bd.difference), demoted to WITHIN_SEED_NOISE when the interval's
    bound nearest 0 lies within ±gap (a difference no larger than the baseline's from itself)."""
    from rsicbench.reproduce.evaluation.paired_bd import NO_DIFFERENCE

    d = (ci or {}).get("difference")
    if d is None or d == NO_DIFFERENCE or gap is None:
        return d
    near = ci["ci_high"] if ci["ci_high"] < 0 else ci["ci_low"]
    return WITHIN_SEED_NOISE if abs(near) <= gap else d


def ablation_table(paper: str, variants: dict[str, dict], rd_root: Path, claims_path: Path,
                   profile: str, with_params: bool = True, boot: dict | None = None) -> dict[str, Any]:
    """The ablation table of one paper (see module docstring). `variants`: papers.yaml `variants`
    (rows `<family>-<variant>: switches`); `boot`: bootstrap settings (configs/eval.yaml `bootstrap`)."""
    from rsicbench.config import variants_by_family
    from rsicbench.reproduce.evaluation.paired_bd import paired_bd_ci

    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; choose one of {', '.join(PAPERS)}")
    claims = read_claims(claims_path).claims
    rows, seed_gaps = [], {}
    by_family = variants_by_family(variants)
    for family in PAPERS[paper][1]:
        table = by_family.get(family)
        if not table or BASELINE not in table:
            raise ValueError(f"configs/papers.yaml: variants needs a `{family}-{BASELINE}` row")
        anchor_name = f"{family}-{BASELINE}"
        anchor, anchor_problems = read_points(rd_root, anchor_name)
        family_rows = []
        for var in sorted(table, key=lambda v: (_ROLE_ORDER[_role(v, table[v])], v)):
            name = f"{family}-{var}"
            pts, problems = read_points(rd_root, name)
            if var == BASELINE:
                bdr = bdp = _unavailable("the anchor itself")
            elif not anchor:
                bdr = bdp = _unavailable("; ".join(anchor_problems) or f"{anchor_name}: no RD points")
            elif not pts:
                bdr = bdp = _unavailable("; ".join(problems) or f"{name}: no RD points")
            else:
                bdr, bdp = _bd("rate", anchor, pts), _bd("quality", anchor, pts)
            ci = (paired_bd_ci(rd_root.parent, rd_root.name, anchor_name, name, boot)
                  if var != BASELINE and anchor and pts else None)
            arch = next((p["arch"] for p in pts if p.get("arch")), None)
            family_rows.append({
                "variant": name, "family": family, "role": _role(var, table[var]), "modules": dict(table[var]),
                "anchor": anchor_name, "rd_points": pts, "problems": problems,
                "bd_rate_psnr": bdr, "bd_psnr": bdp, "bd_rate_psnr_ci": ci,
                "difference": (ci or {}).get("difference"),
                "params": count_params(name, arch) if with_params else None, "arch": arch,
                "paper_claims": paper_claims(claims, family, var),
            })
        gap = seed_gap(family_rows)
        for r in family_rows:
            r["seed_gap"] = gap["value"]
            if r["role"] == "module variant":
                r["difference"] = seed_verdict(r["bd_rate_psnr_ci"], gap["value"])
            elif r["role"] == SEED_CONTROL:
                r["difference"] = SEED_CONTROL
        seed_gaps[family] = gap
        rows += family_rows
    return {"paper": paper, "profile": profile, "rd_root": str(rd_root), "claims": str(claims_path),
            "bd_method": "pchip (rsicbench.metrics.bd), rate = bpp, quality = PSNR (dB)",
            "anchor_rule": "each family's `baseline` variant",
            "bootstrap": "paired over the images both curves share (reproduce/evaluation/paired_bd.py)",
            "seed_gap": seed_gaps,
            "seed_rule": (f"{WITHIN_SEED_NOISE!r}: the interval excludes 0 but its bound nearest 0 lies within "
                          "±seed_gap, the largest |BD-rate| of the family's seed controls (its baseline retrained "
                          "with another seed) against the baseline"), "rows": rows}
