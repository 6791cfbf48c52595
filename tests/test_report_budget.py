"""The undertrained rule (reports/budget.py jpeg_check, docs/report.md "Learned rows") on
hand-checkable curves; the report-level checks (budget columns in every table, verdicts) are
in tests/test_report.py::test_learned_rows_carry_budget_and_undertrained."""

from __future__ import annotations

import math

import numpy as np

from rsicbench.reports.budget import NOT_COMPARABLE, NOT_UNDERTRAINED, UNDERTRAINED, jpeg_check

JPEG = [(0.25, 26.0), (0.5, 29.0), (1.0, 32.0), (2.0, 35.0)]  # +3 dB per doubling: linear in log(bpp)


def test_below_jpeg_everywhere_is_undertrained():
    status, why = jpeg_check([(0.3, 26.5), (0.7, 30.0), (1.5, 33.0)], JPEG)
    # JPEG at 0.3 bpp: 26 + 3*log2(1.2) = 26.79 dB, so every point is below
    assert status == UNDERTRAINED and "all 3 point(s)" in why


def test_above_jpeg_at_one_point_is_not_undertrained():
    at_07 = 29.0 + 3 * math.log2(0.7 / 0.5)  # JPEG interpolated in log-bpp at 0.7 bpp
    status, why = jpeg_check([(0.3, 26.5), (0.7, at_07 + 0.01), (1.5, 33.0)], JPEG)
    assert status == NOT_UNDERTRAINED and "1 of 3" in why
    # the interpolation is in log(bpp) (30.46 dB at 0.7 bpp); linear in bpp would give 30.2 dB
    # and call a 30.3 dB point above JPEG
    assert float(np.interp(0.7, [0.5, 1.0], [29.0, 32.0])) < 30.3 < at_07
    assert jpeg_check([(0.7, 30.3)], JPEG)[0] == UNDERTRAINED


def test_outside_jpeg_range_is_not_comparable():
    status, why = jpeg_check([(0.1, 10.0), (3.0, 20.0)], JPEG)
    assert status == NOT_COMPARABLE and "no point within" in why
    # points outside are listed as not comparable; the rule runs on the points inside
    status, why = jpeg_check([(0.1, 40.0), (0.5, 20.0)], JPEG)
    assert status == UNDERTRAINED and "1 point(s) outside" in why and "not comparable" in why
    assert jpeg_check([(0.5, 20.0)], [(0.5, 29.0)])[0] == NOT_COMPARABLE  # one JPEG point is no curve
    assert jpeg_check([(0.5, 20.0)], [])[0] == NOT_COMPARABLE


def test_learned_codec_records_its_training_budget(tmp_path):
    """What the report's budget column reads: describe()["train"] from our checkpoint's config;
    None for a checkpoint that does not record one (CompressAI's)."""
    import torch
    from compressai import models as cm

    from rsicbench.reproduce.codecs.base import create_codec

    torch.manual_seed(0)
    m = cm.ScaleHyperprior(16, 24)
    m.update(force=True)
    ours = tmp_path / "best.pt"
    torch.save({"model": m.state_dict(), "model_name": "bmshj2018-hyperprior", "arch": {"N": 16, "M": 24},
                "lambda": 0.013, "step": 35, "config": {"steps": 40, "patch": 96, "batch": 8, "lr": 1e-3, "seed": 0}},
               ours)
    d = create_codec("bmshj2018-hyperprior", 0, checkpoint=str(ours), threads=1).describe()
    assert d["train"] == {"steps": 40, "patch": 96, "batch": 8, "lr": 1e-3} and d["step"] == 35
    assert d["source"] == "checkpoint" and d["arch"] == {"N": 16, "M": 24}
    foreign = tmp_path / "compressai.pth.tar"
    torch.save({"state_dict": m.state_dict(), "epoch": 3}, foreign)
    assert create_codec("bmshj2018-hyperprior", 0, checkpoint=str(foreign), threads=1).describe()["train"] is None


def test_a_fine_tuned_point_counts_its_anchors_steps(tmp_path):
    """train.finetune: a rate point that started from the anchor's weights at step 3000 and
    trained 1000 more has a budget of 4000 steps, and the budget says how it was spent."""
    from types import SimpleNamespace

    from rsicbench.reports.budget import budget

    def point(train: dict):
        return SimpleNamespace(summary={"describe": {"source": "train", "arch": {"N": 32, "M": 48}, "train": train}})

    common = {"patch": 128, "batch": 8, "lr": 1e-3}
    points = [point({**common, "steps": 4000}),
              point({**common, "steps": 1000, "init_from": "r1", "init_steps": 3000}),
              point({**common, "steps": 1000, "init_from": "r1", "init_steps": 3000})]
    ctx = SimpleNamespace(claims={}, results=tmp_path)
    b = budget(ctx, "mbt2018-mean", points)
    assert b.steps == [4000] and b.finetuned == ["1\u202f000 steps from r1"]
    text = b.text()
    assert text.startswith("train: 4\u202f000 steps; of which 1\u202f000 steps from r1 fine-tuning") and "crop 128 px" in text
