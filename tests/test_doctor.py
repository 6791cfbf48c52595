"""`rsicbench doctor` (reproduce/papers/readiness.py): a real step and a real code of a tiny model,
the projection arithmetic, and the report's "Paper-profile readiness" section from its JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rsicbench.config import settings
from rsicbench.reproduce.papers import readiness
ROOT = Path(__file__).resolve().parents[1]
MODEL = "bmshj2018-hyperprior"


@pytest.fixture(scope="module")
def doctored(tmp_path_factory):
    """The doctor on one ci-width model at batch 1 (the ci profile's batch is 4: scaled x4)."""
    from rsicbench.reproduce.commands.doctor import main

    root = tmp_path_factory.mktemp("doctor")
    out = root / "results" / "paper_readiness.json"
    rc = main(["--profile", "ci", "--models", MODEL, "--batch", "1", "--crop", "64", "--in-process",
               "--data-root", str(root / "no-data"), "--out", str(out)])
    assert rc == 0
    return root, json.loads(out.read_text(encoding="utf-8"))


def test_doctor_measures_and_projects(doctored):
    _, d = doctored
    assert d["profile"] == "ci" and d["device"] in ("cpu", "cuda") and d["batch_override"] == 1
    (row,) = d["models"]
    assert row["model"] == MODEL and row["family"] == "CompressAI" and row["rates"] == 3
    (m,) = row["measurements"]
    tc = readiness.plan(MODEL, "ci").configs[0]
    assert (m["batch"], m["patch"], m["paper_batch"], m["scale"]) == (1, 64, tc.batch, tc.batch)
    assert m["arch"] == tc.arch and m["params"] > 1000
    for k in ("step_wall_s", "step_cpu_s", "first_step_wall_s", "encode_s", "decode_s", "first_code_s"):
        assert 0 < m[k] < 60, k
    assert m["rss_peak_mb"] > 0 and m["rss_peak_mb"] >= m["rss_before_step_mb"]
    assert m["codec_bytes"] > 0 and m["codec_side"] == 256
    assert m["data"].startswith("seeded random crops") and "manifest" in m["data"]  # no split here: says so
    assert row["eval_images"] is None and row["projected_eval_s"] is None and "not available" in row["eval_note"]
    steps = row["steps_per_rate"]
    assert steps == [tc.steps] * 3
    assert row["projected_train_s"] == pytest.approx(sum(steps) * m["step_wall_s"] * m["scale"])
    assert row["projected_total_s"] == pytest.approx(row["projected_train_s"])


def test_projection_adds_rates_times_eval_images(doctored):
    _, d = doctored
    (m,) = d["models"][0]["measurements"]
    p = readiness.plan(MODEL, "ci")
    got = readiness.project(p, {readiness._arch_key(p.configs[0].arch): m}, 7)
    train = 3 * p.configs[0].steps * m["step_wall_s"] * m["scale"]
    assert got["projected_train_s"] == pytest.approx(train)
    assert got["projected_eval_s"] == pytest.approx(3 * 7 * (m["encode_s"] + m["decode_s"]))
    assert got["projected_total_s"] == pytest.approx(train + got["projected_eval_s"])


def test_paper_plan_reads_the_profile():
    """LTCHM's width changes with λ under `paper` (arch_per_rate): two widths to measure."""
    p = readiness.plan("ltchm-full", "paper")
    cfg = settings("train", "paper", ROOT)["models"]["ltchm-full"]
    assert len(p.configs) == len(cfg["lambdas"]) and p.source == "configs/train.yaml"
    assert len({readiness._arch_key(tc.arch) for tc in p.configs}) == len({c["N"] for c in cfg["arch_per_rate"]}) == 2
    roi = readiness.plan("mroi-cfhpm", "paper")
    assert roi.dataset == settings("roi", "paper", ROOT)["mroi"]["dataset"] and "roi.yaml" in roi.source
    assert set(readiness.default_models()) >= {"ltchm-full", "ltchm-baseline", "mgss-full", "mgss-baseline",
                                                "dmenet-full", "dmenet-baseline", "mroi-cfhpm", "cfhpm"}


def test_unknown_model_is_one_clear_error(capsys):
    from rsicbench.cli import main

    assert main(["doctor", "--models", "nope"]) == 2
    err = capsys.readouterr().err
    assert "configs/train.yaml" in err and "'nope'" in err and "Traceback" not in err


def _report(root: Path):
    from rsicbench.reports.build import build_report

    cfg = copy.deepcopy(settings("report", "ci", ROOT))
    out = root / "report" / "index.html"
    done = build_report(root, root / "results", root / "data", root / "claims", out, "ci", cfg, with_timestamp=False)
    return next(s for s in done if s.id == "readiness")


def test_report_renders_the_table(doctored):
    root, d = doctored
    sec = _report(root)
    assert sec.produced and sec.title == "Paper-profile readiness"
    assert f"<td>{MODEL}<br>" in sec.body and "rsicbench doctor --profile paper" in sec.body
    assert sec.body.count("<tr><td>") == len(d["models"]) and "Not produced" not in sec.body


def test_report_without_file_names_the_command(tmp_path):
    sec = _report(tmp_path)
    assert not sec.produced and "Not produced by this run" in sec.body and "rsicbench doctor" in sec.body
    assert "<td>" not in sec.body


def test_report_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "results" / "paper_readiness.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"models": [{"model": "x"}]}')
    with pytest.raises(ValueError, match=r"paper_readiness\.json: expected 'models'"):
        _report(tmp_path)
