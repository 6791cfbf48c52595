"""`rsicbench folder --source DIR --name NAME`: a folder of images through the whole evaluation.

    rsicbench folder --source ~/my_tiles --name mytiles [--tile 256] [--bands 4 3 2] [--profile ci]

The same commands the pipeline runs, on data/NAME instead of UC Merced, in order:
  1. `rsicbench data fetch imagefolder` + `data split`: lossless PNGs, manifest, 8:1:1 splits
     (gray/palette/RGBA/16-bit/multi-band GeoTIFF inputs follow rsicbench/imageio.py's
     conversion rule; `--bands` picks the bands used as R, G, B);
  2. `rsicbench sweep` of every classical codec of configs/eval.yaml (`codecs`; `--codecs`
     adds or replaces, e.g. ext-cwebp) on the test split;
  3. `rsicbench evaluate` of every learned model of configs/train.yaml whose weights exist:
     its `source` is zoo / checkpoint:<path>, or results/train/<model>/r<i>/best.pt is there
     (`--learned` names the models instead);
  4. `rsicbench bd --dataset NAME` against the anchor;
  5. downstream, when the folder has class labels (<root>/<class>/<image>, >= 2 classes):
     `rsicbench classify train NAME` (on the folder's own train split, rsicbench/downstream/
     folder.py says why) and `rsicbench classify evaluate NAME`; otherwise skipped.json;
  6. `rsicbench report` (every dataset; `--no-report` leaves it to the report stage).
A step that fails is reported and the others still run; the exit status is 1 if any failed.
`--record FILE` writes what ran (steps, exit codes, seconds, learned runs, downstream).
In the pipeline: params.yaml `own_images` -> the own-images@NAME stage (dvc.yaml), which runs
this command with the entry's keys as options (`dir` = `--source`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


#: names that other pipeline stages own under data/ and results/ (rd, bd, downstream)
RESERVED = ("ucmerced", "landsat8", "samples", "38cloud", "ucmerced-papers", "ucmerced-roi", "ci", "imagefolder")


def _step(label: str, fn, argv: list[str], failed: list[str], log: list | None = None) -> None:
    import time

    cmd = {"fetch": "data", "split": "data", "classify-train": "classify", "classify-eval": "classify"}.get(
        label, label.split()[0])
    print(f"[folder] rsicbench {cmd} {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = _run(label, fn, argv)
    if log is not None:
        log.append({"step": label, "argv": [cmd, *argv], "exit": rc, "seconds": round(time.perf_counter() - t0, 2)})
    if rc:
        failed.append(f"{label} (exit {rc})")


def _run(label: str, fn, argv: list[str]) -> int:
    try:
        rc = fn(argv)
    except SystemExit as e:  # argparse errors inside a step
        rc = e.code if isinstance(e.code, int) else 2
    except Exception as e:  # one step's failure must not stop the others
        print(f"[folder] {label}: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 2
    return int(rc or 0)


def _tile(text: str) -> int | None:
    # the pipeline passes params.yaml values as text; null/0 = no tiling
    if text.lower() in ("none", "null", "0", ""):
        return None
    return int(text)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rsicbench folder", description=__doc__.splitlines()[0])
    ap.add_argument("--source", "--dir", dest="source", required=True,
                    help="the folder: <root>/<image> or <root>/<class>/<image>")
    ap.add_argument("--name", required=True, help="dataset name: data/<name>, results/rd/<name>")
    ap.add_argument("--tile", type=_tile, help="cut images into TILE x TILE tiles")
    ap.add_argument("--bands", type=int, nargs="+", help="1-based bands used as R G B (multi-band TIFF/GeoTIFF)")
    ap.add_argument("--profile", help="ci | default | paper (default: params.yaml)")
    ap.add_argument("--codecs", nargs="*", help="codecs to sweep (default: configs/eval.yaml codecs)")
    ap.add_argument("--learned", nargs="*", help="learned models to evaluate (default: those with weights)")
    ap.add_argument("--report", default="report/index.html")
    ap.add_argument("--no-report", action="store_true", help="skip the report (the pipeline's report stage writes it)")
    ap.add_argument("--no-downstream", action="store_true", help="skip the classifier even when labels exist")
    ap.add_argument("--no-lpips", action="store_true", help="sweeps without LPIPS (no AlexNet weights needed)")
    ap.add_argument("--record", help="write what ran to this JSON file")
    return ap


def _dataset(a, prof: list[str], failed: list[str], log: list) -> bool:
    """Step 1: fetch + split the folder into data/<name>; False when either failed."""
    from rsicbench.datasets import cli as data_cli

    _step("fetch", data_cli.main, ["fetch", "imagefolder", "--source", a.source, "--name", a.name, *prof]
          + (["--tile", str(a.tile)] if a.tile else []) + (["--bands", *map(str, a.bands)] if a.bands else []),
          failed, log)
    if failed:
        return False
    _step("split", data_cli.main, ["split", "imagefolder", "--name", a.name, *prof], failed, log)
    return not failed


def _codecs(a, prof: list[str], failed: list[str], log: list) -> list[str]:
    """Steps 2-4: classical sweeps, learned evaluations, BD; returns the learned runs (model/r<i>)."""
    from rsicbench.config import settings
    from rsicbench.reproduce.commands import bd as cli_bd
    from rsicbench.reproduce.commands import evaluate as cli_evaluate
    from rsicbench.reproduce.commands import sweep as cli_sweep
    from rsicbench.reproduce.training.weight_sources import available_runs

    ev = settings("eval", a.profile)
    for codec in a.codecs if a.codecs is not None else ev.get("codecs", []):
        _step(f"sweep {codec}", cli_sweep.main, ["--codec", codec, "--dataset", a.name, "--split", "test", *prof]
              + (["--no-lpips"] if a.no_lpips else []), failed, log)
    runs = available_runs(settings("train", a.profile), a.learned)
    for model, rate in runs:
        _step(f"evaluate {model} {rate}", cli_evaluate.main,
              ["--model", model, "--rate", rate, "--dataset", a.name, *prof], failed, log)
    _step("bd", cli_bd.main, ["--dataset", a.name, "--anchor", str(ev.get("anchor", "jpeg2000"))], failed, log)
    return [f"{m}/{r}" for m, r in runs]


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if not Path(a.source).is_dir():
        print(f"rsicbench folder: {a.source}: image folder not found", file=sys.stderr)
        return 2
    if a.name in RESERVED or not a.name or "/" in a.name or a.name.startswith("."):
        print(f"rsicbench folder: --name {a.name!r}: reserved or not a plain folder name "
              f"(taken: {', '.join(RESERVED)})", file=sys.stderr)
        return 2
    prof = ["--profile", a.profile] if a.profile else []
    failed: list[str] = []
    log: list[dict] = []
    record = {"name": a.name, "source": str(Path(a.source).resolve()), "steps": log}

    def finish(rc: int) -> int:
        if a.record:
            from rsicbench import fsutil

            fsutil.write_json(a.record, {**record, "failed": failed, "exit": rc})
        return rc

    if not _dataset(a, prof, failed, log):  # nothing to evaluate without the dataset
        return finish(1)
    record["learned"] = _codecs(a, prof, failed, log)
    record["downstream"] = _downstream(a, prof, failed, log)
    if not a.no_report:
        from rsicbench.reports import cli as report_cli

        _step("report", report_cli.main, ["--out", a.report, *prof], failed, log)
    if failed:
        print(f"[folder] failed: {'; '.join(failed)}", file=sys.stderr)
        return finish(1)
    print(f"[folder] done: results/rd/{a.name}, results/bd/{a.name}.json"
          + ("" if a.no_report else f", {a.report}"))
    return finish(0)


def _downstream(a, prof: list[str], failed: list[str], log: list) -> str:
    """Train + score the classifier when the folder has labels; else record why not."""
    from rsicbench.downstream import cli as classify_cli
    from rsicbench.downstream.folder import clear_skipped, label_problem, write_skipped
    from rsicbench.paths import project_root

    results = Path("results")
    if a.no_downstream:
        return "not run (--no-downstream)"
    why = label_problem(project_root() / "data" / a.name)
    if why:
        print(f"[folder] downstream skipped: {why}", flush=True)
        write_skipped(results, a.name, why)
        return f"skipped: {why}"
    clear_skipped(results, a.name)
    _step("classify-train", classify_cli.main, ["train", a.name, *prof], failed, log)
    _step("classify-eval", classify_cli.main, ["evaluate", a.name, *prof], failed, log)
    return f"results/downstream/{a.name}/summary.json"


if __name__ == "__main__":
    sys.exit(main())
