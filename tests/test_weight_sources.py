"""Per-model weight source in the pipeline (train | zoo | checkpoint:<path>), offline:
`rsicbench train` skips and records it, `rsicbench evaluate` uses it, the summary and the
report's RD table say which source each learned row used."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from compressai import models as cm

from rsicbench.imageio import write_png
from rsicbench.reproduce.training.weight_sources import SourceError, codec_options, parse, skip_training


def test_parse_and_options(tmp_path):
    assert parse("train", "x") == ("train", None) and parse("zoo", "x") == ("zoo", None)
    assert parse("checkpoint:a/b-{r}.pt", "x") == ("checkpoint", "a/b-{r}.pt")
    for bad in ("checkpoint:", "zoo:3", "trained"):
        with pytest.raises(SourceError, match="expected train, zoo or checkpoint"):
            parse(bad, "configs/train.yaml: m.source")
    cfg = {"models": {"m": {"zoo_qualities": [2, 4]}}}
    assert codec_options("m", "r1", "zoo", cfg, "w") == {"source": "zoo", "zoo_quality": 4}
    assert codec_options("n", "r1", "zoo", cfg, "w") == {"source": "zoo", "zoo_quality": 2}
    with pytest.raises(SourceError, match="no integer zoo quality for r2"):
        codec_options("m", "r2", "zoo", cfg, "w")
    o = codec_options("m", "r3", f"checkpoint:{tmp_path}/w-{{r}}.pt", cfg, "w")
    assert o == {"source": "checkpoint", "checkpoint": f"{tmp_path}/w-3.pt"}


def test_train_stage_records_the_source_instead_of_training(tmp_path, capsys):
    cfg = {"models": {"m": {"source": "zoo"}, "t": {}}}
    assert skip_training("m", "r0", cfg, tmp_path / "m") is True
    rec = json.loads((tmp_path / "m" / "source.json").read_text())
    assert rec["source"] == "zoo" and rec["options"] == {"source": "zoo", "zoo_quality": 1}
    assert skip_training("t", "r0", cfg, tmp_path / "t") is False and not (tmp_path / "t").exists()


def _images(folder, n=2, size=72):
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True)
    for i in range(n):
        y, x = np.mgrid[0:size, 0:size].astype(np.float64)
        im = np.stack([x * 3 + i, y * 3, (x + y) * 1.5], 2) + rng.normal(0, 12, (size, size, 3))
        write_png(folder / f"im{i}.png", np.clip(im, 0, 255).astype(np.uint8))
    return folder


@pytest.mark.slow
def test_evaluate_zoo_and_checkpoint_sources_reach_summary_and_report(tmp_path, monkeypatch, capsys):
    from rsicbench.reproduce.commands import evaluate as cli_evaluate
    from rsicbench.reproduce.models.checkpoints import zoo_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(AssertionError("net")))
    torch.manual_seed(0)
    z = zoo_file("bmshj2018-factorized", 1)
    z.parent.mkdir(parents=True)
    torch.save(cm.FactorizedPrior(128, 192).state_dict(), z)
    ck = tmp_path / "ca.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in cm.ScaleHyperprior(16, 24).state_dict().items()}}, ck)
    imgs = _images(tmp_path / "imgs")
    rd = tmp_path / "results" / "rd"
    common = ["--profile", "ci", "--rate", "r0", "--images-dir", str(imgs), "--dataset-name", "toy", "--out-root", str(rd)]
    assert cli_evaluate.main(["--model", "bmshj2018-factorized", "--source", "zoo", *common]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["source"] == "zoo" and line["arch"] == {"N": 128, "M": 192}
    assert cli_evaluate.main(["--model", "bmshj2018-hyperprior", "--checkpoint", str(ck), *common]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["source"] == "checkpoint" and line["checkpoint_format"] == "compressai" and line["arch"] == {"N": 16, "M": 24}
    s = json.loads((rd / "toy" / "bmshj2018-factorized" / "q0" / "summary.json").read_text())
    assert s["describe"]["source"] == "zoo" and s["describe"]["zoo_quality"] == 1

    from rsicbench.reports import sections
    from rsicbench.reports.context import Context

    html = sections.section_rd(Context(root=tmp_path, results=tmp_path / "results", data=tmp_path / "data",
                                       claims_dir=tmp_path / "claims", profile="ci")).body
    assert "bmshj2018-factorized <span class=\"iqr\">(weights: zoo q1)</span>" in html
    assert "bmshj2018-hyperprior <span class=\"iqr\">(weights: checkpoint compressai)</span>" in html


def test_bad_source_in_config_is_one_error(tmp_path, capsys):
    from rsicbench.reproduce.commands import evaluate as cli_evaluate
    rc = cli_evaluate.main(["--model", "mbt2018", "--rate", "r0", "--source", "zooo", "--profile", "ci",
                            "--images-dir", str(_images(tmp_path / "i", 1))])
    assert rc == 2 and "source 'zooo': expected train, zoo or checkpoint:<path>" in capsys.readouterr().err


def test_complexity_follows_the_recorded_source(tmp_path, monkeypatch):
    """The complexity stage names results/train/<m>/r1/best.pt; with source zoo only source.json is there."""
    from rsicbench.reproduce.models.checkpoints import zoo_file
    from rsicbench.reproduce.training.weight_sources import load_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    z = zoo_file("bmshj2018-factorized", 2)
    z.parent.mkdir(parents=True)
    torch.save(cm.FactorizedPrior(128, 192).state_dict(), z)
    run = tmp_path / "results" / "train" / "bmshj2018-factorized" / "r1"
    assert skip_training("bmshj2018-factorized", "r1", {"models": {"bmshj2018-factorized": {"source": "zoo"}}}, run)
    model, meta = load_weights("bmshj2018-factorized", run / "best.pt")
    assert meta["source"] == "zoo" and meta["zoo_quality"] == 2 and meta["arch"] == {"N": 128, "M": 192}


def test_folder_command_runs_the_chain(tmp_path, monkeypatch, capsys):
    """`rsicbench folder`: fetch, split, a sweep, BD and the report on a labelled folder (no learned model)."""
    import shutil

    from rsicbench.reproduce.commands import folder as cli_folder
    root = tmp_path / "proj"
    (root / "configs").mkdir(parents=True)
    from rsicbench.paths import project_root

    for f in ("params.yaml", "pyproject.toml"):
        shutil.copy(project_root() / f, root / f)
    for f in (project_root() / "configs").glob("*.yaml"):
        shutil.copy(f, root / "configs" / f.name)
    import yaml  # no LPIPS weights needed: the copied settings measure without LPIPS

    ev = yaml.safe_load((root / "configs" / "eval.yaml").read_text())
    ev["ci"]["metrics"] = {"device": "cpu", "lpips": False}
    (root / "configs" / "eval.yaml").write_text(yaml.safe_dump(ev))
    monkeypatch.setenv("RSICBENCH_ROOT", str(root))
    monkeypatch.chdir(root)
    src = tmp_path / "src"
    for c in ("a", "b"):
        _images(src / c, n=10, size=40)
    rc = cli_folder.main(["--source", str(src), "--name", "toyset", "--profile", "ci", "--codecs", "jpeg2000", "jpeg",
                          "--learned", "--report", str(tmp_path / "r" / "index.html")])
    cap = capsys.readouterr()
    out = cap.out
    assert rc == 0, out + cap.err
    assert (root / "results" / "rd" / "toyset" / "jpeg.json").is_file()
    bd = json.loads((root / "results" / "bd" / "toyset.json").read_text())
    assert "jpeg" in bd["codecs"] and (tmp_path / "r" / "index.html").is_file()
    assert "[folder] rsicbench sweep --codec jpeg --dataset toyset" in out
