"""Sections that put our numbers beside the papers': ablations, complexity, downstream, claims.

Verdict rule (docs/report.md): a claim is
  * "not comparable at this profile" when the profile is not `paper`, or when we have no
    measurement for its dataset/setting (the stage did not run, or the pipeline does not
    measure that setting);
  * otherwise "reproduced" when |ours - claimed| <= the tolerance for its quantity
    (configs/report.yaml `tolerance:`; relative tolerances for params/FLOPs/time/memory),
    else "not reproduced";
  * then qualified (docs/report.md "Learned rows"): a quality/rate claim resting on a model
    that is undertrained (below JPEG at every rate) is "not comparable" and says so; an
    ablation BD-rate whose paired-bootstrap CI includes 0 says "no difference measured", one
    whose CI reaches within the family's seed gap "within seed noise";
    a `train_steps` claim is a setting (the budget fraction's denominator), never a result.
"""

from __future__ import annotations

import math
from pathlib import Path

from rsicbench.config import seed_offset
from rsicbench.reports.budget import budget_cell, claim_models, claim_undertrained, learned_status, undertrained_note
from rsicbench.reports.context import ANCHOR, CLAIM_COMPLEXITY, COMPLEXITY_FIELDS, Context, complexity_key
from rsicbench.reports.htmlutil import Section, esc, fmt, missing, note, profile_tag, table
from rsicbench.reports.htmlutil import table as table_html
from rsicbench.reports.loaders import Claim
# the ablation file's own words, from its producer (reports sit above reproduce/papers: tests/test_layers.py)
from rsicbench.reproduce.evaluation.paired_bd import NO_DIFFERENCE
from rsicbench.reproduce.papers.ablation import SEED_CONTROL, WITHIN_SEED_NOISE

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


# claims whose number depends on how well a model trained (not architecture counts or settings)
TRAINING_DEPENDENT = ("bd_", "psnr", "oa", "roi_psnr", "msssim")


def verdict(ctx: Context, claim: Claim, ours) -> tuple[str, str]:
    """(verdict, why), qualified by the learned-row rules (module docstring)."""
    if claim.quantity == "train_steps":
        return NOT_COMPARABLE, "a training setting (the denominator of the learned rows' budget fraction), not a result"
    v, why = _verdict(ctx, claim, ours)
    if not claim.quantity.startswith(TRAINING_DEPENDENT):
        return v, why
    under = claim_undertrained(ctx, claim.subject)
    if under:
        v, why = NOT_COMPARABLE, f"{under}: says nothing about the method; {why}"
    row = _ablation_row_of(ctx, claim) or {}
    ci = row.get("bd_rate_psnr_ci")
    if ci and ci.get("difference") == NO_DIFFERENCE:
        why += (f"; ours: {NO_DIFFERENCE} (paired-bootstrap {ci['ci']:.0%} CI [{fmt(ci['ci_low'], 2)}, "
                f"{fmt(ci['ci_high'], 2)}] % includes 0, {ci['n_images']} images)")
    elif ci and row.get("difference") == WITHIN_SEED_NOISE:
        why += (f"; ours: {WITHIN_SEED_NOISE} (CI [{fmt(ci['ci_low'], 2)}, {fmt(ci['ci_high'], 2)}] % reaches "
                f"within ±{fmt(row.get('seed_gap'), 2)} %, the baseline's BD-rate against itself retrained "
                f"with another seed)")
    return v, why


def _ablation_row_of(ctx: Context, claim: Claim) -> dict | None:
    """Our ablation row (with its bootstrap CI) for a `<family>:<variant>` BD-rate claim (results/ablation)."""
    if ":" not in claim.subject or claim.quantity not in ("bd_rate", "bd_rate_psnr"):
        return None
    name = "-".join(claim.subject.split(":", 1))
    for abl in ctx.ablation.values():
        for r in abl.get("rows", []):
            if r.get("variant") == name and isinstance(r.get("bd_rate_psnr_ci"), dict):
                return r
    return None


def _claim_budget(ctx: Context, claim: Claim) -> str:
    """The budget of the learned models a claim rests on, on the claim's dataset when measured there."""
    cells = []
    for m in claim_models(ctx, claim.subject):
        for ds in dict.fromkeys([claim.dataset or "", *ctx.rd_names]):
            if ds in ctx.rd_names and learned_status(ctx, ds, m)[0] is not None:
                cells.append(f"<b>{esc(m)}</b> ({esc(ds)}): {budget_cell(ctx, ds, m)}")
                break
    return "<br>".join(cells) or "—"


def _verdict(ctx: Context, claim: Claim, ours) -> tuple[str, str]:
    if claim.value is None:
        return NOT_COMPARABLE, "qualitative claim (no number to compare)"
    if ours is None or ours.value is None or math.isnan(ours.value):
        why = "setting not measured in this run"
        return NOT_COMPARABLE, why + (f"; profile {ctx.profile} ≠ paper" if ctx.profile != "paper" else "")
    if ours.mismatch:
        return NOT_COMPARABLE, ours.mismatch
    if ctx.profile != "paper" and not ours.profile_free:
        return NOT_COMPARABLE, f"profile {ctx.profile} ≠ paper"
    tol, relative = tolerance_for(ctx.cfg, claim.quantity)
    diff = abs(ours.value - claim.value)
    limit = tol * abs(claim.value) if relative else tol
    how = f"|Δ| = {fmt(diff)} vs tolerance {fmt(limit)}" + (f" ({tol:.0%} of claim)" if relative else "")
    if ours.profile_free and ctx.profile != "paper":
        how += "; architecture count at the paper's configuration, valid at any profile"
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
                         _ours_cell(ours), esc(ctx.profile), _verdict_cell(v, why), _claim_budget(ctx, c)])
        parts.append(f"<h3>{esc(paper)}</h3>")
        parts.append(table(["claim", "where", "dataset", "quantity", "subject", "claimed", "ours", "profile", "verdict",
                            "our model's budget"],
                           rows, caption=f"{esc(paper)}, ours at {profile_tag(ctx.profile)}"))
    summary = ", ".join(f"{fmt(n)} {esc(k)}" for k, n in counts.items())
    return Section("claims", "Paper claims: claimed vs ours",
                   note(f"Verdicts: {summary}. Rule: see docs/report.md (tolerances in configs/report.yaml).") + "".join(parts), True)


# ---------------------------------------------------------------- ablations


def _bd_value_cell(bd) -> str:
    """A reproduce/papers/ablation.py BD dict {value, valid, warnings} as a cell; a refused BD shows why."""
    if not isinstance(bd, dict):
        return "—"
    warns = "; ".join(map(str, bd.get("warnings") or []))
    if bd.get("value") is None:
        return f'— <span class="iqr">({esc(warns or "not computed")})</span>'
    flag = f' <span class="bad" title="{esc(warns)}">⚠ {esc(warns)}</span>' if warns else ""
    return fmt(bd["value"], 2) + flag


def _variant_claims(ctx: Context, family: str, variant: str) -> str:
    subject = f"{family}:{variant}"
    cs = [c for cl in ctx.claims.values() for c in cl if c.subject == subject]
    if not cs:
        return "—"
    return "<br>".join(f"<code>{esc(c.quantity)}</code> {fmt(c.value) if c.value is not None else esc(c.text)} {esc(c.unit)} "
                       f'<span class="iqr">({esc(c.ref)}{", " + esc(c.dataset) if c.dataset else ""})</span>' for c in cs)


def _ablation_papers() -> dict[str, tuple[str, list[str]]]:
    # the producer's own paper -> (claims file, variant families) table, so both stay in step
    from rsicbench.reproduce.papers.ablation import PAPERS

    return PAPERS


def _ablation_row(ctx: Context, paper: str, family: str, name: str, r: dict | None, ds: str, rd_names: set,
                  variants: dict) -> list[str]:
    """One variant's table row: modules, our rate points, BD vs the family baseline, params,
    the paper's numbers and a status (why a row is empty when it is)."""
    var = name[len(family) + 1:]
    modules = (r or {}).get("modules") or (variants.get(family) or {}).get(var) or {}
    mod_txt = ", ".join(f"{esc(k)}={esc(v)}" for k, v in sorted(modules.items())) or "—"
    if r is None:
        qtags = [p.qtag for p in ctx.rd(ds).get(name, [])] if name in rd_names else []
        status = ("not run" + (f' <span class="iqr">(RD points {esc(", ".join(qtags))} exist; '
                              f"ablation stage not run)</span>" if qtags else
                              f' <span class="iqr">(no results/ablation/{esc(paper)}.json row, '
                              f"no RD points under results/rd/{esc(ds)}/{esc(name)})</span>"))
        return [esc(name), mod_txt, "—", "—", "—", "—", _budget(ctx, ds, rd_names, name), _variant_claims(ctx, family, var),
                status]
    pts = r.get("rd_points") or []
    is_base = var == "baseline"
    status = ("baseline (anchor)" if is_base else "ok" if (r.get("bd_rate_psnr") or {}).get("value") is not None
              else "not evaluated" if not pts else "BD refused")
    if r.get("role") == SEED_CONTROL:
        status += (f"<br><b>{SEED_CONTROL}</b>: the baseline retrained with seed + {esc(modules.get('seed_offset'))}; "
                   "its |BD-rate| is the family's seed gap")
    elif r.get("difference") == WITHIN_SEED_NOISE:
        status += (f"<br><b>{WITHIN_SEED_NOISE}</b> <span class=\"iqr\">(the interval excludes 0 but reaches within "
                   f"±{fmt(r.get('seed_gap'), 2)} %, the seed gap)</span>")
    elif r.get("difference"):
        status += f"<br><b>{esc(r['difference'])}</b>"
    if r.get("problems"):
        status += f'<br><span class="iqr">{esc("; ".join(map(str, r["problems"])))}</span>'
    under = [u for u in (undertrained_note(ctx, ds, m) for m in (name, r.get("anchor") or "")) if u] if ds in ctx.rd_names else []
    if under:
        status += f'<br><span class="bad">{esc("; ".join(under))}: the difference says nothing about the modules</span>'
    pt_txt = f"{len(pts)}: " + ", ".join(f"{esc(p.get('qtag'))} ({fmt(p.get('bpp'))} bpp, {fmt(p.get('psnr'), 2)} dB)"
                                         for p in pts) if pts else "0"
    return [esc(name), mod_txt, pt_txt,
            "—" if is_base or not pts else _bd_value_cell(r.get("bd_rate_psnr")) + _ci_cell(r.get("bd_rate_psnr_ci")),
            "—" if is_base or not pts else _bd_value_cell(r.get("bd_psnr")),
            fmt(r.get("params")), _budget(ctx, ds, rd_names, name), _variant_claims(ctx, family, var), status]


def _budget(ctx: Context, ds: str, rd_names: set, name: str) -> str:
    return budget_cell(ctx, ds, name) if name in rd_names else "—"


def _ci_cell(ci) -> str:
    """The paired-bootstrap interval of a variant's BD-rate (reproduce/evaluation/paired_bd.py), or why there is none."""
    if not isinstance(ci, dict):
        return ""
    failed = f", {ci['n_failed']} of {ci['n_boot']} resamples not computable" if ci.get("n_failed") else ""
    if not ci.get("computable"):
        return f'<br><span class="iqr">no CI: {esc(ci.get("reason"))}{esc(failed)}</span>'
    return (f'<span class="iqr"> [{fmt(ci["ci_low"], 2)}, {fmt(ci["ci_high"], 2)}]<br>paired bootstrap, {ci["ci"]:.0%}, '
            f'{ci["n_images"]} images, {ci["n_boot"]} resamples{esc(failed)}</span>')


def _ablation_paper(ctx: Context, paper: str, claims_stem: str, families: list[str], variants: dict) -> list[str]:
    """Heading and table of one paper's ablation: the configured variants of its families
    (baseline first) plus any extra variant rows its ablation file holds."""
    table = ctx.ablation.get(paper)
    rows_by_name = {r["variant"]: r for r in (table or {}).get("rows", [])}
    ds = Path(str((table or {}).get("rd_root", "results/rd/ucmerced-papers"))).name
    rd_names = set(ctx.rd(ds)) if ds in ctx.rd_names else set()
    rows = []
    for family in families:
        rows_cfg = variants.get(family) or {}  # baseline, then its seed controls, then the module variants
        names = [f"{family}-{v}" for v in sorted(rows_cfg, key=lambda v: (v != "baseline",
                                                                          not seed_offset(rows_cfg[v]), v))]
        names += sorted(n for n, r in rows_by_name.items() if r.get("family") == family and n not in names)
        rows += [_ablation_row(ctx, paper, family, name, rows_by_name.get(name), ds, rd_names, variants)
                 for name in names]
    head = (f"{esc(paper)} — families {', '.join(esc(f) for f in families)} (claims/{esc(claims_stem)}.yaml) "
            f"{profile_tag(str((table or {}).get('profile', ctx.profile)))}")
    parts = [f"<h3>{head}</h3>"]
    if table is None:
        parts.append(missing(f"ablation-{paper}", ctx.results / "ablation" / f"{paper}.json"))
    else:
        parts.append(note(_seed_gap_text(table, families)))
    parts.append(table_html(["variant", "modules", "our rate points", "BD-rate % vs baseline [CI]", "BD-PSNR dB vs baseline",
                             "params", "budget", "paper (same variant)", "status"], rows,
                            caption=f"{esc(paper)} ablation on {esc(ds)}, ours at "
                                    f"{profile_tag(str((table or {}).get('profile', ctx.profile)))}"))
    return parts


def _seed_gap_text(table: dict, families: list[str]) -> str:
    """Each family's seed gap (results/ablation/<paper>.json `seed_gap`), or why there is none."""
    out = []
    for family in families:
        g = (table.get("seed_gap") or {}).get(family)
        if not isinstance(g, dict):
            out.append(f"{esc(family)}: no seed gap in this ablation file (written before seed controls existed)")
        elif g.get("value") is None:
            out.append(f"{esc(family)}: no seed gap measured ({esc(g.get('reason'))}); differences are read "
                       "against the images only")
        else:
            out.append(f"{esc(family)}: seed gap ±{fmt(g['value'], 2)} % (|BD-rate| of {esc(g.get('largest'))} "
                       f"vs {esc(family)}-baseline)")
    return "Seed gap — " + "; ".join(out) + "."


def _own_baseline_claims(ctx: Context) -> tuple[list[str], bool]:
    """Claims measured against a non-JPEG2000 anchor that is one of our codecs (computed here
    from RD means): (html parts, whether any has a measured value)."""
    extra = [c for cs in ctx.claims.values() for c in cs
             if c.quantity.startswith("bd_") and c.anchor and c.anchor != ANCHOR and ":" not in c.subject]
    if not extra:
        return [], False
    rows, produced = [], False
    for c in extra:
        ours = ctx.measured_for(c)
        produced |= ours is not None
        rows.append([esc(c.paper), esc(c.dataset or "—"), esc(c.subject), esc(c.anchor), f"<code>{esc(c.quantity)}</code>",
                     f"{fmt(c.value)} {esc(c.unit)} <span class='iqr'>({esc(c.ref)})</span>", _ours_cell(ours)])
    return ["<h3>Other claims against a paper's own baseline</h3>",
            table_html(["paper", "dataset", "variant", "vs", "quantity", "paper", "ours"], rows,
                       caption=f"ours at {profile_tag(ctx.profile)}")], produced


def section_ablation(ctx: Context) -> Section:
    from rsicbench.config import variants_by_family

    variants = variants_by_family(ctx.papers_cfg.get("variants") or {})
    papers = _ablation_papers()
    parts = [note("One row per paper variant (configs/papers.yaml <code>variants</code>): our BD-rate / BD-PSNR of the "
                  "variant against its family's <code>baseline</code> variant on the papers' evaluation set, from "
                  "<code>results/ablation/&lt;paper&gt;.json</code> (reproduce/papers/ablation.py, pchip), beside the paper's "
                  "numbers for that variant. A BD the ablation stage refused shows its reason; "
                  "“not run” = the ablation file does not exist yet. Brackets: the paired-bootstrap confidence "
                  "interval of the BD-rate over the images both curves share; an interval that includes 0 reads "
                  "<b>no difference measured</b>. The interval covers the choice of images, not training noise: "
                  "the same model retrained with another seed can differ from itself by a BD-rate whose interval "
                  "excludes 0 (docs/learned.md “Seed noise”). So each family has a <b>seed control</b> row "
                  "(its baseline retrained with another seed, same budget) and a <b>seed gap</b>, that row's "
                  "|BD-rate|; a variant whose interval excludes 0 but reaches within ±seed gap reads "
                  "<b>within seed noise</b>. One seed control is one draw of training noise: "
                  "a difference just beyond it is weak evidence. "
                  "Budget and <b>undertrained</b>: docs/report.md “Learned rows”.")]
    produced = False
    for paper, (claims_stem, families) in papers.items():
        produced |= ctx.ablation.get(paper) is not None
        parts += _ablation_paper(ctx, paper, claims_stem, families, variants)
    extra_parts, extra_produced = _own_baseline_claims(ctx)
    parts += extra_parts
    produced |= extra_produced
    parts.append(note("The ROI papers (MROI-CFHPM, AGDL) compare whole systems rather than module ablations: "
                      '<a href="#roi">ROI results</a>.'))
    return Section("ablation", "Ablations per paper", "".join(parts), produced)


# ---------------------------------------------------------------- complexity

COMPLEXITY_HEAD = {"params": "params", "flops": "FLOPs", "enc_s": "encode s", "dec_s": "decode s", "memory": "memory"}


def _fidelity_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        diffs = []
        for q in ("params", "flops"):
            d = r.get(f"rel_diff_{q}") or {}
            if d:
                diffs.append(f"{q}: " + ", ".join(f"{esc(k)} {v:+.1%}" for k, v in sorted(d.items()) if isinstance(v, (int, float))))
        body.append([esc(r["table"]), esc(r["name"]), esc("×".join(map(str, r.get("input") or []))),
                     fmt(r.get("params")), fmt(r.get("params_thop")), fmt(r.get("paper_params")),
                     fmt(r.get("flops")), fmt(r.get("macs_thop")), fmt(r.get("paper_flops")), "<br>".join(diffs) or "—"])
    return table(["paper table", "model / block", "input", "params (all)", "params (thop conv.)", "paper params",
                  "FLOPs (FlopCounter)", "MACs (thop conv.)", "paper FLOPs", "relative difference"], body, cls="num",
                 caption="architecture fidelity at the papers' configurations (results/fidelity.json; conventions: "
                         "reproduce/papers/fidelity.py) — independent of the profile")


def section_complexity(ctx: Context) -> Section:
    claims = [c for cs in ctx.claims.values() for c in cs if c.quantity in CLAIM_COMPLEXITY]
    if not ctx.complexity and not ctx.fidelity:
        return Section("complexity", "Complexity", missing("complexity / fidelity", ctx.results / "complexity" / "<model>.json"), False)
    parts = []
    if ctx.complexity:
        rows = []
        for model, row in sorted(ctx.complexity.items()):
            cells = [esc(model)]
            for col in COMPLEXITY_FIELDS:
                key = complexity_key(row, col)
                cells.append("—" if key is None else f'{fmt(row[key])}<br><span class="iqr">{esc(key)}</span>')
            arch = ", ".join(f"{k.split('.', 1)[1]}={fmt(v)}" for k, v in sorted(row.items()) if k.startswith("arch."))
            cells.append(f"{esc(arch) or '—'}<br><span class='iqr'>profile {esc(row.get('profile', '?'))}, "
                         f"input {esc(row.get('input', '?'))}, threads {esc(row.get('torch_threads', '?'))}</span>")
            others = "".join(f"<li><code>{esc(k)}</code>: {fmt(v) if isinstance(v, (int, float)) else esc(v)}</li>" for k, v in sorted(row.items()))
            cells.append(f"<details><summary>all fields</summary><ul>{others}</ul></details>")
            rows.append(cells)
        parts.append(table(["model"] + list(COMPLEXITY_HEAD.values()) + ["architecture", "details"], rows,
                           caption=f"measured on the trained checkpoint, {profile_tag(ctx.profile)} (units as written in "
                                   "results/complexity; key under each value; memory = CUDA peak on a GPU, else the "
                                   "process RSS growth in KiB)"))
    else:
        parts.append(missing("complexity", ctx.results / "complexity" / "<model>.json"))
    if ctx.fidelity:
        parts.append("<h3>Architecture fidelity</h3>" + _fidelity_table(ctx.fidelity))
    else:
        parts.append(missing("fidelity", ctx.results / "fidelity.json"))
    if claims:
        rows = []
        for c in claims:
            ours = ctx.measured_for(c)
            v, why = verdict(ctx, c, ours)
            rows.append([esc(c.paper), esc(c.subject), f"<code>{esc(c.quantity)}</code>",
                         f"{fmt(c.value)} {esc(c.unit)} <span class='iqr'>({esc(c.ref)})</span>", _ours_cell(ours), _verdict_cell(v, why)])
        parts.append("<h3>Beside the papers' tables</h3>")
        parts.append(table(["paper", "model", "quantity", "paper", "ours (same unit)", "verdict"], rows,
                           caption=f"ours at {profile_tag(ctx.profile)} unless from results/fidelity.json; "
                                   "timings depend on the machine (see provenance); — = nothing we measure maps to it"))
    return Section("complexity", "Complexity", "".join(parts), bool(ctx.complexity or ctx.fidelity))


# ---------------------------------------------------------------- downstream


def _target_cell(at) -> str:
    if not at:
        return "—"
    where = (f"{esc(at['qtag'])}" if at.get("qtag") else "between " + " & ".join(esc(q) for q in at.get("between") or []))
    extra = f'<br><span class="iqr">{esc(at["note"])}</span>' if at.get("note") else ""
    cls = ' class="bad"' if at.get("method") == "nearest" else ""
    return (f"{fmt(at.get('oa'), 2)} <span{cls}>({esc(at.get('method'))})</span><br>"
            f'<span class="iqr">{where}, {fmt(at.get("bpp"))} bpp</span>{extra}')


def _cm_point(run, codec: str, at) -> tuple[str, dict] | None:
    """The measured point whose confusion stands for a target: the matched/nearest point itself,
    or for an interpolated OA the bracketing point closer in bpp (labelled as such)."""
    pts = run.points.get(codec) or {}
    if not at:
        return None
    if at.get("qtag") in pts:
        return at["qtag"], pts[at["qtag"]]
    cands = [(q, pts[q]) for q in at.get("between") or [] if q in pts and pts[q].get("bpp") is not None]
    if not cands:
        return None
    return min(cands, key=lambda qp: (abs(qp[1]["bpp"] - float(at.get("bpp") or 0)), qp[0]))


def _classifier_table(ctx: Context, ds: str, tr: dict | None) -> str:
    """The classifier's training record (results/classifier/<ds>/train.json), or what is missing."""
    if not tr:
        return missing(f"classify-train@{ds}", ctx.results / "classifier" / ds / "train.json")
    st = tr.get("settings") or {}
    return table(
        ["backbone", "input px", "epochs", "train / val / test images", "classes", "best epoch", "val OA",
         "clean test OA", "training time s"],
        [[esc(st.get("backbone")) + (" (ImageNet init)" if st.get("pretrained") else ""), fmt(st.get("input_size")),
          fmt(st.get("epochs")), f"{fmt(tr.get('n_train'))} / {fmt(tr.get('n_val'))} / {fmt(tr.get('n_test'))}",
          fmt(len(tr.get("classes") or [])), fmt(tr.get("best_epoch")), fmt(tr.get("best_val_oa"), 2),
          fmt(tr.get("clean_test_oa"), 2), fmt(tr.get("train_seconds_total"), 0)]],
        caption=f"classifier: results/classifier/{esc(ds)}/train.json (data source {esc(tr.get('data_source'))})", cls="num")


def _oa_table(ctx: Context, ds: str, summ: dict, targets: list[str]) -> str:
    """OA per codec at each target rate and BD-OA vs the anchor, below the no-compression rows;
    a codec with RD results but no score says so."""
    codecs = summ.get("codecs") or {}
    measured = set(ctx.rd(ds)) if ds in ctx.rd_names else set()
    cl = summ.get("clean") or {}
    rows = [["original (no compression), whole test split"] + [fmt(cl.get("oa"), 2)] * len(targets)
            + ["—", f'{fmt(cl.get("n_images"))} images', "—"]]
    if cl.get("n_coded_images"):  # the same images the codec rows were scored on
        rows.append(["original (no compression), the codecs' images"] + [fmt(cl.get("oa_coded_images"), 2)] * len(targets)
                    + ["—", f'{fmt(cl.get("n_coded_images"))} images', "—"])
    for codec in sorted(set(codecs) | measured):
        d = codecs.get(codec)
        if d is None:
            rows.append([esc(codec)] + ["—"] * len(targets)
                        + ["—", '<span class="iqr">not scored: classify-eval ran before this codec had results</span>',
                           budget_cell(ctx, ds, codec)])
            continue
        ats = d.get("at_target") or {}
        bd = d.get("bd_oa_vs_anchor")
        bd_txt = "anchor" if codec == summ.get("anchor") else (fmt(bd, 2) if bd is not None else "— <span class='iqr'>(curves do not overlap / &lt;2 points)</span>")
        npts = len(d.get("curve") or []) + len(d.get("matched") or [])
        rows.append([esc(codec)] + [_target_cell(ats.get(t)) for t in targets] + [bd_txt, fmt(npts), budget_cell(ctx, ds, codec)])
    return table(["codec"] + [f"OA at {esc(t)} bpp" for t in targets] + [f"BD-OA vs {esc(summ.get('anchor'))} (pp)", "rate points scored",
                                                                         "budget"],
                 rows, caption=f"overall accuracy (%), {esc(ds)}, {profile_tag(ctx.profile)}; "
                               f"classifier {esc((summ.get('classifier') or {}).get('sha256_16'))}", cls="num")


def _confusion_matrices(run, codecs: dict, targets: list[str]) -> str:
    """Heatmaps of the original and of every codec at every target (a point shared by both targets once)."""
    from rsicbench.reports.htmlutil import heatmap

    classes = list((run.clean or {}).get("classes") or next((p.get("classes") for pts in run.points.values() for p in pts.values()), []))
    cms = []
    if run.clean and run.clean.get("confusion") is not None:
        cms.append(heatmap(run.clean["confusion"], f"<b>original</b>: OA {fmt(run.clean.get('oa'), 2)}"))
    for codec in sorted(codecs):
        seen: dict[str, list[str]] = {}
        for t in targets:
            got = _cm_point(run, codec, (codecs[codec].get("at_target") or {}).get(t))
            if got:
                seen.setdefault(got[0], []).append(t)
        for qtag, ts in seen.items():
            p = run.points[codec][qtag]
            if p.get("confusion") is None:
                continue
            at0 = (codecs[codec].get("at_target") or {}).get(ts[0]) or {}
            how = "" if at0.get("qtag") == qtag else " (nearest measured point to the interpolated target)"
            cms.append(heatmap(p["confusion"], f"<b>{esc(codec)}</b> {esc(qtag)} for {esc(' & '.join(ts))} bpp{how}: "
                                               f"{fmt(p.get('bpp'))} bpp, OA {fmt(p.get('oa'), 2)}"))
    if not cms:
        return ""
    legend = ", ".join(f"{i} {esc(c)}" for i, c in enumerate(classes))
    return ("<h4>Confusion matrices (rows = true class, columns = predicted; shade = fraction of the true "
            "class, number = count)</h4>" + note("Classes: " + legend) + f'<div class="hms">{"".join(cms)}</div>')


def _downstream_dataset(ctx: Context, ds: str, run) -> tuple[list[str], bool]:
    """One dataset's classifier, OA table, plot, paper claims and confusion matrices:
    (html parts, whether classify-eval produced its summary)."""
    from rsicbench.downstream.folder import skipped_reason
    from rsicbench.reports.sections import png_file_uri

    parts = [f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>"]
    skipped = skipped_reason(ctx.results, ds)  # a user's folder without labels (downstream/folder.py)
    if skipped and run.train is None and run.summary is None:
        return parts + [note(f"Not run: {esc(skipped)}.")], False
    parts.append(_classifier_table(ctx, ds, run.train))
    summ = run.summary
    if summ is None:
        return parts + [missing(f"classify-eval@{ds}", ctx.results / "downstream" / ds / "summary.json")], False
    targets = [f"{float(t):.2f}" for t in summ.get("targets") or []]
    parts.append(_oa_table(ctx, ds, summ, targets))
    if "oa_vs_bpp.png" in run.plots:
        parts.append(f'<div class="oaplot"><img src="{png_file_uri(run.plots["oa_vs_bpp.png"])}" alt="OA vs bpp, {esc(ds)}" '
                     'width="704" height="462"></div>')
    oa_claims = [c for cs in ctx.claims.values() for c in cs if c.quantity.startswith("oa") and c.dataset == ds]
    if oa_claims:
        crow = [[esc(c.paper), esc(c.subject), f"{fmt(c.value)} {esc(c.unit)} ({esc(c.ref)})", _ours_cell(ctx.measured_for(c))] for c in oa_claims]
        parts.append(table(["paper", "subject", "paper OA", "ours"], crow, caption="beside the papers"))
    parts.append(_confusion_matrices(run, summ.get("codecs") or {}, targets))
    return parts, True


def section_downstream(ctx: Context) -> Section:
    if not ctx.downstream:
        return Section("downstream", "Downstream classification",
                       missing("classify-train / classify-eval", ctx.results / "downstream" / "<ds>" / "summary.json"), False)
    parts = [note("EMTCAL-style scene classifier trained on the original images (downstream/), scored on every codec's "
                  "reconstructions of the test split. OA in %. OA at a target rate: <b>matched</b> = the matched-rate "
                  "point <code>bpp&lt;t&gt;</code>; <b>interpolated</b> = linear in bpp between the two fixed-rate points "
                  "around it; <b>nearest</b> (red) = the target lies outside the codec's measured range, the nearest "
                  "point is used, never extrapolated. BD-OA: mean OA difference (percentage points) vs the anchor.")]
    produced = False
    for ds, run in sorted(ctx.downstream.items()):
        ds_parts, ds_produced = _downstream_dataset(ctx, ds, run)
        parts += ds_parts
        produced |= ds_produced
    return Section("downstream", "Downstream classification", "".join(parts), produced)
