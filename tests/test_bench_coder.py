"""benchmarks/bench_coder.py measures ours against compressai's coder on the same images and
reports both, their ratio and our coder's share; a GMM model has no compressai reference."""

from __future__ import annotations

import numpy as np
import torch
from bench_loader import load_bench


def test_bench_coder_rows(tmp_path):
    from rsicbench.reproduce.models.registry import create_model

    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rows = {}
    for name, arch in {"bmshj2018-hyperprior": {"N": 8, "M": 8}, "cheng2020-gmm": {"N": 8}}.items():
        torch.manual_seed(0)
        path = tmp_path / f"{name}.pt"
        torch.save(create_model(name, **arch).state_dict(), path)
        rows[name] = load_bench("bench_coder").bench(name, str(path), [img])
    hp, gmm = rows["bmshj2018-hyperprior"], rows["cheng2020-gmm"]
    assert hp["compressai_encode_s"] > 0 and hp["compressai_decode_s"] > 0
    assert hp["encode_ratio"] > 0 and hp["decode_ratio"] > 0
    assert 0 < hp["rans_share_encode_pct"] < 100 and 0 < hp["rans_share_decode_pct"] < 100
    assert "encode_ratio" not in gmm and gmm["ours_decode_s"] > 0 and gmm["bpp"] > 0
