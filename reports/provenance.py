"""Provenance: git commit, params and configs, package versions, machine, profile, timestamp.

Everything here is stable between two builds of the same tree except the timestamp, which
sits on its own line (`<p id="built-at">`) so a diff or test can drop it. The timestamp is
$SOURCE_DATE_EPOCH when set (reproducible-builds convention), else the current UTC time;
configs/report.yaml `timestamp: false` leaves it out entirely.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from rsicbench.reports.htmlutil import Section, esc, rel, table

PACKAGES = ("rsicbench", "torch", "torchvision", "compressai", "numpy", "scipy", "pillow", "imagecodecs",
            "scikit-image", "lpips", "piq", "pytorch-msssim", "bjontegaard", "constriction", "timm",
            "matplotlib", "dvc", "pyyaml")


def git_info(root: Path) -> tuple[str, str]:
    """(commit, state) from git; ('unknown', reason) when git or the repo is absent."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=20, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return "unknown", f"git unavailable ({type(e).__name__})"
    return commit, ("tracked files modified since this commit" if dirty else "clean")


def package_versions() -> list[tuple[str, str]]:
    out = []
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def machine() -> list[tuple[str, str]]:
    return [("python", platform.python_version()), ("platform", platform.platform()),
            ("machine", platform.machine()), ("cpu cores", str(os.cpu_count()))]


def timestamp() -> str:
    sde = os.environ.get("SOURCE_DATE_EPOCH")
    t = dt.datetime.fromtimestamp(int(sde), dt.timezone.utc) if sde else dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_block(path: Path, root: Path) -> str:
    name = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "(absent)"
    return f"<details><summary><code>{esc(name)}</code></summary><pre>{esc(text)}</pre></details>"


def section_provenance(ctx, with_timestamp: bool = True) -> Section:
    root = ctx.root
    commit, state = git_info(root)
    rows = [["profile", f"<b>{esc(ctx.profile)}</b>"], ["git commit", f"<code>{esc(commit)}</code> ({esc(state)})"],
            ["results folder", f"<code>{esc(rel(ctx.results, root))}</code>"], ["data folder", f"<code>{esc(rel(ctx.data, root))}</code>"]]
    rows += [[esc(k), esc(v)] for k, v in machine()]
    parts = [table(["item", "value"], rows)]
    parts.append("<h3>Parameters and configs</h3>")
    parts.append(_file_block(root / "params.yaml", root))
    for p in sorted((root / "configs").glob("*.yaml")):
        parts.append(_file_block(p, root))
    parts.append("<h3>Package versions</h3>")
    parts.append(table(["package", "version"], [[esc(n), esc(v)] for n, v in package_versions()]))
    if with_timestamp:
        # the only non-deterministic line of the report
        parts.append(f'\n<p id="built-at">Built at {esc(timestamp())}</p>\n')
    return Section("provenance", "Provenance", "".join(parts), True)
