"""The package layout tools rely on: rsicbench/<name> links to the top-level folders, every
module importable from a plain checkout (no install), and the install exposing only
`rsicbench` (no top-level `datasets`/`metrics`/... shadowing PyPI packages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINKED = ("datasets", "metrics", "reproduce", "downstream", "reports")

# Runs in a child: drop the editable install's import hook, then find every module from the
# checkout alone; prints {module: origin or null}.
_FIND_FROM_CHECKOUT = """
import importlib, importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv[1])
importlib.invalidate_caches()
names = json.loads(sys.argv[2])
print(json.dumps({n: getattr(importlib.util.find_spec(n), "origin", None) for n in names}))
"""


def _modules() -> dict[str, Path]:
    """module name -> file, walking rsicbench/ through its links."""
    out = {}
    for d, dirs, files in os.walk(ROOT / "rsicbench", followlinks=True):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        parts = Path(d).relative_to(ROOT).parts
        for f in files:
            if f.endswith(".py"):
                name = ".".join(parts if f == "__init__.py" else (*parts, f[:-3]))
                out[name] = Path(d) / f
    return out


def test_links_point_to_the_top_level_folders():
    for name in LINKED:
        link = ROOT / "rsicbench" / name
        assert link.is_symlink(), f"{link} should be a link to ../{name} (git add it)"
        assert os.readlink(link) == f"../{name}", f"{link} -> {os.readlink(link)}"
        assert (link / "__init__.py").is_file(), f"{link}/__init__.py missing"


def test_every_module_resolves_from_a_plain_checkout():
    mods = _modules()
    assert len(mods) > 100 and "rsicbench.reproduce.evaluation.engine" in mods
    run = subprocess.run([sys.executable, "-I", "-c", _FIND_FROM_CHECKOUT, str(ROOT), json.dumps(sorted(mods))],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    wrong = {n: o for n, o in found.items() if o is None or Path(o).resolve() != mods[n].resolve()}
    assert not wrong, f"modules not found from the checkout (or found elsewhere): {wrong}"


def test_install_exposes_only_rsicbench(tmp_path):
    code = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None "
            f"for m in {list(LINKED)!r}}})); import rsicbench.reproduce.evaluation")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    # a PyPI package of the same name may exist; ours must not be what is found
    for m, present in found.items():
        if present:
            spec = subprocess.run([sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({m!r}).origin)"],
                                  capture_output=True, text=True, timeout=60, cwd=tmp_path).stdout.strip()
            assert not Path(spec).resolve().is_relative_to(ROOT), f"top-level {m!r} importable from {spec}"
