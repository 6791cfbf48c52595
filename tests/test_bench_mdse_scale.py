"""benchmarks/bench_mdse_scale.py: D is 255²·MSE, the branch errors add up to MDEI's output
error, and the EEM (Laplacian band) branch is linear, so on [0,255] pixels its error is 255²
times its error on [0,1] pixels, while the sigmoid profiles are not."""

from __future__ import annotations

import numpy as np
import pytest
from bench_loader import load_bench


def test_mdse_terms_on_a_jpeg_pair():
    from rsicbench.reproduce.models.dmenet.blocks import MDEI

    bench = load_bench("bench_mdse_scale")
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal(128, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
    rec, bpp = bench.jpeg_roundtrip(rgb, 30)
    assert bpp > 0
    r = bench.measure(rgb, rec, MDEI().eval())
    mse255 = np.mean((rgb.astype(np.float64) - rec.astype(np.float64)) ** 2)
    assert r["d"] == pytest.approx(mse255, rel=1e-5)
    assert r["ratio01"] == pytest.approx(bench.PSI * r["mdse01"] / r["d"])
    b01, b255 = r["branches01"], r["branches255"]
    assert b01["total"] == r["mdse01"] and b255["total"] == r["mdse255"]
    assert b255["eem"] == pytest.approx(255.0**2 * b01["eem"], rel=1e-3)
    assert b255["ha"] != pytest.approx(255.0**2 * b01["ha"], rel=0.1)
