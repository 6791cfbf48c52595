"""`rsicbench ablation`: the paper models' evaluation image set and their ablation tables.

    python -m rsicbench.reproduce.commands.ablation evalset            # results/papers/evalset/
    python -m rsicbench.reproduce.commands.ablation table --paper ltchm  # results/ablation/ltchm.json

`evalset` (reproduce/papers/evalset.py): the test-split images the paper variants are
evaluated on, copied (PNG bytes, already lossless) to results/papers/evalset/<class>/<file>.png: the first test image of
each of the first `eval_set.classes` classes (sorted; 0 = the whole test split), or with
`eval_set.images: eval` exactly the images `rsicbench evaluate` uses for every codec
(configs/eval.yaml per_class / max_images), from configs/papers.yaml per profile.
`table`: reproduce.papers.ablation.ablation_table over results/rd/<dataset>/ (default ucmerced-papers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.claims import claims_dir
from rsicbench.config import settings
from rsicbench.fsutil import write_json
from rsicbench.paths import project_root
from rsicbench.reproduce.papers.evalset import build_evalset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench ablation", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evalset", help="copy the paper models' evaluation images")
    e.add_argument("--out", default="results/papers/evalset")
    e.add_argument("--profile")
    t = sub.add_parser("table", help="ablation table of one paper")
    t.add_argument("--paper", required=True, help="ltchm | mgss | dmenet")
    t.add_argument("--dataset", default="ucmerced-papers", help="results/rd/<dataset>/")
    t.add_argument("--out", help="default results/ablation/<paper>.json")
    t.add_argument("--no-params", action="store_true", help="skip building models to count parameters")
    t.add_argument("--profile")
    a = ap.parse_args(argv)
    cfg = settings("papers", a.profile)
    root = project_root()
    try:
        if a.cmd == "evalset":
            es = cfg.get("eval_set", {})
            same_as = None
            if es.get("images", "classes") == "eval":  # the subset `rsicbench evaluate` uses for every codec
                from rsicbench.reproduce.evaluation.samples import learned_eval_samples

                same_as = learned_eval_samples(settings("train", a.profile), settings("eval", a.profile),
                                               es.get("dataset", "ucmerced"), None, None)[0]
            elif es.get("images", "classes") != "classes":
                raise ValueError(f"configs/papers.yaml: eval_set.images: expected classes or eval, got {es['images']!r}")
            imgs = build_evalset(es.get("dataset", "ucmerced"), int(es.get("classes", 0)), root / a.out, same_as)
            print(json.dumps({"images": len(imgs), "out": a.out}))
            return 0
        from rsicbench.reproduce.papers.ablation import PAPERS, ablation_table

        if a.paper not in PAPERS:
            raise ValueError(f"unknown paper {a.paper!r}; choose one of {', '.join(PAPERS)}")
        claims = claims_dir(root) / f"{PAPERS[a.paper][0]}.yaml"
        table = ablation_table(a.paper, cfg["variants"], root / "results" / "rd" / a.dataset, claims,
                               cfg["profile"], with_params=not a.no_params,
                               boot=settings("eval", a.profile).get("bootstrap"))
        out = Path(a.out) if a.out else root / "results" / "ablation" / f"{a.paper}.json"
        write_json(out, table)
    except (ValueError, FileNotFoundError) as err:
        print(f"rsicbench ablation: {err}", file=sys.stderr)
        return 2
    for r in table["rows"]:
        v = r["bd_rate_psnr"]["value"]
        print(f"{r['variant']:<28} points {len(r['rd_points'])}  BD-rate "
              f"{'n/a' if v is None else f'{v:+.2f}%'}  BD-PSNR "
              f"{'n/a' if r['bd_psnr']['value'] is None else format(r['bd_psnr']['value'], '+.3f')}"
              f"  params {r['params']}  {r.get('difference') or ''}")
    for family, gap in table["seed_gap"].items():
        print(f"seed gap {family}: " + (f"±{gap['value']:.2f} % ({gap['largest']})" if gap["value"] is not None
                                          else f"none ({gap['reason']})"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
