"""Container v2: round trip, a small header, every corruption or forgery a clear CodecError;
the rANS / GMM string guards that keep forged strings from being read past their end."""

import binascii

import numpy as np
import pytest
import torch

from rsicbench.reproduce.coding import container
from rsicbench.reproduce.codecs.base import CodecError
from rsicbench.reproduce.coding.container import Container, Layout, model_tag, pack, unpack

LAYOUT = Layout(downsampling=64, stride=64, groups=(1, 1))
TAG = model_tag("bmshj2018-hyperprior", "abc123def456")


def _c(h=70, w=90, strings=None):
    return Container(TAG, h, w, strings or [[b"\x01\x02\x03\x04" * 300], [b"zz" * 30]])


def _forge(h, w, lengths, payload, tag=TAG, version=container.FORMAT_VERSION):
    body = (bytes([container.MAGIC, version]) + tag + container.varint(h) + container.varint(w)
            + b"".join(container.varint(n) for n in lengths) + payload)
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "little")


def test_round_trip_and_derived_fields():
    c = _c()
    assert unpack(pack(c, LAYOUT), LAYOUT, TAG) == c
    assert LAYOUT.padding(70, 90) == (58, 38)
    assert LAYOUT.latent_shape(70, 90) == (2, 2)
    assert Layout(64, 16, (1,)).latent_shape(256, 200) == (16, 16)


def test_header_is_small():
    """256x256, a 1,200-byte y string and a 60-byte z string: magic+version 2 bytes, tag 4, size 2+2,
    one length 2, CRC 2 = 14 bytes (v1: 63-67)."""
    c = _c(256, 256)
    data = pack(c, LAYOUT)
    assert len(data) - sum(len(s) for g in c.strings for s in g) == 14


def test_every_flipped_byte_and_truncation_is_rejected():
    data = pack(_c(), LAYOUT)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(CodecError):
            unpack(bytes(bad), LAYOUT, TAG)
    for n in range(len(data)):
        with pytest.raises(CodecError):
            unpack(data[:n], LAYOUT, TAG)


def test_v1_and_foreign_streams_name_the_problem():
    with pytest.raises(CodecError, match="version 1"):
        unpack(b"RSLC\x01" + b"\0" * 80, LAYOUT, TAG)
    with pytest.raises(CodecError, match="not a learned-codec bitstream"):
        unpack(b"\x89PNG" + b"\0" * 40, LAYOUT, TAG)
    with pytest.raises(CodecError, match="version 4 unsupported"):
        unpack(_forge(70, 90, [4], b"abcdefgh", version=4), LAYOUT, TAG)
    # format 2: the same layout, but coded with other tables (coding_tables.py)
    with pytest.raises(CodecError, match="version 2 .*re-encode the image"):
        unpack(_forge(70, 90, [4], b"abcdefgh", version=2), LAYOUT, TAG)


def test_forged_headers_with_a_valid_crc_are_refused():
    ok = _forge(70, 90, [4], b"abcdefgh")
    assert unpack(ok, LAYOUT, TAG).strings == [[b"abcd"], [b"efgh"]]
    with pytest.raises(CodecError, match="another model or other weights"):
        unpack(_forge(70, 90, [4], b"abcdefgh", tag=b"\0\0\0\0"), LAYOUT, TAG)
    with pytest.raises(CodecError, match="truncated or inconsistent"):
        unpack(_forge(70, 90, [9], b"abcdefgh"), LAYOUT, TAG)  # a length beyond the payload
    with pytest.raises(CodecError, match="empty"):
        unpack(_forge(0, 90, [4], b"abcdefgh"), LAYOUT, TAG)
    overlong = _forge(70, 90, [4], b"abcdefgh")
    body = overlong[:7] + b"\xc6\x00" + overlong[8:-2]  # 70 as a 2-byte varint
    with pytest.raises(CodecError, match="non-canonical"):
        unpack(body + binascii.crc_hqx(body, 0).to_bytes(2, "little"), LAYOUT, TAG)


def test_pixel_limit_is_configurable():
    data = _forge(8192, 8193, [4], b"abcdefgh")
    with pytest.raises(CodecError, match="exceeds the limit of 67108864"):
        unpack(data, LAYOUT, TAG)
    assert unpack(data, LAYOUT, TAG, max_pixels=8192 * 8193).height == 8192
    with pytest.raises(CodecError, match="limit of 100"):
        pack(_c(), LAYOUT, max_pixels=100)


def test_pack_refuses_strings_the_layout_does_not_have():
    with pytest.raises(CodecError, match="string groups"):
        pack(_c(strings=[[b"a"]]), LAYOUT)


# ---------------------------------------------------------------------------- string guards
def _bottleneck():
    from compressai.entropy_models import EntropyBottleneck

    from rsicbench.reproduce.coding import rans_checked
    torch.manual_seed(0)
    eb = EntropyBottleneck(4)
    eb.update(force=True)
    holder = torch.nn.Module()
    holder.eb = eb
    rans_checked.install(holder, "test")
    return eb


def test_rans_strings_are_checked_padded_and_canonical():
    eb = _bottleneck()
    z = torch.randn(1, 4, 6, 6) * 3
    (s,) = eb.compress(z)
    assert torch.equal(eb.decompress([s], (6, 6)), torch.round(z))
    bad = [b"", s[:4], s[:-1], s[:-4], s + b"\0\0\0\0", s + s[:4]]
    for b in bad:  # empty, shorter than the final state, torn word, truncated, extended
        with pytest.raises(CodecError):
            eb.decompress([b], (6, 6))
    with pytest.raises(CodecError):  # right length, other shape: the symbols do not end there
        eb.decompress([s], (6, 7))


def test_gmm_strings_must_end_where_their_symbols_do():
    from rsicbench.reproduce.coding.entropy import AnsStream

    table = np.full((50, 8), 1 / 8)
    sym = np.random.default_rng(0).integers(0, 8, 50)
    enc = AnsStream()
    enc.encode(sym, table)
    s = enc.to_bytes(-3, 8)
    lo, n, dec = AnsStream.from_bytes(s)
    assert (lo, n) == (-3, 8) and np.array_equal(dec.decode(table), sym)
    dec.finish()
    lo, n, dec = AnsStream.from_bytes(s + b"\1\0\0\0")  # a word too many
    dec.decode(table)
    with pytest.raises(CodecError, match="does not end"):
        dec.finish()
    with pytest.raises(CodecError):
        AnsStream.from_bytes(s[:-1])
