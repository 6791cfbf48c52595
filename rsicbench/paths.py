"""Where things live: the project root, the local mirror (`../shared`) and output folders."""

from __future__ import annotations

import os
from pathlib import Path

ENV_SHARED = "RSICBENCH_SHARED"
ENV_ROOT = "RSICBENCH_ROOT"


def project_root() -> Path:
    """The folder holding params.yaml: $RSICBENCH_ROOT, else the nearest parent of cwd."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "params.yaml").is_file() and (cand / "pyproject.toml").is_file():
            return cand
    return here


def shared_dir() -> Path | None:
    """The read-only local mirror of data and weights, or None when there is none.

    Order: $RSICBENCH_SHARED, then `<project root>/../shared`.
    """
    env = os.environ.get(ENV_SHARED)
    if env:
        p = Path(env).expanduser().resolve()
        return p if p.is_dir() else None
    p = (project_root() / ".." / "shared").resolve()
    return p if p.is_dir() else None


def shared_path(*parts: str) -> Path | None:
    """A path under the mirror if it exists there, else None."""
    base = shared_dir()
    if base is None:
        return None
    p = base.joinpath(*parts)
    return p if p.exists() else None


def cache_dir() -> Path:
    """Downloads land here ($RSICBENCH_CACHE or ~/.cache/rsicbench)."""
    p = Path(os.environ.get("RSICBENCH_CACHE", Path.home() / ".cache" / "rsicbench"))
    p.mkdir(parents=True, exist_ok=True)
    return p
