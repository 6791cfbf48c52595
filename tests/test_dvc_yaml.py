"""dvc.yaml is built from data: every config entry has its stages, every stage's code is in its deps.

DVC resolves this checkout's dvc.yaml (its own Python API, on a copy of dvc.yaml, params.yaml and
configs/; no network, nothing run). The stage lists come from configs/eval.yaml `codecs`,
configs/train.yaml `models`, configs/papers.yaml `variants` / `main_table` and params.yaml
`own_images`; the rate indices are configs/train.yaml `rates` per profile, read by the commands
(`--rates profile`), not stages; a stage's code is the module of its `rsicbench <command>`
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
    want = {f"sweep@{c}" for c in _common("eval")["codecs"]}
    want |= {f"{st}@{m}" for st in ("train", "evaluate", "complexity") for m in _common("train")["models"]}
    want |= {f"papers@{v}" for v in _common("papers")["variants"]}
    main = _common("papers")["main_table"]
    assert set(main) <= set(_common("papers")["variants"])
    want |= {f"evaluate-full@{v}" for v in main}
    want |= {f"own-images@{name}" for name in OWN}
    assert not want - stages.keys(), sorted(want - stages.keys())


def test_learned_stages_take_the_profiles_rates(stages):
    # the rate list is the profile's (configs/train.yaml rates), so -S profile=paper switches it
    learned = [n for n in stages if n.split("@")[0] in ("train", "evaluate", "papers", "evaluate-full")]
    assert len(learned) == 2 * len(_common("train")["models"]) + len(_common("papers")["variants"]) \
        + len(_common("papers")["main_table"])
    for name in learned:
        parts = stages[name]["cmd"].split(" :: ")
        assert all("--rates profile" in part for part in parts), (name, stages[name]["cmd"])


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_trains_its_rates(profile):
    models = settings("train", profile)["models"]
    n = {name: len(entry["lambdas"]) for name, entry in models.items()}
    for name in _common("train")["models"]:
        assert models[name]["rates"] == [0, 1, 2], name
    for name in _common("papers")["variants"]:
        want = list(range(n[name])) if profile == "paper" else [2, 5]
        assert models[name]["rates"] == want, (profile, name)
    if profile == "paper":  # the example: every λ of every paper
        assert len(models["ltchm-full"]["rates"]) == 6
        assert len(models["mgss-full"]["rates"]) == len(models["dmenet-full"]["rates"]) == 7


def test_a_bad_rate_list_names_the_file(tmp_path):
    from rsicbench.config import ConfigError

    root = tmp_path / "proj"
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    text = (root / "configs" / "train.yaml").read_text()
    (root / "configs" / "train.yaml").write_text(text.replace("rates: {models: [0, 1, 2], papers: [2, 5]}",
                                                              "rates: {models: [0, 1, 9], papers: [2, 5]}"))
    with pytest.raises(ConfigError, match=r"train.yaml: rates of bmshj2018-factorized: .*3 lambdas"):
        settings("train", "default", root=root)


def test_every_variant_family_has_its_ablation_stage(stages):
    from rsicbench.reproduce.papers.ablation import PAPERS

    families = {f for _, fams in PAPERS.values() for f in fams}
    assert set(variants_by_family(_common("papers")["variants"])) <= families
    for paper in PAPERS:
        deps = stages[f"ablation-{paper}"]["deps"]
        assert "results/rd/ucmerced-papers" in deps  # covers papers@<variant> of every family


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
        # `rsicbench batch A ... :: B ...` runs several commands: each one's code counts
        commands = [p.split()[0] for p in " ".join(argv[2:]).split(" :: ")] if argv[1] == "batch" else [argv[1]]
        assert all(c in COMMANDS and c != "batch" for c in commands), (name, st["cmd"])
        lacking = sorted(d for c in commands for d in deps_needed(c) if not _covered(d, st["deps"]))
        if lacking:
            missing[name] = lacking
    assert not missing, missing


def test_the_named_gaps_are_closed(stages):
    # the examples: editing these files did not rerun the stage
    for name, files in {"train@bmshj2018-hyperprior": ["reproduce/commands/train.py", "reproduce/training/lambdas.py"],
                        "papers@ltchm-full": ["reproduce/commands/train.py", "reproduce/training/lambdas.py",
                                              "reproduce/commands/evaluate.py"],
                        "sweep@jpeg": ["reproduce/commands/sweep.py", "rsicbench/imageio.py"],
                        "roi-evaluate@jpeg2000": ["metrics/psnr.py", "reproduce/roi/masks.py"]}.items():
        assert all(_covered(f, stages[name]["deps"]) for f in files), name


def test_the_paper_profile_switches_everything():
    """`-S profile=paper` alone: the papers' widths, crops, batch and steps, every λ (above), the
    whole test split for the sweeps, learned and paper evaluations, the classifier's epochs."""
    train, ev = settings("train", "paper"), settings("eval", "paper")
    assert train["arch"] == {"N": 128, "M": 192}
    assert (train["train"]["steps"], train["train"]["batch"], train["train"]["patch"]) == (500000, 16, 256)
    ltchm = train["models"]["ltchm-full"]
    assert ltchm["train"]["steps"] == 200000 and ltchm["train"]["batch"] == 8 and len(ltchm["arch_per_rate"]) == 6
    assert not ev.get("per_class") and not ev.get("max_images")  # 0 / unset: the whole split
    assert not train["eval"].get("per_class") and not train["eval"].get("max_images")
    assert settings("papers", "paper")["eval_set"]["classes"] == 0
    assert settings("downstream", "paper")["epochs"] > settings("downstream", "default")["epochs"]
