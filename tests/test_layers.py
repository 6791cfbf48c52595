"""The package layers hold: every import inside the package (module level or inside a
function) goes down the order below or stays in its own sub-package, so there are no
circles between sub-packages and a newcomer can read reproduce/ bottom-up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# reproduce/ sub-packages, lowest first (each __init__.py says the same)
LAYERS = ["coding", "roi", "models", "codecs", "training", "evaluation", "papers", "commands"]
# the core may not import reproduce/ at all; downstream/ and reports/ sit above evaluation/papers
CORE = ["rsicbench", "metrics", "datasets"]
ABOVE_REPRODUCE = {"downstream": "evaluation", "reports": "papers"}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["rsicbench", "reproduce"] or len(parts) < 3:
        return None
    return parts[2] if parts[2] in LAYERS else None


def _py_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_reproduce_module_sits_in_a_layer():
    stray = [p.relative_to(ROOT).as_posix() for p in (ROOT / "reproduce").glob("*.py") if p.name != "__init__.py"]
    assert stray == [], f"modules outside the sub-packages: {stray}"
    assert sorted(p.name for p in (ROOT / "reproduce").iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS)
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / "reproduce" / layer / "__init__.py").read_text()))
        assert doc, f"reproduce/{layer}/__init__.py has no docstring saying what lives there"


@pytest.mark.parametrize("layer", LAYERS)
def test_no_upward_imports(layer):
    bad = []
    for path in _py_files(f"reproduce/{layer}"):
        for line, module in _imports(path):
            target = _layer_of(module)
            if target is not None and LAYERS.index(target) > LAYERS.index(layer):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({target} is above {layer})")
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("folder", CORE + sorted(ABOVE_REPRODUCE))
def test_core_and_consumers_stay_below_their_limit(folder):
    limit = ABOVE_REPRODUCE.get(folder)
    files = [p for p in _py_files(folder) if not (folder == "rsicbench" and p.name == "cli.py")]
    files = [p for p in files if folder != "rsicbench" or p.parent == ROOT / "rsicbench"]  # not the links
    bad = []
    for path in files:
        for line, module in _imports(path):
            if not module.startswith("rsicbench.reproduce"):
                continue
            target = _layer_of(module)
            if limit is None or target is None or LAYERS.index(target) > LAYERS.index(limit):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == [], "\n".join(bad)


def test_an_upward_import_is_caught(tmp_path):
    """The check itself can fail: an injected upward import is reported."""
    fake = tmp_path / "m.py"
    fake.write_text("def f():\n    from rsicbench.reproduce.commands.sweep import main\n")
    found = [m for _, m in _imports(fake) if _layer_of(m) == "commands"]
    assert found and LAYERS.index("commands") > LAYERS.index("coding")
