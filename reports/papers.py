"""Sections that put our numbers beside the papers': ablations, complexity, downstream, claims.

Verdict rule (docs/report.md): a claim is
  * "not comparable at this profile" when the profile is not `paper`, or when we have no
    measurement for its dataset/setting (the stage did not run, or the pipeline does not
    measure that setting);
  * otherwise "reproduced" when |ours - claimed| <= the tolerance for its quantity
    (configs/report.yaml `tolerance:`; relative tolerances for params/FLOPs/time/memory),
    else "not reproduced".
"""

from __future__ import annotations

import math

from rsicbench.reports import plots
from rsicbench.reports.context import ANCHOR, CLAIM_COMPLEXITY, COMPLEXITY_FIELDS, Context, complexity_key
from rsicbench.reports.htmlutil import Section, esc, fmt, missing, note, profile_tag, table
from rsicbench.reports.loaders import Claim

REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE = "reproduced", "not reproduced", "not comparable at this profile"


def tolerance_for(cfg: dict, quantity: str) -> tuple[float, bool]:
    """(tolerance, relative?) for a quantity: exact key, else longest matching prefix, else `default`."""
    tol = cfg.get("tolerance") or {}
    if quantity in tol:
        spec = tol[quantity]
    else:
        keys = sorted((k for k in tol if k != "default" and quantity.startswith(k)), key=len, reverse=True)
        spec = tol[keys[0]] if keys else tol.get("default", {"relative": 0.05})
    if isinstance(spec, dict):
        if "relative" in spec:
            return float(spec["relative"]), True
        return float(spec.get("absolute", 0.0)), False
    return float(spec), False


def verdict(ctx: Context, claim: Claim, ours) -> tuple[str, str]:
    """(verdict, why)."""
    if claim.value is None:
        return NOT_COMPARABLE, "qualitative claim (no number to compare)"
    if ctx.profile != "paper":
        return NOT_COMPARABLE, f"profile {ctx.profile} ≠ paper"
    if ours is None or ours.value is None or math.isnan(ours.value):
        return NOT_COMPARABLE, "setting not measured in this run"
    tol, relative = tolerance_for(ctx.cfg, claim.quantity)
    diff = abs(ours.value - claim.value)
    limit = tol * abs(claim.value) if relative else tol
    how = f"|Δ| = {fmt(diff)} vs tolerance {fmt(limit)}" + (f" ({tol:.0%} of claim)" if relative else "")
    return (REPRODUCED if diff <= limit else NOT_REPRODUCED), how


def _verdict_cell(v: str, why: str) -> str:
    cls = {REPRODUCED: "ok", NOT_REPRODUCED: "bad"}.get(v, "na")
    return f'<span class="verdict {cls}">{esc(v)}</span><br><span class="iqr">{esc(why)}</span>'


def _ours_cell(ours) -> str:
    if ours is None:
        return "—"
    ci = f'<span class="iqr"> [{fmt(ours.ci[0], 2)}, {fmt(ours.ci[1], 2)}]</span>' if ours.ci else ""
    return f'{fmt(ours.value)}{ci}<br><span class="iqr">{esc(ours.source)}</span>'


# ---------------------------------------------------------------- claims


def _claimed_cell(c: Claim) -> str:
    if c.value is None:
        return f'<span class="iqr">qualitative:</span> {esc(c.text)} {esc(c.unit)}<br><span class="iqr">{esc(c.note)}</span>'
    note_txt = f'<br><span class="iqr">{esc(c.note)}</span>' if c.note else ""
    return f"{fmt(c.value)} {esc(c.unit)}{note_txt}"


def section_claims(ctx: Context) -> Section:
    if not ctx.claims:
        return Section("claims", "Paper claims: claimed vs ours", missing("(paper claims files)", ctx.claims_dir / "<paper>.yaml"), False)
    counts = {REPRODUCED: 0, NOT_REPRODUCED: 0, NOT_COMPARABLE: 0}
    parts = []
    for paper, claims in sorted(ctx.claims.items()):
        rows = []
        for c in claims:
            ours = ctx.measured_for(c)
            v, why = verdict(ctx, c, ours)
            counts[v] += 1
            rows.append([f"<code>{esc(c.id)}</code>", esc(c.ref), esc(c.dataset or "—"), f"<code>{esc(c.quantity)}</code>",
                         esc(c.subject) + (f" vs {esc(c.anchor)}" if c.anchor else ""), _claimed_cell(c),
                         _ours_cell(ours), esc(ctx.profile), _verdict_cell(v, why)])
        parts.append(f"<h3>{esc(paper)}</h3>")
        parts.append(table(["claim", "where", "dataset", "quantity", "subject", "claimed", "ours", "profile", "verdict"],
                           rows, caption=f"{esc(paper)}, ours at {profile_tag(ctx.profile)}"))
    summary = ", ".join(f"{fmt(n)} {esc(k)}" for k, n in counts.items())
    return Section("claims", "Paper claims: claimed vs ours",
                   note(f"Verdicts: {summary}. Rule: see docs/report.md (tolerances in configs/report.yaml).") + "".join(parts), True)


# ---------------------------------------------------------------- ablations


def _paper_codecs(ctx: Context, paper: str, ds: str) -> list[str]:
    pre = ctx.paper_prefixes(paper)
    return sorted(c for c in ctx.rd(ds) if any(c.lower().startswith(p) for p in pre))


def section_ablation(ctx: Context) -> Section:
    papers = sorted(set(ctx.claims) | set((ctx.cfg.get("papers") or {})))
    if not papers:
        return Section("ablation", "Ablations per paper", missing("(paper claims files)", ctx.claims_dir / "<paper>.yaml"), False)
    parts = [note(f"Per paper: each variant's BD against the paper's own baseline (as the paper's ablation table), "
                  f"beside the paper's number; variants without a paper number show their BD vs {ANCHOR}.")]
    produced = False
    for paper in papers:
        claims = [c for c in ctx.claims.get(paper, []) if c.quantity.startswith("bd_") and c.anchor and c.anchor != ANCHOR]
        rows = []
        covered = set()
        for c in claims:
            ours = ctx.measured_bd(c.dataset, c.subject, c.anchor, c.quantity)
            produced |= ours is not None
            covered.add((c.dataset, c.subject))
            rows.append([esc(c.dataset or "—"), esc(c.subject), esc(c.anchor), f"<code>{esc(c.quantity)}</code>",
                         f"{fmt(c.value)} {esc(c.unit)} <span class='iqr'>({esc(c.ref)})</span>", _ours_cell(ours)])
        for ds in ctx.rd_names:
            for codec in _paper_codecs(ctx, paper, ds):
                if (ds, codec) in covered:
                    continue
                bd_rows = [r for r in (ctx.bd(ds) or []) if r.codec == codec and r.anchor == ANCHOR]
                if not bd_rows:
                    rows.append([esc(ds), esc(codec), esc(ANCHOR), "—", "—", missing("bd", f"results/bd/{ds}.json row {codec}")])
                    continue
                produced = True
                for q, v in sorted(bd_rows[0].values.items()):
                    ci = bd_rows[0].ci.get(q)
                    rows.append([esc(ds), esc(codec), esc(ANCHOR), f"<code>{esc(q)}</code>", "—",
                                 fmt(v) + (f'<span class="iqr"> [{fmt(ci[0], 2)}, {fmt(ci[1], 2)}]</span>' if ci else "")])
        parts.append(f"<h3>{esc(paper)} {profile_tag(ctx.profile)}</h3>")
        if rows:
            parts.append(table(["dataset", "variant", "vs", "quantity", "paper", "ours"], rows,
                               caption=f"{esc(paper)} ablation, ours at {profile_tag(ctx.profile)}"))
        else:
            parts.append(missing(f"{paper} training / evaluation", f"results/rd/<ds>/{ctx.paper_prefixes(paper)[0]}*"))
    return Section("ablation", "Ablations per paper", "".join(parts), produced)


# ---------------------------------------------------------------- complexity

COMPLEXITY_HEAD = {"params": "params", "flops": "FLOPs/MACs", "enc_s": "encode", "dec_s": "decode", "memory": "memory"}


def section_complexity(ctx: Context) -> Section:
    claims = [c for cs in ctx.claims.values() for c in cs if c.quantity in CLAIM_COMPLEXITY]
    if not ctx.complexity and not claims:
        return Section("complexity", "Complexity", missing("complexity", ctx.results / "complexity" / "<model>.json"), False)
    parts = []
    if ctx.complexity:
        rows = []
        for model, row in sorted(ctx.complexity.items()):
            cells = [esc(model)]
            for col in COMPLEXITY_FIELDS:
                key = complexity_key(row, col)
                cells.append("—" if key is None else f'{fmt(row[key])}<br><span class="iqr">{esc(key)}</span>')
            others = "".join(f"<li><code>{esc(k)}</code>: {fmt(v) if isinstance(v, (int, float)) else esc(v)}</li>" for k, v in sorted(row.items()))
            cells.append(f"<details><summary>all fields</summary><ul>{others}</ul></details>")
            rows.append(cells)
        parts.append(table(["model"] + list(COMPLEXITY_HEAD.values()) + ["details"], rows,
                           caption=f"measured, {profile_tag(ctx.profile)} (units as written in results/complexity; key under each value)"))
    else:
        parts.append(missing("complexity", ctx.results / "complexity" / "<model>.json"))
    if claims:
        rows = []
        for c in claims:
            ours = ctx.measured_for(c)
            rows.append([esc(c.paper), esc(c.subject), f"<code>{esc(c.quantity)}</code>",
                         f"{fmt(c.value)} {esc(c.unit)} <span class='iqr'>({esc(c.ref)})</span>", _ours_cell(ours)])
        parts.append("<h3>Beside the papers' tables</h3>")
        parts.append(table(["paper", "model", "quantity", "paper", "ours (same unit)"], rows,
                           caption=f"ours at {profile_tag(ctx.profile)}; timings depend on the machine (see provenance)"))
    return Section("complexity", "Complexity", "".join(parts), bool(ctx.complexity))


# ---------------------------------------------------------------- downstream


def section_downstream(ctx: Context) -> Section:
    if not ctx.downstream:
        return Section("downstream", "Downstream classification", missing("classify", ctx.results / "downstream" / "<ds>"), False)
    max_cm = int(ctx.cfg.get("max_confusion_matrices", 6))
    parts = []
    for ds, items in sorted(ctx.downstream.items()):
        parts.append(f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>")
        extra_keys = sorted({k for r in items for k in r.extra if k not in ("name",)})[:6]
        rows = [[esc(r.name), fmt(r.oa)] + [fmt(r.extra.get(k)) if not isinstance(r.extra.get(k), str) else esc(r.extra[k]) for k in extra_keys]
                for r in items if r.oa is not None]
        if rows:
            parts.append(table(["result", "OA"] + [esc(k) for k in extra_keys], rows,
                               caption=f"overall accuracy, {esc(ds)}, {profile_tag(ctx.profile)}", cls="num"))
        oa_claims = [c for cs in ctx.claims.values() for c in cs if c.quantity.startswith("oa") and c.dataset == ds]  # oa and oa_gain
        if oa_claims:
            crow = [[esc(c.paper), esc(c.subject), f"{fmt(c.value)} {esc(c.unit)} ({esc(c.ref)})", _ours_cell(ctx.measured_for(c))] for c in oa_claims]
            parts.append(table(["paper", "subject", "paper OA", "ours"], crow, caption="beside the papers"))
        cms = [r for r in items if r.confusion is not None]
        for r in cms[:max_cm]:
            parts.append(f'<div class="plot cm">{plots.confusion_figure(r.confusion, r.classes, f"{ds}: {r.name} ({ctx.profile})")}</div>')
        if len(cms) > max_cm:
            parts.append(note(f"{len(cms) - max_cm} more confusion matrices are in <code>results/downstream/{esc(ds)}/</code> "
                              "(report.yaml <code>max_confusion_matrices</code> limits the file size)."))
    return Section("downstream", "Downstream classification", "".join(parts), True)
