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
