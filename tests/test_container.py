"""Container format 4: round trip, a 7-byte header, every corruption or forgery a clear
CodecError, older formats refused by name."""

import binascii

import pytest

from rsicbench.reproduce.coding import container
from rsicbench.reproduce.codecs.base import CodecError
from rsicbench.reproduce.coding.container import Container, Layout, model_tag, pack, unpack

LAYOUT = Layout(downsampling=64, stride=64, groups=(1, 1))
TAG = model_tag("bmshj2018-hyperprior", "abc123def456")
PAYLOAD = b"\x81\x02\x03\x04\x05" * 60


def _forge(h, w, payload=PAYLOAD, tag=TAG, first=container.MAGIC):
    body = bytes([first]) + container.varint(h) + container.varint(w) + payload
    return body + binascii.crc_hqx(body, binascii.crc_hqx(tag, 0)).to_bytes(2, "little")


def test_round_trip_and_derived_fields():
    assert unpack(pack(TAG, 70, 90, PAYLOAD), TAG) == Container(70, 90, PAYLOAD)
    assert pack(TAG, 70, 90, PAYLOAD) == _forge(70, 90)
    assert LAYOUT.padding(70, 90) == (58, 38)
    assert LAYOUT.latent_shape(70, 90) == (2, 2)
    assert Layout(64, 16, (1,)).latent_shape(256, 200) == (16, 16)


def test_header_is_small():
    """256x256: format 1 byte, size 2+2, CRC 2 = 7 bytes around the payload (format 3: 12-16
    plus one rANS string per entropy model; format 1: 63-67)."""
    data = pack(TAG, 256, 256, PAYLOAD)
    assert len(data) - len(PAYLOAD) == 7 == container.HEADER_BYTES_256


def test_every_flipped_byte_and_truncation_is_rejected():
    data = pack(TAG, 70, 90, PAYLOAD)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(CodecError):
            unpack(bytes(bad), TAG)
    for n in range(len(data)):
        with pytest.raises(CodecError):
            unpack(data[:n], TAG)


def test_older_and_foreign_streams_name_the_problem():
    with pytest.raises(CodecError, match="version 1"):
        unpack(b"RSLC\x01" + b"\0" * 80, TAG)
    with pytest.raises(CodecError, match="not a learned-codec bitstream"):
        unpack(b"\x89PNG" + b"\0" * 40, TAG)
    for v in (2, 3):  # one compressai string per entropy model
        with pytest.raises(CodecError, match=f"version {v} .*re-encode the image"):
            unpack(bytes([0xB5, v]) + b"\0" * 40, TAG)
    with pytest.raises(CodecError, match="not a learned-codec bitstream of format 4"):
        unpack(_forge(70, 90, first=0xB5), TAG)


def test_another_models_stream_and_forged_headers_are_refused():
    with pytest.raises(CodecError, match="another model or other weights"):
        unpack(_forge(70, 90, tag=b"\0\0\0\0"), TAG)
    with pytest.raises(CodecError, match="empty"):
        unpack(_forge(0, 90), TAG)
    body = bytes([container.MAGIC]) + b"\xc6\x00" + container.varint(90) + PAYLOAD  # 70 as a 2-byte varint
    with pytest.raises(CodecError, match="non-canonical"):
        unpack(body + binascii.crc_hqx(body, binascii.crc_hqx(TAG, 0)).to_bytes(2, "little"), TAG)


def test_the_coder_seed_binds_tag_and_size():
    seeds = {container.stream_seed(TAG, 70, 90), container.stream_seed(TAG, 71, 90),
             container.stream_seed(TAG, 70, 91), container.stream_seed(b"\0\0\0\0", 70, 90)}
    assert len(seeds) == 4


def test_pixel_limit_is_configurable():
    data = _forge(8192, 8193)
    with pytest.raises(CodecError, match="exceeds the limit of 67108864"):
        unpack(data, TAG)
    assert unpack(data, TAG, max_pixels=8192 * 8193).height == 8192
    with pytest.raises(CodecError, match="limit of 100"):
        pack(TAG, 70, 90, PAYLOAD, max_pixels=100)
