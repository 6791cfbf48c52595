"""LTCHM, MGSS-Net, DMENet: shapes (incl. padding), each variant trains, round trips, switches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rsicbench.config import seed_offset, settings, variants_by_family
from rsicbench.reproduce.models import create_model

SMALL = {"ltchm": dict(N=32, ep_hidden=48), "mgss": dict(N=32, M=32), "mgss_factorized": dict(N=32, M=32),
         "dmenet": dict(N=32)}


def _variants() -> list[tuple[str, str, dict]]:
    """Every module variant (a seed control builds its baseline's network: nothing new to test)."""
    table = variants_by_family(settings("papers", "default")["variants"])
    return [(m, v, kw) for m, vs in sorted(table.items()) for v, kw in sorted(vs.items()) if not seed_offset(kw)]


def _build(model: str, kw: dict):
    torch.manual_seed(0)
    return create_model(model, **{**SMALL[model], **kw})


def _pad(x: torch.Tensor, m: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")


def _loss(model, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    bpp = sum(-torch.log2(lk).sum() for lk in out["likelihoods"].values()) / (x.shape[0] * x.shape[2] * x.shape[3])
    dist = F.mse_loss(out["x_hat"], x)
    extra = model.extra_loss(x, out) if hasattr(model, "extra_loss") else None
    return bpp + 100.0 * (dist + (extra if extra is not None else 0.0))


@pytest.mark.parametrize("model,variant,kw", _variants(), ids=lambda v: v if isinstance(v, str) else "")
def test_variant_trains_two_steps(model, variant, kw):
    torch.set_num_threads(1)
    net = _build(model, kw).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for _ in range(2):
        opt.zero_grad()
        loss = _loss(net, x) + net.aux_loss()
        assert torch.isfinite(loss), f"{model}:{variant} loss {loss}"
        loss.backward()
        opt.step()


@pytest.mark.parametrize("model", ["ltchm", "mgss", "dmenet"])
@pytest.mark.parametrize("hw", [(64, 64), (80, 72)])
def test_shapes_with_padding(model, hw):
    torch.set_num_threads(1)
    net = _build(model, {}).eval()
    x = torch.rand(1, 3, *hw)
    xp = _pad(x, net.downsampling)
    with torch.no_grad():
        out = net(xp)
    assert out["x_hat"].shape == xp.shape
    y = out["likelihoods"]["y"]
    assert y.shape[-2:] == (xp.shape[-2] // 16, xp.shape[-1] // 16)
    assert out["x_hat"][..., : hw[0], : hw[1]].shape == x.shape


@pytest.mark.parametrize("model", ["ltchm", "mgss", "dmenet"])
def test_compress_decompress_round_trip(model):
    torch.set_num_threads(1)
    net = _build(model, {}).eval()
    net.update(force=True)
    x = _pad(torch.rand(1, 3, 80, 72, generator=torch.Generator().manual_seed(2)), net.downsampling)
    with torch.no_grad():
        enc = net.compress(x)
        dec = net.decompress(enc["strings"], enc["shape"])
        ref = net(x)["x_hat"].clamp(0, 1)
    nbytes = sum(len(s) for part in enc["strings"] for s in part)
    assert nbytes > 0
    assert dec["x_hat"].shape == x.shape
    # LTCHM codes round(y) exactly as its eval forward; compressai's mean-scale models code
    # round(y - mu) + mu while their eval forward uses round(y), so only close there.
    err = (dec["x_hat"].clamp(0, 1) - ref).abs().mean().item()
    assert err < (1e-5 if model == "ltchm" else 0.05), err


def _names(model: str, kw: dict) -> set[str]:
    return {n for n, _ in _build(model, kw).named_modules()}


def _changed(a: set[str], b: set[str]) -> set[str]:
    return a ^ b


def test_ltchm_switches_touch_only_their_modules():
    base = _names("ltchm", {"attention": "none", "hpham": False})
    dam = _changed(base, _names("ltchm", {"attention": "dam", "hpham": False}))
    assert dam and all(n.startswith(("g_a.", "g_s.")) for n in dam)
    hp = _changed(base, _names("ltchm", {"attention": "none", "hpham": True}))
    assert hp and all(n.startswith(("h_a.", "h_s.")) for n in hp)
    gca = _changed(_names("ltchm", {"hpham": True, "gca": True}), _names("ltchm", {"hpham": True, "gca": False}))
    assert gca and all(".gca" in n for n in gca)


def test_mgss_and_dmenet_switches_touch_only_their_modules():
    base = _names("mgss", {"modules": "baseline"})
    for v in ("ssif", "mhg", "full"):
        diff = _changed(base, _names("mgss", {"modules": v}))
        assert diff and all(n.startswith(("g_a.", "g_s.")) for n in diff)
    d0 = _names("dmenet", {"sdpm": False, "lsm": False, "mdei": False})
    assert all(n.startswith(("g_a.", "g_s.")) for n in _changed(d0, _names("dmenet", {"sdpm": True, "lsm": False, "mdei": False})))
    assert all(n.startswith("h_s.") for n in _changed(d0, _names("dmenet", {"sdpm": False, "lsm": True, "mdei": False})))
    assert all(n.startswith("mdei") for n in _changed(d0, _names("dmenet", {"sdpm": False, "lsm": False, "mdei": True})))


def test_mgss_stage_tail_is_a_skip_around_lrelu_conv_gdn_with_no_extra_parameters():
    """Each down/up-sampling's tail is x + GDN(conv(LReLU(x))) by default (7 of them: 4 in g_a,
    3 in g_s); stage_skip=False is the literal sequential reading with the same parameters, so
    the comparison with DMENet Table 3's MGSS-Net count does not depend on the reading."""
    from rsicbench.reproduce.models.mgss.blocks import StageTail

    x = torch.randn(1, 32, 8, 8, generator=torch.Generator().manual_seed(2))
    with_skip, without = _build("mgss", {"modules": "full"}), _build("mgss", {"modules": "full", "stage_skip": False})
    tails = [m for m in with_skip.modules() if isinstance(m, StageTail)]
    assert len(tails) == 7 and all(t.skip for t in tails)
    assert not any(m.skip for m in without.modules() if isinstance(m, StageTail))
    assert {k: v.shape for k, v in with_skip.state_dict().items()} == {k: v.shape for k, v in without.state_dict().items()}
    t = tails[1]
    with torch.no_grad():
        body = t.body(x)
        assert torch.allclose(t(x), x + body)  # and the input was not changed in place
        t.skip = False
        assert torch.equal(t(x), body)


def test_dmenet_extra_loss_only_with_mdei():
    x = torch.rand(1, 3, 64, 64)
    for mdei in (False, True):
        net = _build("dmenet", {"mdei": mdei}).eval()
        with torch.no_grad():
            extra = net.extra_loss(x, net(x))
        assert (extra is None) != mdei
        if mdei:
            assert math.isfinite(float(extra)) and float(extra) > 0


def test_fidelity_counts_table5_blocks():
    """The thop-convention counter reproduces LTCHM Table 5 parameters of SAM and WAM (C=192)."""
    from rsicbench.reproduce.papers.fidelity import measure
    from rsicbench.reproduce.models.ltchm.blocks import attention_block

    x = torch.rand(1, 192, 16, 16)
    sam = measure(attention_block("sam", 192), x)
    wam = measure(attention_block("wam", 192), x)
    assert abs(sam["params_thop"] / 0.76e6 - 1) < 0.01
    assert abs(wam["params_thop"] / 0.15e6 - 1) < 0.02
    assert wam["params"] > wam["params_thop"]  # the relative-position table is not counted by thop
