"""Fine-tuning one rate from another (configs/train.yaml `train.finetune`, `--set init_from=`):
the settings it resolves to, the anchor's weights as the start, and the anchor as part of the run."""

import json
from pathlib import Path

import pytest
import torch

from rsicbench import cli
from rsicbench.errors import UserError
from rsicbench.reproduce.models.checkpoints import state_fingerprint
from rsicbench.reproduce.training.run_config import rate_tags, run_config

MODEL = "bmshj2018-hyperprior"
TINY = ["--set", 'arch={"N": 8, "M": 8}', "--set", "batch=2", "--set", "ckpt_every=2", "--set", "val_every=2",
        "--set", "val_images=1", "--set", "threads=1"]


def _cfg(finetune) -> dict:
    return {"train": {"steps": 100, "lr": 1e-3, "finetune": finetune}, "arch": {"N": 8, "M": 8},
            "models": {MODEL: {"lambdas": [0.0035, 0.013, 0.0483], "rates": [0, 1, 2]}}}


def test_finetune_resolves_per_rate():
    cfg = _cfg({"from": "r1", "steps": 30})
    anchor, low, high = (run_config(MODEL, r, cfg) for r in ("r1", "r0", "r2"))
    assert (anchor.init_from, anchor.steps, anchor.snapshot_at) == ("", 100, 70)
    assert (low.init_from, low.steps, low.snapshot_at) == ("r1", 30, 0) and (high.init_from, high.steps) == ("r1", 30)
    assert low.lr == anchor.lr and low.lam != anchor.lam
    assert rate_tags(MODEL, "profile", cfg) == ["r1", "r0", "r2"]  # the anchor trains first
    assert rate_tags(MODEL, "r2,r0,r1", cfg) == ["r1", "r2", "r0"]
    assert run_config(MODEL, "r1", cfg, {"steps": 50}).snapshot_at == 20  # --steps: the anchor's total
    assert run_config(MODEL, "r0", cfg, {"steps": 5}).steps == 5  # a fine-tuned rate's own steps
    assert run_config(MODEL, "r0", _cfg(None)).init_from == ""
    missing = _cfg({"from": "r1", "steps": 30})
    missing["models"][MODEL]["rates"] = [0, 2]
    with pytest.raises(UserError, match="finetune.from r1 is not among the profile's rates r0,r2"):
        rate_tags(MODEL, "profile", missing)
    with pytest.raises(UserError, match="must exceed train.finetune.steps"):
        run_config(MODEL, "r1", _cfg({"from": "r1", "steps": 100}))


@pytest.mark.parametrize("finetune, match", [
    ({"from": "r3", "steps": 30}, "expected a rate tag r0..r2"),
    ({"from": 1, "steps": 30}, "expected a rate tag"),
    ({"from": "r1", "steps": 0}, "steps: expected an integer >= 1"),
    ({"from": "r1"}, "expected {from: r<i>, steps: <int>}"),
    ({"from": "r1", "steps": 5, "lr": 1}, "expected {from: r<i>, steps: <int>}"),
])
def test_bad_finetune_settings_name_the_setting(finetune, match):
    with pytest.raises(UserError, match=match):
        run_config(MODEL, "r0", _cfg(finetune))
    with pytest.raises(UserError, match="cannot start from itself"):
        run_config(MODEL, "r1", _cfg(None), {"init_from": "r1"})


@pytest.fixture
def project(ci_train_project):
    return ci_train_project  # conftest: ci profile, imgs/im0.png, im1.png, cwd = its root


def _train(root: Path, rate: str, *extra: str) -> list[str]:
    return ["train", "--model", MODEL, "--rate", rate, "--train-dir", str(root / "imgs"),
            "--val-dir", str(root / "imgs"), "--quiet", *TINY, *extra]


def _ck(root: Path, rate: str) -> dict:
    return torch.load(root / f"results/train/{MODEL}/{rate}/latest.pt", weights_only=True)


def _learned(state: dict) -> dict:
    return {k: v for k, v in state.items() if "_quantized_cdf" not in k and "_offset" not in k and "_cdf_length" not in k}


@pytest.mark.timeout(180)
def test_finetuned_run_starts_from_its_anchor_and_follows_it(project, capsys):
    # no anchor yet: a one-line error saying what to train first
    assert cli.main(_train(project, "r0", "--steps", "2", "--set", "init_from=r1")) == 2
    err = capsys.readouterr().err
    assert f"results/train/{MODEL}/r1/latest.pt: missing" in err and "--rate r1" in err
    assert cli.main(_train(project, "r1", "--steps", "4")) == 0
    anchor = _ck(project, "r1")
    # lr 0: the fine-tuned weights stay the anchor's, so they must have started there
    frozen = ["--set", "init_from=r1", "--set", "lr=0", "--set", "aux_lr=0", "--steps", "2"]
    assert cli.main(_train(project, "r0", *frozen)) == 0
    tuned = _ck(project, "r0")
    a, t = _learned(anchor["model"]), _learned(tuned["model"])
    assert a.keys() == t.keys() and all(torch.equal(a[k], t[k]) for k in a)
    assert tuned["config"]["init_steps"] == 4 and tuned["config"]["init_from"] == "r1"
    assert tuned["config"]["init_digest"] == state_fingerprint(anchor["model"])
    # another start (no init_from) differs: the test above could fail
    capsys.readouterr()
    assert cli.main(_train(project, "r2", "--set", "lr=0", "--set", "aux_lr=0", "--steps", "2")) == 0
    fresh = _learned(_ck(project, "r2")["model"])
    assert not all(torch.equal(a[k], fresh[k]) for k in a)
    # a retrained anchor makes the fine-tuned run another run: refused by hand, restarted in the pipeline
    assert cli.main(_train(project, "r1", "--steps", "6")) == 0
    capsys.readouterr()
    assert cli.main(_train(project, "r0", *frozen)) == 2
    assert "init_digest" in capsys.readouterr().err
    assert cli.main(_train(project, "r0", *frozen, "--on-config-change", "restart")) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "init_digest" in line["superseded"] and "init_steps: 4 -> 6" in line["superseded"]
    assert _ck(project, "r0")["config"]["init_steps"] == 6


def _with_finetune(root: Path, steps: int, tune: int) -> None:
    import yaml

    path = root / "configs/train.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["ci"]["train"].update(steps=steps, finetune={"from": "r1", "steps": tune})
    path.write_text(yaml.safe_dump(cfg))


@pytest.mark.timeout(180)
def test_profile_finetune_starts_every_rate_from_the_anchors_snapshot(project, capsys):
    from rsicbench.reproduce.training.train import SHARED

    _with_finetune(project, steps=4, tune=2)
    base = [a for a in _train(project, "r1") if a not in ("--rate", "r1")]
    assert cli.main([*base, "--rates", "r0,r1"]) == 0
    assert [json.loads(x)["rate"] for x in capsys.readouterr().out.splitlines()] == ["r1", "r0"]
    shared = torch.load(project / f"results/train/{MODEL}/r1/{SHARED}", weights_only=True)
    anchor, tuned = _ck(project, "r1"), _ck(project, "r0")
    assert shared["step"] == 2 and anchor["step"] == 4 and anchor["config"]["snapshot_at"] == 2
    assert tuned["step"] == 2 and tuned["config"]["init_steps"] == 2  # 2 shared + 2 own = the anchor's 4
    assert tuned["config"]["init_digest"] == state_fingerprint(shared["model"])
    assert state_fingerprint(shared["model"]) != state_fingerprint(anchor["model"])
    # frozen (lr 0): r0's weights are the snapshot's, not the anchor's final ones
    assert cli.main(_train(project, "r0", "--set", "lr=0", "--set", "aux_lr=0", "--on-config-change", "restart")) == 0
    a, t = _learned(shared["model"]), _learned(_ck(project, "r0")["model"])
    assert all(torch.equal(a[k], t[k]) for k in a)


def test_a_diverged_run_stops_with_its_step_and_keeps_the_last_good_checkpoint(project, monkeypatch, capsys):
    """A NaN loss stops the run with an error naming the run, λ and step, before the update:
    the checkpoint written before it holds finite weights and stays where it was."""
    from rsicbench.reproduce.training import train as train_mod

    real = train_mod.rd_loss
    calls = []

    def nan_from_step_5(model, *a, **kw):
        r = real(model, *a, **kw)
        calls.extend([1] if model.training else [])  # validation calls it too
        return {**r, "loss": r["loss"] * float("nan")} if model.training and len(calls) >= 5 else r

    monkeypatch.setattr(train_mod, "rd_loss", nan_from_step_5)
    assert cli.main(_train(project, "r1", "--steps", "8")) == 2
    err = capsys.readouterr().err
    assert f"results/train/{MODEL}/r1: {MODEL} at λ 0.013: the loss is nan at step 5" in err
    assert "training diverged; no update was made" in err
    ck = _ck(project, "r1")
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
