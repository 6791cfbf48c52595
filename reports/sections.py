"""The measured sections: datasets, RD curves, BD tables, ROI, reconstruction viewer.

Each section is `fn(ctx) -> Section`; it reads its inputs and, when they are absent, says
which stage has not run. No section types a number: every figure comes from a file.
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from rsicbench.reports import plots
from rsicbench.reports.budget import budget_cell
from rsicbench.reports.context import ANCHOR, Context
from rsicbench.reports.htmlutil import Section, esc, fmt, missing, note, profile_tag, table

# ---------------------------------------------------------------- datasets


def section_datasets(ctx: Context) -> Section:
    if not ctx.datasets:
        return Section("datasets", "Datasets and splits", missing("data", ctx.data / "<ds>" / "manifest.tsv"), False)
    parts = []
    for d in ctx.datasets:
        classes = Counter(r.get("class", "") for r in d.rows)
        sizes = Counter(f"{r.get('width')}×{r.get('height')}" for r in d.rows)
        common = sizes.most_common(1)[0]
        split_names = sorted(d.splits)
        header = ["images", "classes", "most common size", "other sizes"] + [f"split <code>{esc(s)}</code>" for s in split_names]
        row = [fmt(len(d.rows)), fmt(len(classes)), f"{esc(common[0])} ({fmt(common[1])})",
               fmt(len(d.rows) - common[1])] + [fmt(len(d.splits[s])) for s in split_names]
        parts.append(f"<h3>{esc(d.name)}</h3>")
        parts.append(table(header, [row], caption=f"<code>{esc(d.manifest.relative_to(ctx.data.parent) if d.manifest.is_relative_to(ctx.data.parent) else d.manifest)}</code>"))
        # leakage check the reader can trust: classifier splits vs the test split
        test = set(d.splits.get("test", []))
        checks = []
        for s in split_names:
            if s.startswith("classifier"):
                checks.append(f"<code>{esc(s)}</code> ∩ test = {fmt(len(test & set(d.splits[s])))} images")
        known = {r.get("relpath") for r in d.rows}
        for s in split_names:
            unknown = [p for p in d.splits[s] if p not in known]
            if unknown:
                checks.append(f'<span class="bad">split <code>{esc(s)}</code> lists {fmt(len(unknown))} images '
                              f"not in the manifest (first: <code>{esc(unknown[0])}</code>)</span>")
        if checks:
            parts.append(note("; ".join(checks)))
        per_class = [[esc(c), fmt(n)] for c, n in sorted(classes.items())]
        parts.append("<details><summary>images per class</summary>" + table(["class", "images"], per_class) + "</details>")
    return Section("datasets", "Datasets and splits", "".join(parts), True)


# ---------------------------------------------------------------- RD curves

RD_TABLE_COLS = (("bpp", "bpp"), ("psnr", "PSNR dB"), ("msssim_db", "MS-SSIM dB"), ("lpips", "LPIPS"),
                 ("vifp", "VIFp"), ("enc_s", "enc s"), ("dec_s", "dec s"))


def _cell(p, col: str) -> str:
    m = p.mean(col)
    if math.isnan(m):
        return "—"
    lo, hi = p.quantiles(col)
    return f'{fmt(m)}<span class="iqr"> [{fmt(lo)}, {fmt(hi)}]</span>'


def _qtag(p) -> str:
    matched = p.summary.get("target_bpp")
    extra = f' <span class="iqr">(matched rate {fmt(matched, 2)} bpp)</span>' if matched is not None else ""
    return f"<code>{esc(p.qtag)}</code>{extra}"


def _source_label(p) -> str:
    """Where a learned rate point's weights came from (train / zoo q<k> / checkpoint <format>)."""
    d = p.summary.get("describe") or {}
    src = d.get("source")
    if not src:
        return ""
    extra = {"zoo": f" q{d.get('zoo_quality')}", "checkpoint": f" {d.get('checkpoint_format') or ''}"}.get(src, "")
    return (src + extra).rstrip()


def _source(*points) -> str:
    labels = list(dict.fromkeys(lb for lb in map(_source_label, points) if lb))
    return f' <span class="iqr">(weights: {esc(", ".join(labels))})</span>' if labels else ""


def section_rd(ctx: Context) -> Section:
    names = ctx.rd_names
    if not names:
        return Section("rd", "Rate–distortion curves", missing("sweep / evaluate", ctx.results / "rd" / "<ds>" / "<codec>" / "<qtag>" / "per_image.csv"), False)
    scatter = int(ctx.cfg.get("scatter_max_points_per_rate", 16))
    parts = [note("Lines join the per-rate-point means; error bars span the inter-quartile range (25th–75th "
                  f"percentile) of the images in bpp and in the metric; dots are up to {scatter} evenly spaced "
                  "per-image values per rate point. Table cells: mean [IQR]. Learned rows: their training budget "
                  "and, when below JPEG at every rate, <b>undertrained</b> (rule: docs/report.md).")]
    for ds in names:
        curves = ctx.rd(ds)
        parts.append(f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>")
        if not curves:
            parts.append(missing("sweep / evaluate", ctx.results / "rd" / ds / "<codec>" / "<qtag>" / "per_image.csv"))
            continue
        parts.append(f'<div class="plot">{plots.rd_figure(curves, f"{ds} — profile {ctx.profile}", scatter)}</div>')
        rows = []
        failures = []
        for codec, points in sorted(curves.items()):
            for p in points:
                rows.append([esc(codec) + _source(p), _qtag(p), fmt(p.n), fmt(p.n_failed)]
                            + [_cell(p, c) for c, _ in RD_TABLE_COLS] + [budget_cell(ctx, ds, codec)])
                if p.n_failed:
                    failures.append(f"{esc(codec)}/{esc(p.qtag)}: {', '.join(esc(f) for f in p.failed[:5])}"
                                    + (" …" if p.n_failed > 5 else ""))
        header = ["codec", "rate point", "images", "failed"] + [h for _, h in RD_TABLE_COLS] + ["budget"]
        parts.append("<details><summary>RD points table</summary>"
                     + table(header, rows, caption=f"{esc(ds)}, {profile_tag(ctx.profile)}", cls="num") + "</details>")
        if failures:
            parts.append(note('<span class="bad">Images that failed (excluded from means):</span> ' + "; ".join(failures)))
    return Section("rd", "Rate–distortion curves", "".join(parts), True)


# ---------------------------------------------------------------- BD tables


def _bd_cell(row, q: str) -> str:
    if q not in row.values:
        return "—"
    ci = row.ci.get(q)
    ci_txt = f'<span class="iqr"> [{fmt(ci[0], 2)}, {fmt(ci[1], 2)}]</span>' if ci else '<span class="iqr"> (no CI)</span>'
    warn = row.extra.get(f"{q}.warnings")
    flag = f' <span class="bad" title="{esc(warn)}">⚠</span>' if warn else ""  # text in the row's note
    return fmt(row.values[q], 2) + ci_txt + flag


def _bd_warnings(row) -> str:
    """The BD code's warnings of one row, each once, with the quantities it concerns."""
    seen: dict[str, list[str]] = {}
    for q in sorted(row.values):
        for w in str(row.extra.get(f"{q}.warnings") or "").split("; "):
            if w:
                seen.setdefault(w, []).append(q)
    return "<br>".join(f'<span class="bad">⚠ {esc(w)}</span> <span class="iqr">({esc(", ".join(qs))})</span>'
                       for w, qs in seen.items())


def section_bd(ctx: Context) -> Section:
    names = sorted(set(ctx.bd_names) | set(ctx.rd_names))
    if not names:
        return Section("bd", f"BD-rate and BD-PSNR vs {ANCHOR}", missing("bd", ctx.results / "bd" / "<ds>.json"), False)
    parts = [note(f"Negative BD-rate = fewer bits than {ANCHOR} at equal quality; positive BD-PSNR = better quality "
                  "at equal rate. Brackets: the bootstrap confidence interval written by the BD stage; ⚠ = the BD "
                  "code's warning (the value is shown but is unreliable); — with a reason = the BD stage refused it. "
                  "Every codec measured on the dataset has a row.")]
    produced = False
    for ds in names:
        rows = ctx.bd(ds)
        parts.append(f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>")
        if rows is None:
            parts.append(missing("bd", ctx.results / "bd" / f"{ds}.json"))
            continue
        produced = True
        main = {r.codec: r for r in rows if r.anchor == ANCHOR}
        if not main:
            parts.append(note(f"<code>results/bd/{esc(ds)}.json</code> has no rows against {ANCHOR}."))
            continue
        quantities = sorted({q for r in main.values() for q in r.values})
        measured = ctx.rd(ds)
        body = []
        for codec in sorted(set(main) | set(measured)):
            r = main.get(codec)
            if codec == ANCHOR and r is None:
                body.append([esc(codec)] + ["anchor"] * len(quantities) + [_points_txt(measured.get(codec)), "", "—"])
                continue
            if r is None:
                body.append([esc(codec)] + ["—"] * len(quantities) + [
                    _points_txt(measured.get(codec)),
                    f'<span class="iqr">not in results/bd/{esc(ds)}.json: the bd stage ran before this codec had '
                    "results (rerun <code>dvc repro bd</code>)</span>", budget_cell(ctx, ds, codec)])
                continue
            reason = str(r.extra.get("error", ""))
            n_img = r.extra.get("n_images")
            info = (f"{fmt(r.extra.get('n_points'))} points vs {fmt(r.extra.get('anchor_points'))}; "
                    f"{fmt(n_img)} images" if "n_points" in r.extra else _points_txt(measured.get(codec)))
            body.append([esc(codec) + _source(*(measured.get(codec) or []))] + [_bd_cell(r, q) for q in quantities]
                        + [info, f'<span class="bad">refused: {esc(reason)}</span>' if reason else _bd_warnings(r),
                           budget_cell(ctx, ds, codec)])
        parts.append(table(["codec"] + [f"<code>{esc(q)}</code>" for q in quantities] + ["curve", "note", "budget"], body,
                           caption=f"vs {ANCHOR}, {esc(ds)}, {profile_tag(ctx.profile)}", cls="num"))
    return Section("bd", f"BD-rate and BD-PSNR vs {ANCHOR}", "".join(parts), produced)


def _points_txt(points) -> str:
    if not points:
        return "no RD points"
    fixed = [p for p in points if p.summary.get("target_bpp") is None]
    return f"{fmt(len(fixed))} fixed-rate points" + (f" + {len(points) - len(fixed)} matched" if len(points) > len(fixed) else "")


# ---------------------------------------------------------------- ROI


def section_roi(ctx: Context) -> Section:
    parts = []
    any_roi = False
    for ds in ctx.rd_names:
        rows = []
        for codec, points in sorted(ctx.rd(ds).items()):
            for p in points:
                n = p.count("roi_psnr")
                if n:
                    rows.append([esc(codec), _qtag(p), fmt(n), fmt(p.mean("bpp")),
                                 fmt(p.mean("psnr")), _cell(p, "roi_psnr"), fmt(p.mean("roi_psnr") - p.mean("psnr"))])
        if rows:
            any_roi = True
            parts.append(f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>")
            parts.append(table(["codec", "rate point", "images with ROI", "bpp", "PSNR dB", "ROI-PSNR dB [IQR]", "ROI − full PSNR dB"],
                               rows, caption=f"{esc(ds)}, {profile_tag(ctx.profile)}", cls="num"))
    roi_files = _roi_files(ctx)
    if roi_files:
        any_roi = True
        parts.append(roi_files)
    if not any_roi:
        return Section("roi", "ROI results", missing("ROI papers (MROI-CFHPM, AGDL) evaluation",
                                                       "results/rd/<ds>/<codec>/<qtag>/per_image.csv with roi_psnr values, "
                                                       "or results/roi/*.json"), False)
    return Section("roi", "ROI results", note("ROI-PSNR is the PSNR inside the region-of-interest mask, per image, "
                                              "as written in <code>per_image.csv</code>.") + "".join(parts), True)


def _roi_files(ctx: Context) -> str:
    """results/roi/*.json: RD curves (`curves: {system: [{quality, bpp, psnr, roi_psnr, images}]}`)
    as a table; any other JSON (detector validation...) as its flattened numbers."""
    from rsicbench.reports.loaders import _flatten, read_json_file

    base = ctx.results / "roi"
    parts = []
    for p in sorted(base.glob("*.json")) if base.is_dir() else []:
        obj = read_json_file(p)
        if not isinstance(obj, dict):
            raise ValueError(f"{p}: expected a JSON object")
        prof = obj.get("profile", ctx.profile)
        head = f"<h3><code>{esc(p.relative_to(ctx.results.parent) if p.is_relative_to(ctx.results.parent) else p)}</code> {profile_tag(str(prof))}</h3>"
        curves = obj.get("curves")
        if isinstance(curves, dict):
            rows = [[esc(name), fmt(r.get("quality")), fmt(r.get("images")), fmt(r.get("bpp")), fmt(r.get("psnr")), fmt(r.get("roi_psnr"))]
                    for name, pts in sorted(curves.items()) for r in pts if isinstance(r, dict)]
            body = table(["system", "quality", "images", "bpp", "PSNR dB", "ROI-PSNR dB"], rows, cls="num")
        else:
            flat = {k: v for k, v in _flatten(obj).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            body = table(["quantity", "value"], [[f"<code>{esc(k)}</code>", fmt(v)] for k, v in sorted(flat.items())], cls="num")
        parts.append(head + body)
    return "".join(parts)


# ---------------------------------------------------------------- reconstruction viewer


def _find_image(base: Path, relpath: str) -> Path | None:
    cands = [base / relpath, base / (relpath + ".png"), (base / relpath).with_suffix(".png")]
    return next((c for c in cands if c.is_file()), None)


def _find_original(ctx: Context, ds: str, relpath: str) -> Path | None:
    """The original of a reconstructed image: data/<ds>/images/<relpath>, else the first other
    image folder that holds it (ROI and paper-variant sets reuse other datasets' images:
    ucmerced-roi -> data/ucmerced, 38cloud -> data/samples, ucmerced-papers -> results/papers/evalset)."""
    bases = [ctx.data / ds / "images"]
    bases += sorted(p / "images" for p in ctx.data.iterdir() if p.is_dir() and p.name != ds) if ctx.data.is_dir() else []
    bases.append(ctx.results / "papers" / "evalset")
    return next((f for f in (_find_image(b, relpath) for b in bases) if f is not None), None)


def png_file_uri(path: Path) -> str:
    """A PNG file written by a stage, embedded as it is (the report stays one file)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _png_data_uri(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False, compress_level=9)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _crop(path: Path, size: int) -> np.ndarray:
    from rsicbench.imageio import read_rgb

    img = read_rgb(path)
    h, w = img.shape[:2]
    s = min(size, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return img[y:y + s, x:x + s]


def section_viewer(ctx: Context) -> Section:
    target = float(ctx.cfg.get("viewer_target_bpp", 0.5))
    max_ratio = float(ctx.cfg.get("viewer_max_rate_ratio", 2.0))
    size = int(ctx.cfg.get("viewer_crop", 96))
    parts = [note(f"The same centre crop ({size}×{size} px, shown ×2 without smoothing) of one test image, for each "
                  f"codec at the rate point whose mean bpp is closest to {target:g} bpp (only points within a "
                  f"factor {max_ratio:g} of it). Per-image bpp and PSNR under each crop.")]
    produced = False
    for ds in ctx.rd_names:
        curves = ctx.rd(ds)
        chosen = {}
        skipped = []
        for codec, points in sorted(curves.items()):
            with_recon = [p for p in points if (p.folder / "recon").is_dir() and p.mean("bpp") > 0]
            if not with_recon:
                skipped.append(f"{esc(codec)} (no recon/)")
                continue
            best = min(with_recon, key=lambda p: (abs(math.log(p.mean("bpp") / target)), p.qtag))
            if abs(math.log(best.mean("bpp") / target)) > math.log(max_ratio):
                skipped.append(f"{esc(codec)} (closest mean {fmt(best.mean('bpp'))} bpp)")
                continue
            chosen[codec] = best
        parts.append(f"<h3>{esc(ds)} {profile_tag(ctx.profile)}</h3>")
        if not chosen:
            parts.append(missing("sweep / evaluate", ctx.results / "rd" / ds / "<codec>" / "<qtag>" / "recon"))
            if skipped:
                parts.append(note("Skipped: " + ", ".join(skipped)))
            continue
        common = sorted(set.intersection(*(set(p.images) for p in chosen.values())))
        image = next((im for im in common if all(_find_image(p.folder / "recon", im) for p in chosen.values())), None)
        if image is None:
            parts.append(note("No image has a reconstruction from every chosen codec."))
            continue
        produced = True
        figs = []
        orig = _find_original(ctx, ds, image)
        if orig is not None:
            figs.append((_png_data_uri(_crop(orig, size)), "original", "lossless"))
        for codec, p in chosen.items():
            i = p.images.index(image)
            cap = f"{fmt(p.values['bpp'][i])} bpp, {fmt(p.values['psnr'][i], 2)} dB"
            figs.append((_png_data_uri(_crop(_find_image(p.folder / "recon", image), size)), f"{codec} ({p.qtag})", cap))
        cells = "".join(f'<figure><img src="{uri}" width="{2 * size}" height="{2 * size}" alt="{esc(name)}">'
                        f"<figcaption><b>{esc(name)}</b><br>{cap}</figcaption></figure>" for uri, name, cap in figs)
        parts.append(f"<p>Image <code>{esc(image)}</code>" + ("" if orig else " (original not found under data/)") + "</p>")
        parts.append(f'<div class="viewer">{cells}</div>')
        if skipped:
            parts.append(note("Not shown: " + ", ".join(skipped)))
    if not ctx.rd_names:
        return Section("viewer", "Reconstruction viewer", missing("sweep / evaluate", ctx.results / "rd" / "<ds>" / "<codec>" / "<qtag>" / "recon"), False)
    return Section("viewer", "Reconstruction viewer", "".join(parts), produced)
