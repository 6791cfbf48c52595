"""dvc.yaml is built from data: every config entry has its stages, every stage's code is in its deps.

DVC resolves this checkout's dvc.yaml (its own Python API, on a copy of dvc.yaml, params.yaml and
configs/; no network, nothing run). The stage lists come from configs/eval.yaml `codecs`,
configs/train.yaml `models`, configs/papers.yaml `variants` / `main_table` and params.yaml
`own_images` / `rates`; a stage's code is the module of its `rsicbench <command>`
(rsicbench/cli.py COMMANDS) plus every module that one imports inside the package.
"""

from __future__ import annotations

import ast
import re
import shutil
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from rsicbench.cli import COMMANDS
from rsicbench.config import PROFILES, settings, variants_by_family

REPO = Path(__file__).resolve().parents[1]
LINKED = ("datasets", "metrics", "reproduce", "downstream", "reports")  # rsicbench/<name> -> ../<name>
OWN = {"mytiles": {"dir": "imgs", "tile": 256}}


def _resolve(tmp: Path, profile: str, own: dict | None = None) -> dict[str, dict]:
    """name -> {cmd, deps, outs} as DVC resolves dvc.yaml under `profile` (and params `own_images`)."""
    from dvc.repo import Repo

    root = tmp / f"repo-{profile}"
    root.mkdir(parents=True)
    Repo.init(str(root), no_scm=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "configs", root / "configs")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = profile
    if own is not None:
        params["own_images"] = own
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with Repo(str(root)) as repo:
        return {s.name: {"cmd": s.cmd, "deps": [str(d.def_path) for d in s.deps],
                               "outs": [str(o.def_path) for o in s.outs]} for s in repo.index.stages}


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> dict[str, dict]:
    return _resolve(tmp_path_factory.mktemp("dvc"), "default", OWN)


def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _common(area: str) -> dict:
    return yaml.safe_load((REPO / "configs" / f"{area}.yaml").read_text())["common"]


# ------------------------------------------------------------------ every config entry has its stages
@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "default"])  # default: the fixture
def test_resolves_under_every_profile(tmp_path, stages, profile):
    other = _resolve(tmp_path, profile, OWN)
    assert other.keys() == stages.keys()
    assert all(other[n]["cmd"] == s["cmd"] and other[n]["outs"] == s["outs"] for n, s in stages.items())


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_do_not_change_the_lists(profile):
    # dvc.yaml reads the `common` lists; a profile changing one would run stages DVC does not know
    assert settings("eval", profile)["codecs"] == _common("eval")["codecs"]
    assert settings("papers", profile)["variants"].keys() == _common("papers")["variants"].keys()
    baselines = set(_common("train")["models"])
    variants = set(_common("papers")["variants"])
    assert set(settings("train", profile)["models"]) == baselines | variants


def test_every_codec_baseline_and_variant_has_its_stages(stages):
    rates = _params()["rates"]
    want = {f"sweep@{c}" for c in _common("eval")["codecs"]}
    train_cfg = settings("train", "default")["models"]
    for model in _common("train")["models"]:
        assert max(rates["models"]) < len(train_cfg[model]["lambdas"]), model
        want |= {f"complexity@{model}"}
        want |= {f"{st}@{model}-{i}" for st in ("train", "evaluate") for i in rates["models"]}
    for variant in _common("papers")["variants"]:
        assert max(rates["papers"]) < len(train_cfg[variant]["lambdas"]), variant
        want |= {f"{st}@{variant}-{i}" for st in ("train-papers", "evaluate-papers") for i in rates["papers"]}
    main = _common("papers")["main_table"]
    assert set(main) <= set(_common("papers")["variants"])
    want |= {f"evaluate-full@{v}-{i}" for v in main for i in rates["papers"]}
    want |= {f"own-images@{name}" for name in OWN}
    assert not want - stages.keys(), sorted(want - stages.keys())


def test_every_variant_family_has_its_ablation_stage(stages):
    from rsicbench.reproduce.papers.ablation import PAPERS

    families = {f for _, fams in PAPERS.values() for f in fams}
    assert set(variants_by_family(_common("papers")["variants"])) <= families
    for paper in PAPERS:
        deps = stages[f"ablation-{paper}"]["deps"]
        assert "results/rd/ucmerced-papers" in deps  # covers evaluate-papers@<variant>-<i> of every family


def test_shipped_params_have_no_own_images_stage():
    assert _params()["own_images"] == {}, "the shipped entry is empty: no own-images stage by default"


# ------------------------------------------------------------------ every stage's code is in its deps
def _module_file(mod: str) -> Path | None:
    parts = mod.split(".")
    if parts[0] != "rsicbench":
        return None
    rel = parts[1:]
    p = REPO.joinpath(*rel) if rel and rel[0] in LINKED else REPO.joinpath("rsicbench", *rel)
    if p.with_suffix(".py").is_file():
        return p.with_suffix(".py")
    return p / "__init__.py" if (p / "__init__.py").is_file() else None


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(REPO).with_suffix("").parts)
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(["rsicbench", *(parts[1:] if parts[0] == "rsicbench" else parts)])


_NAMED = re.compile(r"^rsicbench(\.\w+)+$")


def _imports(f: Path, mod: str) -> set[str]:
    """Package modules `f` imports anywhere (function-level too) or names as a string
    (import_module tables such as the codec registry's BUILTIN_MODULES)."""
    pkg = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (n.level - 1)]
                base = ".".join(up + ([base] if base else []))
            out |= {base} | {f"{base}.{a.name}" for a in n.names}
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and _NAMED.match(n.value):
            out.add(n.value)
    return {m for m in out if m.startswith("rsicbench")}


@lru_cache(maxsize=None)
def code_of(mod: str) -> frozenset[Path]:
    """Files of `mod` and everything it imports inside the package, parents' __init__ included;
    the model registry imports models by relative name, so reaching it pulls in all of models/."""
    seen: set[str] = set()
    todo, files = [mod], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += [".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1)]
        f = _module_file(m)
        if f is None:
            continue
        files.add(f)
        todo += _imports(f, m)
        if f == REPO / "reproduce" / "models" / "registry.py":
            todo += [_module_name(g) for g in (REPO / "reproduce" / "models").rglob("*.py")]
    return frozenset(files)


@lru_cache(maxsize=None)
def _only_docstring(f: Path) -> bool:
    body = ast.parse(f.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _required_dep(f: Path) -> str:
    """The dep that must cover `f`: its sub-package directory (reproduce/<sub>, metrics, ...),
    `rsicbench` for the core modules; command modules and reproduce/__init__.py as files."""
    rel = f.relative_to(REPO)
    if rel.parts[0] == "reproduce":
        return rel.as_posix() if len(rel.parts) == 2 or rel.parts[1] == "commands" else "/".join(rel.parts[:2])
    return rel.parts[0]


@lru_cache(maxsize=None)
def deps_needed(command: str) -> frozenset[str]:
    """The deps that must cover the code of `rsicbench <command>` (docstring-only __init__s aside)."""
    return frozenset(_required_dep(f) for f in code_of(COMMANDS[command][0]) if not _only_docstring(f))


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_code_closure_finds_registry_modules():
    files = {f.relative_to(REPO).as_posix() for f in code_of("rsicbench.reproduce.commands.sweep")}
    assert {"reproduce/commands/sweep.py", "reproduce/codecs/classical.py", "rsicbench/config.py"} <= files
    assert "reproduce/models/ltchm/model.py" in {f.relative_to(REPO).as_posix()
                                                  for f in code_of("rsicbench.reproduce.commands.train")}


def test_every_stage_code_is_in_its_deps(stages):
    missing = {}
    for name, st in stages.items():
        argv = st["cmd"].split()
        assert argv[0] == "rsicbench" and argv[1] in COMMANDS, f"{name}: {st['cmd']!r} is not an rsicbench command"
        lacking = sorted(d for d in deps_needed(argv[1]) if not _covered(d, st["deps"]))
        if lacking:
            missing[name] = lacking
    assert not missing, missing


def test_the_named_gaps_are_closed(stages):
    # the examples: editing these files did not rerun the stage
    for name, files in {"train@bmshj2018-hyperprior-0": ["reproduce/commands/train.py", "reproduce/training/lambdas.py"],
                        "train-papers@ltchm-full-2": ["reproduce/commands/train.py", "reproduce/training/lambdas.py"],
                        "sweep@jpeg": ["reproduce/commands/sweep.py", "rsicbench/imageio.py"],
                        "roi-evaluate@jpeg2000-landsat8": ["metrics/psnr.py", "reproduce/roi/masks.py"]}.items():
        assert all(_covered(f, stages[name]["deps"]) for f in files), name
