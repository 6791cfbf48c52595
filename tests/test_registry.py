"""The lazy model registry: its static name->module table matches what the modules register."""

import json
import subprocess
import sys

import pytest

from rsicbench.reproduce.models import registry


def test_table_matches_what_modules_register():
    registry.load_all()
    origins = {n: m for n, m in registry.registered_by().items() if m.startswith(registry._PKG)}
    table = {n: registry._PKG + m for n, m in registry.MODEL_MODULES.items()}
    missing = sorted(set(origins) - set(table))
    assert not missing, f"registered but absent from registry.MODEL_MODULES: {missing}"
    wrong = {n: (table[n], origins.get(n)) for n in table if origins.get(n) != table[n]}
    assert not wrong, f"MODEL_MODULES names the wrong module (table, actual): {wrong}"
    assert set(registry.list_models()) >= set(origins)
    assert registry.list_models() == sorted(registry.list_models())


def test_create_imports_only_its_module_and_listing_imports_none():
    code = (
        "import json, sys\n"
        "from rsicbench.reproduce.models import registry as r\n"
        "names = r.list_models()\n"
        "after_list = sorted(m for m in sys.modules if m.startswith(r._PKG))\n"
        "net = r.create_model('bmshj2018-hyperprior', N=8, M=8)\n"
        "after_create = sorted(m for m in sys.modules if m.startswith(r._PKG))\n"
        "print(json.dumps([names, after_list, after_create, type(net).__name__]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    names, after_list, after_create, cls = json.loads(p.stdout.strip().splitlines()[-1])
    assert "bmshj2018-hyperprior" in names and "ltchm" in names
    assert after_list == [registry._PKG + "registry"]
    assert after_create == [registry._PKG + "baselines", registry._PKG + "registry"]
    assert cls == "ScaleHyperprior"


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'no-such-model'.*bmshj2018-hyperprior"):
        registry.create_model("no-such-model")


def test_register_twice_is_refused_and_origin_recorded():
    name = "test-registry-dummy"
    try:
        registry.register_model(name)(lambda **cfg: cfg)
        assert registry.registered_by()[name] == __name__
        assert name in registry.list_models()
        assert registry.create_model(name, a=1) == {"a": 1}
        with pytest.raises(ValueError, match="registered twice"):
            registry.register_model(name)(lambda **cfg: cfg)
    finally:
        registry._MODELS.pop(name, None)
        registry._ORIGIN.pop(name, None)


def test_a_missing_listed_model_module_is_an_error_naming_it(monkeypatch):
    monkeypatch.setitem(registry.MODEL_MODULES, "test-missing-model", "no_such_family.model")
    with pytest.raises(ModuleNotFoundError, match=r"rsicbench\.reproduce\.models\.no_such_family\.model is missing"
                                                  r".*test-missing-model"):
        registry.create_model("test-missing-model")
    with pytest.raises(ModuleNotFoundError, match="no_such_family"):
        registry.load_all()


def test_a_missing_builtin_codec_module_is_an_error_naming_it(monkeypatch):
    from rsicbench.reproduce.codecs import base

    monkeypatch.setattr(base, "BUILTIN_MODULES", (*base.BUILTIN_MODULES, "rsicbench.reproduce.codecs.no_such_codec"))
    with pytest.raises(ModuleNotFoundError, match=r"codec module rsicbench\.reproduce\.codecs\.no_such_codec is missing"):
        base.list_codecs()


def test_arch_drops_only_a_width_the_model_lacks_and_refuses_any_other_unknown_key():
    """The profiles give every model N and M; Cheng2020, LTCHM and DMENet take no M, so it is
    dropped for them (and recorded as built); a misspelt key is an error for every model."""
    assert registry.model_arch("cheng2020-anchor", {"N": 8, "M": 12}) == {"N": 8}
    assert registry.model_arch("mbt2018-mean", {"N": 8, "M": 12}) == {"N": 8, "M": 12}
    assert registry.model_arch("ltchm-full", {"N": 8, "M": 12, "ep_hidden": 16}) == {"N": 8, "ep_hidden": 16}
    assert registry.model_arch("dmenet-baseline", {"N": 8, "M": 12}) == {"N": 8}
    assert registry.model_arch("mgss-full", {"N": 8, "M": 12}) == {"N": 8, "M": 12}
    net = registry.create_model("cheng2020-anchor", N=8, M=12)
    assert net.g_a[0].conv1.weight.shape[0] == 8
    for name, bad in (("cheng2020-anchor", {"N": 8, "n": 64}), ("mbt2018-mean", {"N": 8, "M": 8, "K": 3}),
                      ("cheng2020-gmm", {"N": 8, "k": 3}), ("dmenet-full", {"N": 8, "width": 64})):
        key = next(k for k in bad if k not in ("N", "M"))
        with pytest.raises(ValueError, match=f"{name}.*takes no setting '{key}'"):
            registry.create_model(name, **bad)


def test_runs_recorded_with_a_width_the_model_lacks_are_the_same_runs():
    """Checkpoints written before model_arch kept the profile-wide M for Cheng2020/LTCHM/DMENet:
    resuming one is not a config change (it would set hours of training aside)."""
    from rsicbench.config import settings
    from rsicbench.reproduce.training.run_config import run_config
    from rsicbench.reproduce.training.train import _plain, config_changes

    for model in ("cheng2020-anchor", "ltchm-full", "dmenet-full"):
        tc = run_config(model, "r0", settings("train", "ci"))
        assert "M" not in tc.arch and tc.arch["N"] == 16
        old = {"model_name": model, "arch": {**tc.arch, "M": 24}, "config": {**_plain(tc.__dict__), "arch": {**tc.arch, "M": 24}}}
        assert config_changes(old, tc) == {}
        wider = {**old, "arch": {**tc.arch, "N": 32}, "config": {**_plain(tc.__dict__), "arch": {**tc.arch, "N": 32}}}
        assert set(config_changes(wider, tc)) == {"arch"}
