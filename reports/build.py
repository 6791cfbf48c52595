"""Assemble the report: run every section, fill the template, write the HTML atomically.

Beside `report/index.html` it writes two small files for DVC:
  * `report/rd_points.csv`: one row per (dataset, codec, rate point) with mean bpp and metrics
    (`dvc plots show report/rd_points.csv`);
  * `report/metrics.json`: BD values vs jpeg2000 and the claim-verdict counts (`dvc metrics show`).
Both come from the same loaded inputs as the HTML, so they agree with it.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from string import Template
from typing import Any, Callable

from rsicbench import fsutil
from rsicbench.reports import papers, readiness, sections
from rsicbench.reports.context import ANCHOR, Context
from rsicbench.reports.htmlutil import Section, esc, profile_tag
from rsicbench.reports.provenance import section_provenance

HERE = Path(__file__).resolve().parent

# order of the page; each entry: ctx -> Section
SECTIONS: list[Callable[[Context], Section]] = [
    sections.section_datasets,
    sections.section_rd,
    sections.section_bd,
    papers.section_ablation,
    papers.section_complexity,
    readiness.section_readiness,
    papers.section_downstream,
    sections.section_roi,
    papers.section_claims,
    sections.section_viewer,
]


def banner(profile: str) -> str:
    if profile == "paper":
        return ""
    return (f'<div class="banner" id="profile-banner">Numbers from profile “{esc(profile)}” are not comparable to '
            "the papers: this profile trains shorter, on fewer images and/or smaller models than the papers did. "
            "Run <code>dvc exp run -S profile=paper</code> for comparable numbers.</div>")


def render(ctx: Context, with_timestamp: bool = True) -> tuple[str, list[Section]]:
    done = [fn(ctx) for fn in SECTIONS]
    done.append(section_provenance(ctx, with_timestamp))
    toc = "\n".join(f'<li><a href="#{s.id}">{esc(s.title)}</a>' + ("" if s.produced else ' <span class="iqr">(not produced)</span>') + "</li>"
                    for s in done)
    body = "\n".join(f'<section id="{s.id}" data-produced="{str(s.produced).lower()}">\n<h2>{esc(s.title)}</h2>\n{s.body}\n</section>'
                     for s in done)
    tpl = Template((HERE / "template.html").read_text(encoding="utf-8"))
    page = tpl.substitute(profile=esc(ctx.profile), profile_tag=profile_tag(ctx.profile), banner=banner(ctx.profile),
                          toc=toc, sections=body, css=(HERE / "style.css").read_text(encoding="utf-8"))
    return page, done


def rd_points_csv(ctx: Context) -> str:
    cols = ("bpp", "psnr", "msssim_db", "lpips", "vifp", "roi_psnr")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("dataset", "codec", "qtag", "n", *cols))
    for ds in ctx.rd_names:
        for codec, points in sorted(ctx.rd(ds).items()):
            for p in points:
                vals = [p.mean(c) for c in cols]
                w.writerow((ds, codec, p.qtag, p.n, *("" if math.isnan(v) else f"{v:.6g}" for v in vals)))
    return buf.getvalue()


def metrics_summary(ctx: Context, done: list[Section]) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": ctx.profile, "sections_produced": sorted(s.id for s in done if s.produced),
                           # as numbers too, so the CI gate sees a section that stopped being produced
                           "sections": {"produced": sum(s.produced for s in done), "total": len(done)}}
    bd: dict[str, Any] = {}
    for ds in ctx.bd_names:
        for r in ctx.bd(ds) or []:
            if r.anchor == ANCHOR:
                bd.setdefault(ds, {})[r.codec] = {q: (None if math.isnan(v) else round(v, 6)) for q, v in sorted(r.values.items())}
    out["bd_vs_" + ANCHOR] = bd
    # OA (%) at the target rates per codec, and each paper variant's BD-rate vs its baseline
    out["oa_at_target"] = {ds: {codec: {t: (None if not a or a.get("oa") is None else round(float(a["oa"]), 4))
                                        for t, a in sorted((d.get("at_target") or {}).items())}
                                for codec, d in sorted((run.summary.get("codecs") or {}).items())}
                           for ds, run in sorted(ctx.downstream.items()) if run.summary}
    out["ablation_bd_rate_psnr"] = {paper: {r["variant"]: (r.get("bd_rate_psnr") or {}).get("value")
                                            for r in table.get("rows", [])}
                                    for paper, table in sorted(ctx.ablation.items())}
    counts: dict[str, int] = {}
    for claims in ctx.claims.values():
        for c in claims:
            v, _ = papers.verdict(ctx, c, ctx.measured_for(c))
            counts[v] = counts.get(v, 0) + 1
    out["claims"] = dict(sorted(counts.items()))
    return out


def build_report(root: Path, results: Path, data: Path, claims: Path, out: Path, profile: str,
                 cfg: dict[str, Any], with_timestamp: bool | None = None) -> list[Section]:
    """Build the report and its DVC side files; returns the sections (for the caller's summary)."""
    ctx = Context(root=root, results=results, data=data, claims_dir=claims, profile=profile, cfg=cfg)
    if with_timestamp is None:
        with_timestamp = bool(cfg.get("timestamp", True))
    page, done = render(ctx, with_timestamp)
    fsutil.write_text(out, page)
    fsutil.write_text(out.parent / "rd_points.csv", rd_points_csv(ctx))
    fsutil.write_json(out.parent / "metrics.json", metrics_summary(ctx, done))
    return done
