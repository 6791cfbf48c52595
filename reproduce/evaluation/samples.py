"""Which images a sweep evaluates: a dataset split (the DVC data stages' output) or a folder.

`load_samples` is `rsicbench sweep`'s rule (a folder's images may not collide once their
extension is dropped: results are stored per relpath without it); `learned_eval_samples` is
`rsicbench evaluate`'s (the same image subset as the classical sweeps unless the train
settings' `eval` says otherwise, so BD rows and downstream OA compare codecs image for image).
"""

from __future__ import annotations

from pathlib import Path

from rsicbench.errors import UserError
from rsicbench.reproduce.evaluation.engine import samples_from_folder, subset
from rsicbench.results import Sample


def load_samples(dataset: str, split: str, images_dir: str | None) -> list[Sample]:
    """The images of `images_dir` when given (labels = parent folder names), else of the split."""
    if images_dir:
        samples = samples_from_folder(images_dir)
        by_stem: dict[str, str] = {}
        for s in samples:  # results are stored per relpath without extension
            stem = str(Path(s.relpath).with_suffix(""))
            if stem in by_stem:
                raise UserError(f"--images-dir {images_dir}: {by_stem[stem]} and {s.relpath} would share one "
                                f"result (same name without extension); rename one")
            by_stem[stem] = s.relpath
        return samples
    from rsicbench.datasets import load_split

    return load_split(dataset, split)


def learned_eval_samples(train_cfg: dict, sweep_cfg: dict, dataset: str | None, images_dir: str | None,
                         dataset_name: str | None) -> tuple[list[Sample], str]:
    """(samples, results dataset name) of a learned-codec evaluation: `images_dir` (named
    `dataset_name`, default the folder's name) or the train settings' dataset and eval split,
    cut to eval.per_class / eval.max_images, each defaulting to the sweeps' (`sweep_cfg`)."""
    ev = train_cfg.get("eval", {})
    if images_dir:
        samples, ds = samples_from_folder(images_dir), dataset_name or Path(images_dir).name
    else:
        from rsicbench.datasets import load_split

        ds = dataset or train_cfg.get("dataset", "ucmerced")
        samples = load_split(ds, ev.get("split", "test"))
    per_class = ev.get("per_class", sweep_cfg.get("per_class"))
    max_images = ev.get("max_images", sweep_cfg.get("max_images"))
    return subset(samples, per_class or None, max_images or None), ds
