"""The downstream step for a user's image folder (`rsicbench folder`, the own-images stage).

The classifier is trained on the folder's OWN train split (selected on its val split) and
scores every codec's reconstructions of its test split: `rsicbench classify train|evaluate
<name>`, the same code and settings (configs/downstream.yaml) as for UC Merced. Why not the
UC Merced classifier: it only knows UC Merced's 21 classes, and even a folder with the same
class names comes from another sensor and resolution, so its OA would measure the domain
gap, not the codec. Without labels (images at <root>/<image>) or with fewer than two
classes there is nothing to classify: the step writes `skipped.json` (the reason) in
results/classifier/<name>/ and results/downstream/<name>/ instead, which the report shows.
"""

from __future__ import annotations

from pathlib import Path

SKIPPED = "skipped.json"


def label_problem(data_dir: Path) -> str | None:
    """Why the folder cannot train a classifier (None when it can), from its manifest."""
    from rsicbench.datasets.base import read_manifest

    entries = read_manifest(data_dir / "manifest.tsv")
    if any(not e.label for e in entries):
        return "no class labels (images at <root>/<image>; labels come from <root>/<class>/<image>)"
    classes = sorted({e.label for e in entries})
    if len(classes) < 2:
        return f"one class only ({classes[0]}): nothing to classify"
    return None


def write_skipped(results: Path, name: str, reason: str) -> None:
    """The 'not run, and why' record in both downstream output folders (cleared of stale runs)."""
    import shutil

    from rsicbench import fsutil

    for sub in ("classifier", "downstream"):
        d = results / sub / name
        if d.is_dir():
            shutil.rmtree(d)  # a classifier of an earlier, labelled version of the folder
        fsutil.write_json(d / SKIPPED, {"dataset": name, "skipped": reason})


def clear_skipped(results: Path, name: str) -> None:
    for sub in ("classifier", "downstream"):
        (results / sub / name / SKIPPED).unlink(missing_ok=True)


def skipped_reason(results: Path, name: str) -> str | None:
    import json

    p = results / "downstream" / name / SKIPPED
    if not p.is_file():
        return None
    try:
        return str(json.loads(p.read_text(encoding="utf-8")).get("skipped") or "skipped")
    except (ValueError, OSError, AttributeError) as e:
        return f"skipped ({p}: unreadable: {e})"
