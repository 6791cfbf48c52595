"""The lead's core modules: profiles, atomic writes, CLI dispatch, codec and model registries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rsicbench import cli, config, fsutil
from rsicbench.reproduce.codecs.base import Codec, CodecError, create_codec, register_codec


def _project(tmp_path: Path, profile: str = "default") -> Path:
    (tmp_path / "params.yaml").write_text(f"profile: {profile}\nseed: 7\nthreads: 1\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "eval.yaml").write_text(
        "common:\n  workers: 2\n  codecs: {jpeg: [10, 50]}\n"
        "ci:\n  codecs: {jpeg: [50]}\n"
        "default: {}\n"
        "paper:\n  workers: 8\n"
    )
    return tmp_path


def test_settings_merge_profile_over_common(tmp_path, monkeypatch):
    monkeypatch.delenv(config.ENV_PROFILE, raising=False)
    root = _project(tmp_path, "ci")
    s = config.settings("eval", root=root)
    assert s["profile"] == "ci" and s["seed"] == 7 and s["threads"] == 1
    assert s["codecs"] == {"jpeg": [50]} and s["workers"] == 2
    assert config.settings("eval", profile="paper", root=root)["workers"] == 8
    assert config.settings("eval", profile="default", root=root)["codecs"] == {"jpeg": [10, 50]}


def test_env_profile_wins_and_unknown_profile_is_refused(tmp_path, monkeypatch):
    root = _project(tmp_path, "default")
    monkeypatch.setenv(config.ENV_PROFILE, "paper")
    assert config.settings("eval", root=root)["profile"] == "paper"
    monkeypatch.setenv(config.ENV_PROFILE, "huge")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        config.settings("eval", root=root)


def test_bad_config_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(config.ENV_PROFILE, raising=False)
    root = _project(tmp_path)
    (root / "configs" / "bad.yaml").write_text("common: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        config.settings("bad", root=root)
    (root / "configs" / "typo.yaml").write_text("comon: {}\n")
    with pytest.raises(ValueError, match=r"typo\.yaml: unknown top-level keys"):
        config.settings("typo", root=root)
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        config.settings("missing", root=root)


def test_repo_configs_parse_for_every_profile():
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "configs").glob("*.yaml")):
        for profile in config.PROFILES:
            s = config.settings(path.stem, profile=profile, root=root)
            assert s["profile"] == profile


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    fsutil.write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(RuntimeError):
        with fsutil.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 2, "b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left


def test_atomic_write_respects_umask_not_0600(tmp_path):
    target = tmp_path / "shared.txt"
    fsutil.write_text(target, "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~fsutil._UMASK


def test_read_json_names_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{nope")
    with pytest.raises(ValueError, match=r"x\.json: not valid JSON"):
        fsutil.read_json(bad)


def test_cli_help_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "usage: rsicbench" in capsys.readouterr().out
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_every_cli_command_module_exists_and_has_main():
    import importlib

    for name, (module, _) in cli.COMMANDS.items():
        mod = importlib.import_module(module)
        assert callable(getattr(mod, "main", None)), f"{name}: {module} has no main(argv)"


def test_console_script_runs():
    exe = Path(sys.executable).with_name("rsicbench")
    if not exe.exists():
        pytest.skip("rsicbench console script not installed in this environment")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "commands:" in out.stdout


def test_codec_registry_rejects_unknown_and_out_of_range():
    with pytest.raises(CodecError, match="unknown codec 'nope'"):
        create_codec("nope", 1)

    @register_codec("_test_identity")
    class Identity(Codec):
        quality_range = (0, 10)

        def encode(self, image):
            img = self.check_image(image, self.name)
            return bytes(img.shape[:2]) + img.tobytes()

        def decode(self, data):
            import numpy as np

            h, w = data[0], data[1]
            return np.frombuffer(data[2:], dtype=np.uint8).reshape(h, w, 3)

    with pytest.raises(CodecError, match=r"quality=11 outside \[0, 10\]"):
        create_codec("_test_identity", 11)
    import numpy as np

    c = create_codec("_test_identity", 3)
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(c.decode(c.encode(img)), img)
    with pytest.raises(CodecError, match="expected HxWx3 uint8"):
        c.encode(img.astype(np.float32))


def test_model_registry_unknown_name():
    from rsicbench.reproduce.models import create_model

    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
