"""Container: round trip, and every corruption or truncation is a clear CodecError."""

import pytest

from rsicbench.reproduce.codec import CodecError
from rsicbench.reproduce.container import Container, pack, unpack


def _c():
    return Container("bmshj2018-hyperprior", "abc123", 70, 90, 58, 38, [2, 3], [[b"\x01\x02\x03"], [b"zz", b""]])


def test_round_trip():
    c = _c()
    assert unpack(pack(c)) == c


def test_every_flipped_byte_and_truncation_is_rejected():
    data = pack(_c())
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        with pytest.raises(CodecError):
            unpack(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(CodecError):
            unpack(data[:n])


def test_wrong_magic_names_the_problem():
    with pytest.raises(CodecError, match="not a learned-codec bitstream"):
        unpack(b"\x89PNG" + b"\0" * 40)


def test_refuses_absurd_size():
    with pytest.raises(CodecError, match="image size"):
        pack(Container("m", "v", 0, 5, 0, 0, [1, 1], []))
