"""CI drift gate: an unchanged rerun passes, injected drift beyond tolerance fails."""

from __future__ import annotations

import json

import pytest

from rsicbench.reproduce.gate import compare, flatten, main

TOL = """
gate:
  tolerances:
    - {match: "*.bpp", rel: 0.01}
    - {match: "*psnr*", abs: 0.05}
  ignore: ["*enc_s*"]
"""


@pytest.fixture
def files(tmp_path):
    curve = [
        {"qtag": "q20", "mean": {"bpp": 0.5, "psnr": 30.0, "enc_s": 0.1}},
        {"qtag": "q80", "mean": {"bpp": 1.5, "psnr": 36.0, "enc_s": 0.2}},
    ]
    cur = tmp_path / "jpeg.json"
    cur.write_text(json.dumps(curve))
    tol = tmp_path / "tol.yaml"
    tol.write_text(TOL)
    base = tmp_path / "baseline.json"
    assert main(["--baseline", str(base), "--current", str(cur), "--update"]) == 0
    return cur, base, tol, curve


def _run(cur, base, tol, *extra):
    return main(["--baseline", str(base), "--current", str(cur), "--tolerances", str(tol), *extra])


def test_unchanged_passes(files, capsys):
    cur, base, tol, _ = files
    assert _run(cur, base, tol) == 0
    assert "PASS" in capsys.readouterr().out


def test_drift_beyond_tolerance_fails(files, capsys):
    cur, base, tol, curve = files
    curve[1]["mean"]["psnr"] = 35.9  # 0.1 dB > 0.05
    curve[0]["mean"]["enc_s"] = 99.0  # ignored: machine-dependent
    cur.write_text(json.dumps(curve))
    assert _run(cur, base, tol) == 1
    out = capsys.readouterr().out
    assert "DRIFT" in out and "[q80].mean.psnr" in out and "enc_s" not in out and "FAIL" in out


def test_drift_within_tolerance_passes(files):
    cur, base, tol, curve = files
    curve[0]["mean"]["bpp"] = 0.504  # 0.8 % < 1 %
    curve[0]["mean"]["psnr"] = 30.04
    cur.write_text(json.dumps(curve))
    assert _run(cur, base, tol) == 0


def test_missing_and_new_keys(files, capsys):
    cur, base, tol, curve = files
    cur.write_text(json.dumps([curve[0], {"qtag": "q90", "mean": {"bpp": 2.0}}]))
    assert _run(cur, base, tol) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and "NEW" in out
    cur.write_text(json.dumps(curve + [{"qtag": "q90", "mean": {"bpp": 2.0}}]))
    assert _run(cur, base, tol) == 0  # new keys are reported, not fatal...
    assert _run(cur, base, tol, "--strict") == 1  # ...unless --strict


def test_nan_and_flatten():
    assert flatten({"a": [{"qtag": "x", "v": 1}, 2], "s": "text", "b": True}) == {"a[x].v": 1.0, "a[1]": 2.0}
    rows, ok = compare({"k": float("nan")}, {"k": float("nan")}, [])
    assert ok and not rows
    rows, ok = compare({"k": 1.0}, {"k": float("nan")}, [])
    assert not ok and rows[0]["status"] == "DRIFT"


def test_bad_baseline(tmp_path, files):
    cur, _, tol, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert _run(cur, bad, tol) == 2
    with pytest.raises(FileNotFoundError, match="missing.json"):
        _run(cur, tmp_path / "missing.json", tol)
