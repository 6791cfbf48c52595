"""scripts/lint.sh (ruff + mypy, configured in pyproject.toml) passes, and mypy walks every
module of the package, including the sub-packages reached through the rsicbench/<name> links."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package_modules() -> int:
    """.py files under rsicbench/, following the links to the top-level folders."""
    return sum(1 for _, _, files in os.walk(ROOT / "rsicbench", followlinks=True)
               for f in files if f.endswith(".py"))


@pytest.mark.slow  # a cold mypy cache takes ~25 s of CPU
def test_lint_and_type_check_pass():
    missing = [m for m in ("ruff", "mypy") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed; `pip install -e .[test]` (scripts/setup.sh) adds them")
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(["bash", str(ROOT / "scripts" / "lint.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"scripts/lint.sh found problems:\n{out[-6000:]}"
    checked = re.search(r"no issues found in (\d+) source files", out)
    assert checked, out[-2000:]
    assert int(checked.group(1)) == _package_modules(), "mypy did not walk every rsicbench module"


def test_config_reports_undefined_names_and_bad_calls(tmp_path):
    """The configured rule set is not empty: both tools flag a scratch module's real bugs."""
    if importlib.util.find_spec("ruff") is None or importlib.util.find_spec("mypy") is None:
        pytest.skip("ruff or mypy not installed; `pip install -e .[test]` (scripts/setup.sh) adds them")
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x: int) -> int:\n    return x + undefined_name\n\n\nf(1, 2)\n")
    cfg = str(ROOT / "pyproject.toml")
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", cfg, str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert ruff.returncode == 1 and "F821" in ruff.stdout, ruff.stdout + ruff.stderr
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--config-file", cfg, "--no-incremental", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert mypy.returncode == 1, mypy.stdout + mypy.stderr
    assert "[name-defined]" in mypy.stdout and "[call-arg]" in mypy.stdout, mypy.stdout
