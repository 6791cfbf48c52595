"""Shared fixtures: tiny generated images, and the local mirror when it is present."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rsicbench.paths import shared_dir

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Tests never download: dataset/weight sources on the network are skipped (rsicbench.datasets.
# sources). The one test that must reach the package registry unsets it itself.
os.environ["RSICBENCH_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def shared():
    """The ../shared mirror; tests that need it are skipped, with the reason, when absent."""
    d = shared_dir()
    if d is None:
        pytest.skip("../shared (the local data mirror) is absent; set RSICBENCH_SHARED to use one")
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def smooth_image(rng):
    """A 64x64 RGB image with structure (gradients + texture), so codecs behave realistically."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    base = np.stack([x * 3, y * 3, (x + y) * 1.5], axis=2)
    img = base + rng.normal(0, 12, size=base.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def project_copy(tmp_path, monkeypatch):
    """A project root at tmp_path/proj with this checkout's params.yaml, pyproject.toml and
    configs/ ($RSICBENCH_ROOT points at it, one torch thread): results/ land there, not here."""
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "proj"
    shutil.copytree(repo / "configs", root / "configs")
    for name in ("params.yaml", "pyproject.toml"):
        shutil.copy(repo / name, root / name)
    monkeypatch.setenv("RSICBENCH_ROOT", str(root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return root


@pytest.fixture
def ci_train_project(project_copy, monkeypatch):
    """A project copy at the ci profile with two 72x72 training images in imgs/, cwd = its root."""
    from rsicbench.imageio import write_png

    rng = np.random.default_rng(5)
    for i in range(2):
        write_png(project_copy / "imgs" / f"im{i}.png", rng.integers(0, 255, (72, 72, 3), dtype=np.uint8))
    monkeypatch.setenv("RSICBENCH_PROFILE", "ci")
    monkeypatch.chdir(project_copy)
    return project_copy
