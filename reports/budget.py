"""What a learned row carries in every table (docs/report.md "Learned rows"): its training
budget and whether its curve is "undertrained" (worse than JPEG at every rate).

Budget: source (train / zoo / checkpoint), steps, crop, batch, width, read from the rate
points' summary.json `describe` (reproduce/codecs/learned.py records the run's config); a
summary written before that recorded it falls back to results/train/<model>/r<i>/log.csv
(steps only). Fraction of the paper's steps: our steps / the `train_steps` claim of the
model's paper (claims/<paper>.yaml, with its section); a model whose paper gives no step
count says so instead of a fraction.

Undertrained rule: each learned point whose mean bpp lies within JPEG's measured bpp range
on the same dataset (for the paper variants' own image set: JPEG's means over the same images
on the dataset they were copied from) is compared with JPEG's PSNR interpolated linearly in log(bpp); the curve
is "undertrained" when it is below JPEG at every such point, "not comparable" when none of
its points lies within JPEG's range (or there is no JPEG curve), else "above JPEG at some rate".
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
import numpy as np

from rsicbench.reports.htmlutil import esc, fmt

JPEG = "jpeg"
UNDERTRAINED, NOT_UNDERTRAINED, NOT_COMPARABLE = "undertrained", "above JPEG at some rate", "not comparable"


def jpeg_check(curve: list[tuple[float, float]], jpeg: list[tuple[float, float]]) -> tuple[str, str]:
    """(status, why) of a learned curve [(bpp, psnr)] against JPEG's [(bpp, psnr)] (module docstring)."""
    jp = sorted((b, q) for b, q in jpeg if b > 0 and math.isfinite(b) and math.isfinite(q))
    if len(jp) < 2:
        return NOT_COMPARABLE, "no JPEG curve (2+ points) on this dataset"
    lb, jq = np.log([b for b, _ in jp]), np.array([q for _, q in jp])
    inside = [(b, q) for b, q in curve if b > 0 and math.isfinite(q) and lb[0] <= math.log(b) <= lb[-1]]
    outside = len([1 for b, q in curve if b > 0]) - len(inside)
    rng = f"JPEG's {fmt(jp[0][0])}–{fmt(jp[-1][0])} bpp"
    if not inside:
        return NOT_COMPARABLE, f"no point within {rng}"
    gaps = [q - float(np.interp(math.log(b), lb, jq)) for b, q in inside]
    extra = f"; {outside} point(s) outside {rng}: not comparable" if outside else ""
    if all(g < 0 for g in gaps):
        return UNDERTRAINED, (f"PSNR below JPEG's (log-bpp interpolation) at all {len(inside)} point(s) within {rng}, "
                              f"by {fmt(-max(gaps), 2)}–{fmt(-min(gaps), 2)} dB{extra}")
    return NOT_UNDERTRAINED, f"at or above JPEG at {sum(g >= 0 for g in gaps)} of {len(inside)} point(s) within {rng}{extra}"


@dataclass
class Budget:
    source: str
    steps: list[int]  # distinct planned steps over the rate points (one per trained run)
    patch: list[int]
    batch: list[int]
    width: str
    recorded_in: str  # where the steps come from
    finetuned: list[str] = field(default_factory=list)  # "<own steps> steps from r<i>" per fine-tuned run
    paper_steps: float | None = None
    paper_ref: str = ""  # the claim's section/table, or why there is no fraction

    def text(self) -> str:
        if self.source == "zoo":
            head = "zoo weights (CompressAI's own training)"
        elif self.source == "checkpoint" and not self.steps:
            head = "checkpoint (steps not recorded in it)"
        else:
            head = f"{esc(self.source)}: {'/'.join(fmt(s) for s in self.steps) or 'steps not recorded'} steps"
        parts = [head]
        if self.finetuned:
            parts.append(f"of which {', '.join(esc(f) for f in self.finetuned)} fine-tuning "
                         f"(the rest: the anchor's, train.finetune)")
        if self.patch:
            parts.append(f"crop {'/'.join(str(p) for p in self.patch)} px")
        if self.batch:
            parts.append(f"batch {'/'.join(str(b) for b in self.batch)}")
        parts.append(f"width {esc(self.width) or 'not recorded'}")
        if self.paper_steps and self.steps:
            frac = "/".join(f"{100 * s / self.paper_steps:.3g}%" for s in self.steps)  # 0.003%, 0.15%, 100%
            paper = int(self.paper_steps) if float(self.paper_steps).is_integer() else self.paper_steps
            parts.append(f"{frac} of the paper's {fmt(paper)} steps ({esc(self.paper_ref)})")
        elif self.source != "zoo":
            parts.append(f"fraction of the paper's steps: {esc(self.paper_ref)}")
        return "; ".join(parts) + f' <span class="iqr">({esc(self.recorded_in)})</span>'


def _distinct(values) -> list:
    return sorted({int(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)})


def _log_steps(ctx, codec: str, summary: dict) -> int | None:
    """The last step in the run's log.csv (results/train/<codec>/r<quality>/)."""
    q = summary.get("quality")
    path = ctx.results / "train" / codec / f"r{q}" / "log.csv"
    if q is None or not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        steps = [int(float(r["step"])) for r in csv.DictReader(f) if (r.get("step") or "").strip()]
    return max(steps) if steps else None


def paper_steps(ctx, codec: str) -> tuple[float | None, str]:
    """(the paper's training steps, its reference) for a paper model `<family>-<variant>`, from
    the `train_steps` claim of its paper's claims file; (None, why) otherwise."""
    from rsicbench.reproduce.papers.ablation import PAPERS

    stems = [stem for stem, families in PAPERS.values() for fam in families if codec.startswith(f"{fam}-")]
    if not stems:
        return None, "no paper in ../shared/papers gives this model's training steps"
    got = [c for cs in ctx.claims.values() for c in cs if c.file.stem == stems[0] and c.quantity == "train_steps"]
    if not got:
        return None, f"no train_steps claim in claims/{stems[0]}.yaml"
    c = got[0]
    if c.value is None:
        return None, f"paper gives no step count: {c.text or c.note} ({c.ref})"
    return c.value, f"claims/{stems[0]}.yaml {c.id}, {c.ref}"


def budget(ctx, codec: str, points: list) -> Budget | None:
    """The budget of a codec's rate points (loaders.RDPoint), or None for a non-learned codec."""
    describes = [p.summary.get("describe") or {} for p in points]
    learned = [d for d in describes if d.get("source")]
    if not learned:
        return None
    trains = [d.get("train") or {} for d in learned]
    # a fine-tuned point's budget is its own steps plus its anchor's (train.finetune)
    steps = _distinct((t.get("steps") or 0) + (t.get("init_steps") or 0) for t in trains if t.get("steps"))
    finetuned = sorted({f"{fmt(t['steps'])} steps from {t['init_from']}" for t in trains if t.get("init_from")})
    recorded = "summary.json describe.train"
    if not steps:
        steps = _distinct(_log_steps(ctx, codec, p.summary) for p in points)
        recorded = "last step of results/train log.csv; crop not recorded" if steps else "not recorded by this evaluation"
    archs = sorted({", ".join(f"{k}={v}" for k, v in sorted((d.get("arch") or {}).items())) for d in learned} - {""})
    b = Budget("/".join(sorted({str(d["source"]) for d in learned})), steps, _distinct(t.get("patch") for t in trains),
               _distinct(t.get("batch") for t in trains), " | ".join(archs), recorded, finetuned)
    b.paper_steps, b.paper_ref = paper_steps(ctx, codec)
    return b


def learned_status(ctx, ds: str, codec: str) -> tuple[Budget | None, tuple[str, str] | None]:
    """(budget, JPEG check) of `codec` on `ds`; (None, None) for a non-learned or unmeasured codec."""
    cache = ctx.__dict__.setdefault("_learned", {})
    key = (ds, codec)
    if key not in cache:
        curves = ctx.rd(ds) if ds in ctx.rd_names else {}
        pts = curves.get(codec) or []
        b = budget(ctx, codec, pts)
        check = None
        if b is not None:
            fixed = [p for p in pts if p.summary.get("target_bpp") is None]
            jpeg, where = _jpeg_curve(ctx, ds, sorted({im for p in fixed for im in p.images}))
            status, why = jpeg_check([(p.mean("bpp"), p.mean("psnr")) for p in fixed], jpeg)
            check = (status, why + where)
        cache[key] = (b, check)
    return cache[key]


def _jpeg_curve(ctx, ds: str, images: list[str]) -> tuple[list[tuple[float, float]], str]:
    """JPEG's fixed-quality mean points on `ds`; where ds has none (the paper variants' image set),
    JPEG's means over the same images (same relpaths: results/papers/evalset copies them byte for
    byte) at the points of another dataset where JPEG coded them all; ([], "") when neither exists."""
    def fixed(points) -> list:
        return [p for p in points if p.summary.get("target_bpp") is None]

    own = fixed((ctx.rd(ds) if ds in ctx.rd_names else {}).get(JPEG) or [])
    if own:
        return [(p.mean("bpp"), p.mean("psnr")) for p in own], ""
    for other in ctx.rd_names:
        # the points at which JPEG coded every one of these images
        pts = [p for p in fixed(ctx.rd(other).get(JPEG) or []) if set(images) <= set(p.images)] if other != ds else []
        if images and len(pts) >= 2:
            idx = [[p.images.index(im) for im in images] for p in pts]
            xy = [(float(np.mean(p.values["bpp"][i])), float(np.mean(p.values["psnr"][i]))) for p, i in zip(pts, idx)]
            return xy, f" (JPEG: its means over the same {len(images)} images in results/rd/{other})"
    return [], ""


def undertrained_note(ctx, ds: str, codec: str) -> str:
    """'undertrained: why' when the codec's curve is below JPEG at every rate on ds, else ''."""
    _, check = learned_status(ctx, ds, codec)
    return f"{codec} undertrained on {ds} ({check[1]})" if check and check[0] == UNDERTRAINED else ""


def budget_cell(ctx, ds: str, codec: str) -> str:
    """The budget column of a row: budget text and the JPEG check, or — for a non-learned codec."""
    b, check = learned_status(ctx, ds, codec)
    if b is None:
        return "—"
    cls = "bad" if check and check[0] == UNDERTRAINED else "iqr"
    flag = f'<br><span class="{cls}">{esc(check[0])}: {esc(check[1])}</span>' if check else ""
    return b.text() + flag


def learned_models(ctx) -> dict[str, list[str]]:
    """model -> the datasets where it is undertrained (for the claims' verdicts)."""
    cache = ctx.__dict__.get("_undertrained")
    if cache is None:
        cache = {}
        for ds in ctx.rd_names:
            for codec in ctx.rd(ds):
                if undertrained_note(ctx, ds, codec):
                    cache.setdefault(codec, []).append(ds)
        ctx.__dict__["_undertrained"] = cache
    return cache


def claim_models(ctx, subject: str) -> list[str]:
    """Our models a claim's subject stands for: `<family>:<variant>` -> the variant and its
    family baseline; else the subject and its alias (configs/report.yaml subject_aliases)."""
    if ":" in subject:
        family, variant = subject.split(":", 1)
        return list(dict.fromkeys([f"{family}-{variant}", f"{family}-baseline"]))
    return list(dict.fromkeys([subject, ctx.alias(subject)]))


def claim_undertrained(ctx, subject: str) -> str:
    """Why a claim's verdict says nothing about the method: the models it rests on that are undertrained."""
    under = learned_models(ctx)
    return "; ".join(f"our {m} is undertrained (below JPEG at every rate on {', '.join(under[m])})"
                     for m in claim_models(ctx, subject) if m in under)
