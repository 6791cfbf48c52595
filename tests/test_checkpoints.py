"""Learned weights from anywhere (reproduce/models/checkpoints.py): the CompressAI zoo's cache file,
CompressAI's examples/train.py and CompressAI-Trainer checkpoints, bare state dicts; offline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from compressai import models as cm

from rsicbench.reproduce.models.checkpoints import load_model, zoo_file
from rsicbench.reproduce.codecs.base import CodecError, create_codec

_TABLES = ("._quantized_cdf", "._offset", "._cdf_length")


def _old_zoo_keys(state: dict) -> dict:
    """The zoo files' layout (compressai < 1.2: `entropy_bottleneck._biases.0`), no CDF tables."""
    out = {}
    for k, v in state.items():
        if k.endswith(_TABLES):
            continue
        for new, old in (("biases.", "_biases."), ("matrices.", "_matrices."), ("factors.", "_factors.")):
            k = k.replace(f"entropy_bottleneck.{new}", f"entropy_bottleneck.{old}")
        out[k] = v
    return out


def _image(rng, h=70, w=90):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.clip(np.stack([x * 2, y * 3, x + y], 2) + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def test_zoo_file_in_hub_cache_loads_offline(tmp_path, monkeypatch, no_network, rng):
    from compressai.zoo.image import model_urls

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = zoo_file("bmshj2018-factorized", 1)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / model_urls["bmshj2018-factorized"]["mse"][1].rsplit("/", 1)[-1]
    torch.manual_seed(0)
    model = cm.FactorizedPrior(128, 192)  # the zoo's quality-1 architecture, random weights
    path.parent.mkdir(parents=True)
    torch.save(_old_zoo_keys(model.state_dict()), path)
    codec = create_codec("bmshj2018-factorized", 0, source="zoo")  # zoo quality = rate index + 1
    d = codec.describe()
    assert d["source"] == "zoo" and d["checkpoint_format"] == "compressai-zoo" and d["zoo_quality"] == 1
    assert d["arch"] == {"N": 128, "M": 192}
    assert d["zoo_hash_ok"] is False  # random weights: the sha256 prefix in the name does not match
    img = _image(rng)
    rec = codec.decode(codec.encode(img))
    assert rec.shape == img.shape
    # the same weights straight from the model: identical parameters
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(codec.model.parameters(), model.parameters()))


def test_zoo_file_absent_offline_names_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CodecError, match=r"hub/checkpoints/bmshj2018-hyperprior-2-.*download of https://.*unreachable"):
        create_codec("bmshj2018-hyperprior", 1, source="zoo")
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "bmshj2018-hyperprior-2-93677231.pth.tar").exists()
    with pytest.raises(CodecError, match="no mse weights for this model"):
        create_codec("cheng2020-gmm", 0, source="zoo")


def test_widths_inferred_for_quality8_architecture(tmp_path):
    torch.manual_seed(1)
    m = cm.ScaleHyperprior(192, 320)  # the zoo's quality 6-8 widths
    path = tmp_path / "q8.pth.tar"
    torch.save({"state_dict": m.state_dict(), "epoch": 7}, path)
    model, meta = load_model("bmshj2018-hyperprior", path)
    assert meta["arch"] == {"N": 192, "M": 320} and meta["format"] == "compressai" and meta["epoch"] == 7


def test_compressai_checkpoint_with_module_prefix_decodes_bit_exactly_elsewhere(tmp_path, rng):
    """examples/train.py under DataParallel: {"state_dict": {"module.<key>": ...}}, no CDF tables."""
    torch.manual_seed(2)
    m = cm.MeanScaleHyperprior(16, 24)
    state = {f"module.{k}": v for k, v in m.state_dict().items() if not k.endswith(_TABLES + (".scale_table",))}
    path = tmp_path / "checkpoint_best_loss.pth.tar"
    torch.save({"epoch": 3, "state_dict": state, "loss": 1.0, "optimizer": {}, "aux_optimizer": {},
                "lr_scheduler": {}}, path)
    codec = create_codec("mbt2018-mean", 0, checkpoint=str(path), threads=1)
    assert codec.describe()["arch"] == {"N": 16, "M": 24} and codec.meta["tables_rebuilt_from_weights"]
    img = _image(rng)
    data = codec.encode(img)
    rec = codec.decode(data)
    (tmp_path / "s.bin").write_bytes(data)
    script = ("import sys, numpy as np\n"
              "from rsicbench.reproduce.codecs.base import create_codec\n"
              "c = create_codec('mbt2018-mean', 0, checkpoint=sys.argv[1], threads=1)\n"
              "np.save(sys.argv[3], c.decode(open(sys.argv[2], 'rb').read()))\n")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "s.bin"), str(tmp_path / "r.npy")],
                   check=True, timeout=120)
    assert np.array_equal(np.load(tmp_path / "r.npy"), rec)
    # the same weights with their tables (a bare state dict) give the same stream
    torch.save(m.state_dict(), tmp_path / "bare.pt")
    bare = create_codec("mbt2018-mean", 0, checkpoint=str(tmp_path / "bare.pt"), threads=1)
    assert bare.meta["format"] == "state_dict" and bare.encode(img) == data


def test_compressai_trainer_checkpoint(tmp_path, rng):
    """Catalyst's runner.best.pth as CompressAI-Trainer writes it: weights under model_state_dict."""
    torch.manual_seed(3)
    m = cm.FactorizedPrior(16, 24)
    path = tmp_path / "runner.best.pth"
    torch.save({"model_state_dict": m.state_dict(), "criterion_state_dict": {}, "optimizer_state_dict": {},
                "epoch": 12, "loader_key": "valid"}, path)
    codec = create_codec("bmshj2018-factorized", 0, checkpoint=str(path))
    assert codec.meta["format"] == "compressai-trainer" and codec.describe()["source"] == "checkpoint"
    assert codec.decode(codec.encode(_image(rng))).shape == (70, 90, 3)


def test_other_architecture_is_one_error_naming_keys_and_shapes(tmp_path):
    torch.manual_seed(4)
    torch.save({"state_dict": cm.ScaleHyperprior(16, 24).state_dict()}, tmp_path / "hp.pth.tar")
    with pytest.raises(CodecError) as e:
        load_model("mbt2018", tmp_path / "hp.pth.tar")
    msg = str(e.value)
    assert "hp.pth.tar" in msg and "missing keys" in msg and "context_prediction.weight" in msg
    assert "more)" in msg  # long lists are cut
    with pytest.raises(CodecError, match=r"shape mismatches \(checkpoint vs model\) \(\d+\): entropy_bottleneck\.biases\.0 \(16, 3, 1\) vs \(32, 3, 1\)"):
        load_model("bmshj2018-hyperprior", tmp_path / "hp.pth.tar", N=32)
    torch.save({"state_dict": cm.FactorizedPrior(16, 24).state_dict()}, tmp_path / "fp.pth.tar")
    with pytest.raises(CodecError, match=r"missing keys \(\d+\): h_a\..*unexpected keys|missing keys .*h_a"):
        load_model("bmshj2018-hyperprior", tmp_path / "fp.pth.tar")


def test_pickled_objects_are_refused_with_weights_only(tmp_path):
    import collections

    path = tmp_path / "obj.pt"
    torch.save({"state_dict": {}, "args": collections.Counter(a=1), "fn": print}, path)
    with pytest.raises(CodecError, match="obj.pt: not a loadable checkpoint with weights_only=True"):
        load_model("bmshj2018-hyperprior", path)
    torch.save({"epoch": 1, "note": "no weights"}, tmp_path / "empty.pt")
    with pytest.raises(CodecError, match="no weights found.*top-level keys: epoch, note"):
        load_model("bmshj2018-hyperprior", tmp_path / "empty.pt")
