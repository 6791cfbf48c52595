"""The coding tables (since container format 3) (reproduce/coding/coding_tables.py): nearest scale index,
refit bottleneck quantiles; both cut measured bits, and streams round-trip with them."""

import numpy as np
import pytest
import torch

from rsicbench.reproduce.codecs.base import CodecError, create_codec
from rsicbench.reproduce.coding import coded_info, coding_tables, container
from rsicbench.reproduce.models.registry import create_model


def _gc():
    from compressai.entropy_models import GaussianConditional
    from compressai.models.google import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    return gc


def test_scale_index_is_the_nearest_entry_in_log_scale():
    gc = _gc()
    table = gc.scale_table.double()
    compressai_index = gc.build_indexes
    coding_tables.install(gc)
    assert coding_tables.uses_nearest(gc)
    mid = torch.sqrt(table[:-1] * table[1:])
    i = torch.arange(len(table) - 1)
    # just above an entry: that entry (compressai rounds up to the next one)
    above = (table[:-1] * 1.01).float()
    assert torch.equal(gc.build_indexes(above).long(), i)
    assert torch.equal(compressai_index(above).long(), i + 1)
    assert torch.equal(gc.build_indexes((mid * 0.999).float()).long(), i)
    assert torch.equal(gc.build_indexes((mid * 1.001).float()).long(), i + 1)
    assert int(gc.build_indexes(torch.tensor([0.01]))) == 0  # lower-bounded to 0.11
    assert int(gc.build_indexes(torch.tensor([1e4]))) == len(table) - 1


def test_nearest_index_cuts_the_scale_table_cost():
    g = torch.Generator().manual_seed(0)
    scales = torch.exp(torch.empty(1, 8, 32, 32).uniform_(np.log(0.11), np.log(4.0), generator=g))
    y = torch.randn(1, 8, 32, 32, generator=g) * scales  # symbols as the model predicts them
    cost = {}
    for rule in ("compressai", "nearest"):
        gc = _gc()
        if rule == "nearest":
            coding_tables.install(gc)
        _, bits = coded_info.measure(gc, lambda gc=gc: gc.compress(y, gc.build_indexes(scales)))
        (b,) = bits.values()
        cost[rule] = b.table - b.model
    assert 0 < cost["nearest"] < 0.5 * cost["compressai"]


def test_bottleneck_tails_refit_cuts_the_cdf_cost_and_keeps_the_weights(rng):
    torch.manual_seed(0)
    model = create_model("bmshj2018-hyperprior", N=8, M=8).eval()  # quantiles at their init
    model.update(force=True)
    x = torch.rand(1, 3, 128, 128)

    def overhead():
        _, bits = coded_info.measure(model, lambda: model.compress(x))
        b = bits["entropy_bottleneck"]
        return (b.cdf - b.model) / b.model

    before = overhead()
    params = {k: v.clone() for k, v in model.state_dict().items() if not k.rsplit(".", 1)[-1].startswith("_")}
    coding_tables.install(model)
    after = overhead()
    assert after < 0.5 * before and after < 0.01
    # only the derived tables changed: quantiles (median included) are the checkpoint's
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in params.items())


@pytest.mark.parametrize("name", ["bmshj2018-hyperprior", "mbt2018"])
def test_round_trip_with_these_tables_and_older_formats_refused(name, rng, tmp_path):
    torch.manual_seed(1)
    m = create_model(name, N=8, M=8)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    codec = create_codec(name, 0, checkpoint=str(tmp_path / "w.pt"), threads=1)
    assert all(coding_tables.uses_nearest(g) for g in [codec.model.gaussian_conditional])
    img = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    data = codec.encode(img)
    assert data[0] == container.MAGIC and container.FORMAT_VERSION == 4
    out = codec.decode(data)
    assert out.shape == img.shape
    # a fresh codec (another process would build the same) decodes the same pixels
    again = create_codec(name, 0, checkpoint=str(tmp_path / "w.pt"), threads=1)
    assert np.array_equal(again.decode(data), out)
    for v in (2, 3):  # compressai's tables (2) or strings per entropy model (3)
        with pytest.raises(CodecError, match=f"version {v} .*re-encode"):
            codec.decode(bytes([container.OLD_MAGIC, v]) + data[1:])
