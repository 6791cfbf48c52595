"""Where a learned model's weights come from in the pipeline: `train | zoo | checkpoint:<path>`.

Set per model in configs/train.yaml (`models.<name>.source`, default `train`), or on the
command line (`rsicbench evaluate --source ...` / `--checkpoint PATH`):
  * `train`: our own `rsicbench train` run, results/train/<model>/r<i>/best.pt;
  * `zoo`: CompressAI's pretrained weights from the torch hub cache (reproduce/models/checkpoints.py);
    `zoo_qualities: [q for r0, q for r1, ...]` picks the zoo quality per rate tag
    (default: rate index + 1);
  * `checkpoint:<path>`: one file for every rate tag, or `{r}` in the path for the index
    (`checkpoint:weights/mbt-{r}.pth.tar`); relative paths are from the project root.
With a source other than `train`, `rsicbench train` does not train: it records the source in
results/train/<model>/r<i>/source.json, so `dvc repro` goes straight to evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCES = ("train", "zoo", "checkpoint")


class SourceError(ValueError):
    """A source setting that cannot be used; the message names the setting."""


def parse(text: str, where: str) -> tuple[str, str | None]:
    """("train"|"zoo"|"checkpoint", path or None) of a source text."""
    t = str(text).strip()
    if t in ("train", "zoo"):
        return t, None
    if t.startswith("checkpoint:") and t[len("checkpoint:"):].strip():
        return "checkpoint", t[len("checkpoint:"):].strip()
    raise SourceError(f"{where}: source {text!r}: expected train, zoo or checkpoint:<path>")


def model_source(cfg: dict, model: str) -> str:
    """The configured source text of `model` (train settings), default `train`."""
    return str(((cfg.get("models") or {}).get(model) or {}).get("source", "train"))


def available_runs(cfg: dict, only: list[str] | None) -> list[tuple[str, str]]:
    """(model, rate tag) pairs of the train settings `cfg` whose weights are available without
    training: a source other than `train`, or a finished run (best.pt); `only` names models
    to take at every rate tag regardless."""
    from rsicbench.results import run_dir

    out = []
    for model, spec in sorted((cfg.get("models") or {}).items()):
        if only is not None and model not in only:
            continue
        for i in range(len((spec or {}).get("lambdas") or [])):
            rate = f"r{i}"
            if only is not None or model_source(cfg, model) != "train" or (run_dir(model, rate) / "best.pt").is_file():
                out.append((model, rate))
    return out


def codec_options(model: str, rate: str, text: str, cfg: dict, where: str) -> dict[str, Any]:
    """LearnedCodec options (`source`, `checkpoint`, `zoo_quality`) for one rate tag r<i>."""
    from rsicbench.paths import project_root
    from rsicbench.results import run_dir

    kind, path = parse(text, where)
    i = int(rate[1:])
    if kind == "train":
        return {"source": "train", "checkpoint": str(run_dir(model, rate) / "best.pt")}
    if kind == "checkpoint":
        assert path is not None  # parse always gives checkpoint a path
        p = Path(path.replace("{r}", str(i)))
        return {"source": "checkpoint", "checkpoint": str(p if p.is_absolute() else project_root() / p)}
    qualities = ((cfg.get("models") or {}).get(model) or {}).get("zoo_qualities")
    if qualities is None:
        return {"source": "zoo", "zoo_quality": i + 1}
    if not isinstance(qualities, list) or i >= len(qualities) or not isinstance(qualities[i], int):
        raise SourceError(f"configs/train.yaml: {model}.zoo_qualities = {qualities!r} gives no integer zoo "
                          f"quality for {rate}")
    return {"source": "zoo", "zoo_quality": qualities[i]}


def skip_training(model: str, rate: str, cfg: dict, out: Path) -> bool:
    """True (and source.json written into `out`) when `model`'s source is not `train`."""
    from rsicbench.fsutil import write_json

    text = model_source(cfg, model)
    kind, _ = parse(text, f"configs/train.yaml: {model}.source")
    if kind == "train":
        (Path(out) / "source.json").unlink(missing_ok=True)  # a record from an earlier non-train source
        return False
    opts = codec_options(model, rate, text, cfg, f"configs/train.yaml: {model}.source")
    write_json(Path(out) / "source.json", {"model": model, "rate": rate, "source": text, "options": opts,
                                           "note": "not trained: the evaluation uses these weights"})
    print(json.dumps({"model": model, "rate": rate, "source": text, "trained": False}, sort_keys=True))
    return True


def load_weights(model: str, checkpoint: str | Path):
    """(model, meta) for `checkpoint`; when that file is absent but its folder holds the
    source.json of a skipped training (above), the weights that source names."""
    from rsicbench.fsutil import read_json
    from rsicbench.reproduce.models.checkpoints import load_model, load_zoo

    path = Path(checkpoint)
    record = path.parent / "source.json"
    if path.is_file() or not record.is_file():
        model_obj, meta = load_model(model, path)
        meta.setdefault("source", "train" if meta.get("format") == "rsicbench" else "checkpoint")
        return model_obj, meta
    opts = (read_json(record) or {}).get("options") or {}
    if opts.get("source") == "zoo":
        model_obj, meta = load_zoo(model, int(opts["zoo_quality"]))
    else:
        model_obj, meta = load_model(model, opts["checkpoint"])
    meta["source"] = opts.get("source")
    return model_obj, meta
