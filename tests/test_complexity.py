"""Complexity: params per module add up, FLOPs are positive and scale with the input."""

import torch

from rsicbench.reproduce.papers.complexity import flops, measure, param_counts
from rsicbench.reproduce.models.registry import create_model


def test_params_flops_timing():
    torch.manual_seed(0)
    m = create_model("bmshj2018-hyperprior", N=8, M=8)
    pc = param_counts(m)
    assert pc["total"] == sum(pc["per_module"].values()) and pc["per_module"]["g_a"] > 0
    f64, f128 = flops(m, 64), flops(m, 128)
    assert f64 > 0 and abs(f128 / f64 - 4) < 0.1
    r = measure(m, size=64, repeats=1)
    assert r["timing"]["encode_s"] > 0 and r["timing"]["bytes"] > 0 and r["timing"]["peak_python_heap_bytes"] > 0


def test_command_takes_the_profiles_input_size(tmp_path, monkeypatch, capsys):
    """configs/train.yaml `complexity`: ci measures a 64x64 input once, the others 256x256."""
    import json

    from rsicbench.reproduce.commands import complexity as cli

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "c.json"
    assert cli.main(["--model", "bmshj2018-factorized", "--profile", "ci", "--out", str(out)]) == 0
    ci = json.loads(out.read_text())
    assert ci["input"] == [1, 3, 64, 64] and ci["timing"]["repeats"] == 1
    assert cli.main(["--model", "bmshj2018-factorized", "--profile", "ci", "--size", "128", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["flops"] == 4 * ci["flops"]
