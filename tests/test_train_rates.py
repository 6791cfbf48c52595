"""Several rates in one process (`--rates`), `rsicbench batch`, and resuming only the same run."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from rsicbench import cli
from rsicbench.reproduce.commands import train as cli_train

TINY = ["--set", 'arch={"N": 8, "M": 8}', "--set", "batch=2", "--set", "ckpt_every=2", "--set", "val_every=2",
        "--set", "val_images=1", "--set", "threads=1", "--steps", "2"]


@pytest.fixture
def project(ci_train_project):
    return ci_train_project  # conftest: ci profile, imgs/im0.png, im1.png, cwd = its root


def _train(root: Path, *extra: str) -> list[str]:
    return ["train", "--model", "bmshj2018-hyperprior", "--train-dir", str(root / "imgs"),
            "--val-dir", str(root / "imgs"), "--quiet", *TINY, *extra]


def _lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.timeout(120)
def test_rates_in_one_process_equal_separate_runs(project, capsys):
    """r2 trained after r0 in the same process = r2 trained alone: every run starts from its seed."""
    assert cli.main(_train(project, "--rates", "r0,r2")) == 0
    lines = _lines(capsys)
    assert [x["rate"] for x in lines] == ["r0", "r2"]
    together = _weights(project / "results/train/bmshj2018-hyperprior/r2/best.pt")
    shutil.rmtree(project / "results")
    assert cli.main(_train(project, "--rate", "r2")) == 0
    alone = _weights(project / "results/train/bmshj2018-hyperprior/r2/best.pt")
    assert together.keys() == alone.keys()
    assert all(torch.equal(together[k], alone[k]) for k in alone)


def test_rates_profile_is_the_profiles_list(project):
    from rsicbench.config import settings
    from rsicbench.reproduce.training.run_config import rate_tags

    cfg = settings("train", "paper")
    assert rate_tags("ltchm-full", "profile", cfg) == [f"r{i}" for i in range(6)]
    assert rate_tags("dmenet-baseline", "profile", cfg) == [f"r{i}" for i in range(7)]
    assert rate_tags("ltchm-full", "profile", settings("train", "ci")) == ["r2", "r5"]
    with pytest.raises(ValueError, match="expected `profile` or rate tags"):
        rate_tags("ltchm-full", "2,5", cfg)


def test_plan_lists_every_model(project, capsys):
    assert cli_train.main(["--plan", "--profile", "paper"]) == 0
    plan = {name: rest for name, *rest in (line.split("\t") for line in capsys.readouterr().out.splitlines())}
    assert plan["ltchm-full"] == ["r0,r1,r2,r3,r4,r5", "200000 steps"] and plan["mbt2018"] == ["r0,r1,r2", "500000 steps"]
    assert cli_train.main(["--plan", "--profile", "paper", "--model", "mbt2018"]) == 0
    assert capsys.readouterr().out == "mbt2018\tr0,r1,r2\t500000 steps\n"


@pytest.mark.parametrize("extra", [["--steps", "5"], ["--set", "lr=0.1"], ["--rate", "r0"], ["--model", "nope"]])
def test_plan_refuses_what_it_would_not_show(project, capsys, extra):
    """--plan shows the profile's settings: an override it would silently drop is an error."""
    with pytest.raises(SystemExit) as e:
        cli_train.main(["--plan", "--profile", "paper", *extra])
    assert e.value.code == 2 and "--plan" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_changed_settings_are_refused_or_set_aside(project, capsys):
    run = project / "results/train/bmshj2018-hyperprior/r0"
    assert cli.main(_train(project, "--rate", "r0")) == 0
    first = _weights(run / "best.pt")
    capsys.readouterr()
    # the same run again: resumes at its last step, trains nothing
    assert cli.main(_train(project, "--rate", "r0")) == 0
    assert _lines(capsys)[-1]["resumed_from"] == 2
    # another lr: a different run. By hand: an error naming the file and the setting
    assert cli.main(_train(project, "--rate", "r0", "--set", "lr=0.01")) == 2
    err = capsys.readouterr().err
    assert str(run / "latest.pt") in err and "lr: 0.0001 -> 0.01" in err and "\n" == err[-1] and err.count("\n") == 1
    # the pipeline's restart: the old run is set aside (kept), the new one trains from step 0
    assert cli.main(_train(project, "--rate", "r0", "--set", "lr=0.01", "--on-config-change", "restart")) == 0
    line = _lines(capsys)[-1]
    assert line["resumed_from"] == 0 and "lr: 0.0001 -> 0.01" in line["superseded"]
    (kept,) = (project / "results/train/.superseded/bmshj2018-hyperprior").iterdir()
    assert kept.name.startswith("r0-") and all(torch.equal(_weights(kept / "best.pt")[k], v) for k, v in first.items())
    assert torch.load(run / "latest.pt", weights_only=True)["config"]["lr"] == 0.01


@pytest.mark.timeout(120)
def test_more_steps_resume_by_hand_but_restart_in_the_pipeline(project, capsys):
    assert cli.main(_train(project, "--rate", "r0")) == 0
    capsys.readouterr()
    assert cli.main(_train(project, "--rate", "r0", "--steps", "4")) == 0  # by hand: train longer
    assert _lines(capsys)[-1]["resumed_from"] == 2
    assert cli.main(_train(project, "--rate", "r0", "--steps", "6", "--on-config-change", "restart")) == 0
    line = _lines(capsys)[-1]
    assert line["resumed_from"] == 0 and "steps: 4 -> 6" in line["superseded"]


def test_batch_runs_each_command_and_stops_at_a_failure(project, capsys):
    assert cli.main(["batch", "train", "--show-lambdas", "::", "train", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "compressai" in out and "ltchm-full\t" in out
    # the second fails (usage error): the third never runs
    assert cli.main(["batch", "train", "--plan", "::", "train", "--model", "x", "::", "train", "--show-lambdas"]) == 2
    captured = capsys.readouterr()
    assert "ltchm-full\t" in captured.out and "compressai" not in captured.out
    assert "one of --rate / --rates" in captured.err
    for bad in (["batch"], ["batch", "::"], ["batch", "train", "--plan", "::"], ["batch", "batch", "train"]):
        assert cli.main(bad) == 2, bad
