"""`rsicbench doctor`: what a profile's learned models cost on this device, measured.

    rsicbench doctor --profile paper                       # every family, results/paper_readiness.json
    rsicbench doctor --profile paper --batch 2             # measure at batch 2, scale to the profile's
    rsicbench doctor --profile paper --models ltchm-full mgss-full

For each model (default: each paper family's full model and baseline, and the CompressAI
models the papers compare with): optimisation steps at the profile's batch and crop (on CPU
at batch 1, scaled linearly to the profile's batch and recorded as such) and encode/decodes
of a 256x256 image through the real codec path, each one untimed set-up pass then `--repeat`
timed ones (fastest reported); step time (wall, CPU), peak memory, parameters, and the
projected time of the profile (reproduce/papers/readiness.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsicbench.errors import int_at_least


def main(argv: list[str] | None = None) -> int:
    from rsicbench.reproduce.papers import readiness
    ap = argparse.ArgumentParser(prog="rsicbench doctor", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", help="ci | default | paper (default: paper)")
    ap.add_argument("--models", nargs="+", default=None,
                    help=f"models to measure (default: {' '.join(readiness.default_models())})")
    ap.add_argument("--batch", type=int_at_least(1), default=None,
                    help="measure at this batch and scale the step time linearly to the profile's "
                         "(recorded as `scale`); default: the profile's batch on a GPU, 1 on CPU")
    ap.add_argument("--crop", type=int_at_least(64), default=None,
                    help="measure at this crop side and scale by pixels; default: the profile's crop")
    ap.add_argument("--repeat", type=int_at_least(1), default=2,
                    help="timed steps and codes after the untimed set-up pass; the fastest is reported (default 2)")
    ap.add_argument("--data-root", default=None, help="folder holding <dataset>/ (default: <project>/data)")
    ap.add_argument("--out", default=None, help="output JSON (default: results/<profile>_readiness.json)")
    ap.add_argument("--in-process", action="store_true",
                    help="measure in this process (faster; RSS peaks then include earlier models)")
    a = ap.parse_args(argv)
    models = a.models or readiness.default_models()
    result = readiness.run(models, a.profile, a.batch, a.crop, a.data_root, isolate=not a.in_process,
                           log=lambda s: print(s, file=sys.stderr, flush=True), repeat=a.repeat)
    from rsicbench.fsutil import write_json
    from rsicbench.paths import project_root

    out = Path(a.out) if a.out else project_root() / "results" / f"{result['profile']}_readiness.json"
    write_json(out, result)
    for row in result["models"]:
        print(json.dumps({"model": row["model"], "projected_total_h": round(row["projected_total_h"], 2)}))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
