"""The paper models' evaluation image set: results/papers/evalset/<class>/<file>.png.

The test-split images the paper variants are evaluated on, copied byte for byte (PNG,
already lossless) from data/<dataset>/images. Why a separate set: 28 variants x rates on the
full default test subset would not fit the default profile's time budget (docs/papers.md).
"""

from __future__ import annotations

from pathlib import Path

from rsicbench.fsutil import write_bytes, write_json


def build_evalset(dataset: str, classes: int, out: Path, same_as: list | None = None) -> list[str]:
    """Copy the first test image of each of the first `classes` classes (sorted; 0 = the whole
    test split) of `dataset` to <out>/<relpath>, list them in <out>/../evalset.json; returns
    their relpaths. `same_as`: exactly these samples instead (configs/papers.yaml
    `eval_set.images: eval`: the images every other codec is evaluated on)."""
    from rsicbench.datasets import load_split

    samples = sorted(same_as if same_as is not None else load_split(dataset, "test"), key=lambda s: s.relpath)
    if not samples:
        raise ValueError(f"{dataset}: empty test split")
    label = lambda s: s.label or Path(s.relpath).parent.name  # noqa: E731
    if same_as is not None:
        chosen = samples
    elif classes:
        first: dict = {}  # class -> its first Sample
        for s in samples:
            first.setdefault(label(s), s)
        chosen = [first[c] for c in sorted(first)[:classes]]
    else:
        chosen = samples
    for s in chosen:
        write_bytes(out / s.relpath, Path(s.path).read_bytes())
    write_json(out.parent / "evalset.json", {"dataset": dataset, "classes": classes,
                                             "rule": "eval" if same_as is not None else "classes",
                                             "images": [s.relpath for s in chosen]})
    return [s.relpath for s in chosen]
