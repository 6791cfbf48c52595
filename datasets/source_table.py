"""`rsicbench data sources`: each dataset's and weight's sources in order, and which one was used.

Reads only local files (the fetch records `data/<ds>/aux/fetch.json`, the local weight
files); it never downloads.
"""

from __future__ import annotations

import json
from typing import Any

from rsicbench.datasets.sources import Source, SourceAbsent

FETCHED = ("ucmerced", "landsat8", "samples")


def _rows(sources: list[Source]) -> list[str]:
    return [f"  {i}. {s.kind:<8} {s.location}\n       pin: {s.pin or '-'}   check: {s.checksum or '-'}"
            for i, s in enumerate(sources, 1)]


def _used_by_fetch(ds) -> str:
    path = ds.aux_dir / "fetch.json"
    try:
        rec = json.loads(path.read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError):
        return "not fetched yet"
    if not isinstance(rec, dict):
        return f"recorded before source tracking ({rec!r})" if rec else "not recorded"
    return f"{rec.get('kind')} {rec.get('location')}" + (f" @ {rec['pin']}" if rec.get("pin") else "")


def _weights_now(sources: list[Source]) -> str:
    """The first local weight source that works now (no download is attempted)."""
    from rsicbench.datasets.base import DatasetError

    for s in sources:
        if s.network:
            return ("no local file; the next load tries the public sources "
                    "(a cached archive is used without connecting)")
        try:
            _, desc = s.get()
            return f"{s.kind} {desc}"
        except SourceAbsent:
            continue
        except DatasetError as e:
            return f"error: {e}"
    return "none"


def print_sources(data_root: Any, cfg: dict) -> None:
    from rsicbench.datasets import get_dataset
    from rsicbench.metrics.lpips_alex import ENV_WEIGHTS, _config_path
    from rsicbench.metrics.lpips_weights import weight_sources

    for name in FETCHED:
        ds = get_dataset(name, data_root, cfg)
        print(f"{name}  (stage fetch@{name}; last fetch used: {_used_by_fetch(ds)})")
        print("\n".join(_rows(ds.sources())))
    ws = weight_sources(None, ENV_WEIGHTS, _config_path())
    print(f"lpips-alexnet weights  (metrics; would load now: {_weights_now(ws)})")
    print("\n".join(_rows(ws)))
