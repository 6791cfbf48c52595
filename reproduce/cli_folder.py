"""`rsicbench folder --source DIR --name NAME`: a folder of images through the whole evaluation.

    rsicbench folder --source ~/my_tiles --name mytiles [--tile 256] [--profile ci]

The same commands the pipeline runs, on data/NAME instead of UC Merced, in order:
  1. `rsicbench data fetch imagefolder` + `data split`: lossless PNGs, manifest, 8:1:1 splits
     (gray/palette/RGBA/16-bit inputs follow rsicbench/imageio.py's conversion rule);
  2. `rsicbench sweep` of every classical codec of configs/eval.yaml (`codecs`; `--codecs`
     adds or replaces, e.g. ext-cwebp) on the test split;
  3. `rsicbench evaluate` of every learned model of configs/train.yaml whose weights exist:
     its `source` is zoo / checkpoint:<path>, or results/train/<model>/r<i>/best.pt is there
     (`--learned` names the models instead);
  4. `rsicbench bd --dataset NAME` against the anchor, 5. `rsicbench report` (every dataset).
A step that fails is reported and the others still run; the exit status is 1 if any failed.
Not run: the downstream classifier (its training is a pipeline stage of its own).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _step(label: str, fn, argv: list[str], failed: list[str]) -> None:
    cmd = {"fetch": "data", "split": "data"}.get(label, label.split()[0])
    print(f"[folder] rsicbench {cmd} {' '.join(argv)}", flush=True)
    try:
        rc = fn(argv)
    except SystemExit as e:  # argparse errors inside a step
        rc = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # one step's failure must not stop the others
        print(f"[folder] {label}: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 2
    if rc:
        failed.append(f"{label} (exit {rc})")


def learned_runs(cfg: dict, only: list[str] | None) -> list[tuple[str, str]]:
    """(model, rate tag) pairs whose weights are available without training."""
    from rsicbench.reproduce.learned import run_dir
    from rsicbench.reproduce.weight_sources import model_source

    out = []
    for model, spec in sorted((cfg.get("models") or {}).items()):
        if only is not None and model not in only:
            continue
        for i in range(len((spec or {}).get("lambdas") or [])):
            rate = f"r{i}"
            if only is not None or model_source(cfg, model) != "train" or (run_dir(model, rate) / "best.pt").is_file():
                out.append((model, rate))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench folder", description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="the folder: <root>/<image> or <root>/<class>/<image>")
    ap.add_argument("--name", required=True, help="dataset name: data/<name>, results/rd/<name>")
    ap.add_argument("--tile", type=int, help="cut images into TILE x TILE tiles")
    ap.add_argument("--profile", help="ci | default | paper (default: params.yaml)")
    ap.add_argument("--codecs", nargs="*", help="codecs to sweep (default: configs/eval.yaml codecs)")
    ap.add_argument("--learned", nargs="*", help="learned models to evaluate (default: those with weights)")
    ap.add_argument("--report", default="report/index.html")
    a = ap.parse_args(argv)
    from rsicbench.config import settings
    from rsicbench.datasets import cli as data_cli
    from rsicbench.reports import cli as report_cli
    from rsicbench.reproduce import cli_bd, cli_evaluate, cli_sweep

    if not Path(a.source).is_dir():
        print(f"rsicbench folder: {a.source}: image folder not found", file=sys.stderr)
        return 2
    prof = ["--profile", a.profile] if a.profile else []
    failed: list[str] = []
    _step("fetch", data_cli.main, ["fetch", "imagefolder", "--source", a.source, "--name", a.name, *prof]
          + (["--tile", str(a.tile)] if a.tile else []), failed)
    if failed:  # nothing to evaluate without the dataset
        return 1
    _step("split", data_cli.main, ["split", "imagefolder", "--name", a.name, *prof], failed)
    if failed:
        return 1
    ev = settings("eval", a.profile)
    for codec in a.codecs if a.codecs is not None else ev.get("codecs", []):
        _step(f"sweep {codec}", cli_sweep.main, ["--codec", codec, "--dataset", a.name, "--split", "test", *prof], failed)
    for model, rate in learned_runs(settings("train", a.profile), a.learned):
        _step(f"evaluate {model} {rate}", cli_evaluate.main,
              ["--model", model, "--rate", rate, "--dataset", a.name, *prof], failed)
    _step("bd", cli_bd.main, ["--dataset", a.name, "--anchor", str(ev.get("anchor", "jpeg2000"))], failed)
    _step("report", report_cli.main, ["--out", a.report, *prof], failed)
    if failed:
        print(f"[folder] failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    print(f"[folder] done: results/rd/{a.name}, results/bd/{a.name}.json, {a.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
