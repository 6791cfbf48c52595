"""The rANS coder of container format 4 (reproduce/coding/rans.py): exact round trips with
compressai's tables (escapes included), per-symbol rows and integers; a cost within a few
bytes of the symbols' information; every truncated, extended, reseeded or random stream
refused unless it is exactly the encoding of what it decodes to."""

import numpy as np
import pytest

from rsicbench.errors import CodecError
from rsicbench.reproduce.coding import rans

# two compressai-style tables (16-bit CDFs, last entry = escape), offsets -2 and -1
CDFS = [[0, 1000, 30000, 60000, 65000, 65536, 0, 0], [0, 20000, 45000, 65536, 0, 0, 0, 0]]
LENGTHS = [6, 4]
OFFSETS = [-2, -1]


def _rows():
    return rans.table_rows(CDFS, LENGTHS)


def _symbols(rng, n=400):
    idx = rng.integers(0, 2, n).tolist()
    vals = [int(v) for v in rng.integers(-3, 3, n)]
    vals[::37] = [int(v) for v in rng.integers(-5000, 5000, len(vals[::37]))]  # escapes
    return vals, idx


def _encode(seed, vals, idx, rows_sym=None, ints=()):
    enc = rans.Encoder(seed)
    for v in ints:
        enc.uint(v)
    enc.table_symbols(vals, idx, _rows(), OFFSETS)
    if rows_sym is not None:
        enc.row_symbols(*rows_sym)
    return enc.finish()


def test_round_trip_tables_rows_and_integers():
    rng = np.random.default_rng(0)
    vals, idx = _symbols(rng)
    pmf = rng.random((50, 7)) ** 4
    rows = rans.quantize_pmf(pmf)
    sym = rng.integers(0, 7, 50)
    data = _encode(123, vals, idx, (sym, rows), ints=(0, 5, 15, 16, 2 ** 31))
    dec = rans.Decoder(data, 123, "t")
    assert [dec.uint() for _ in range(5)] == [0, 5, 15, 16, 2 ** 31]
    assert dec.table_symbols(idx, _rows(), OFFSETS) == vals
    assert np.array_equal(dec.row_symbols(rows), sym)
    dec.finish()


def test_quantized_rows_keep_every_symbol_and_sum_to_one():
    rows = rans.quantize_pmf(np.array([[1.0, 1e-30, 0.5], [1e-20, 1e-20, 1.0]]))
    f = np.diff(rows, axis=1)
    assert (f >= 1).all() and (rows[:, -1] == rans.TOTAL).all() and (rows[:, 0] == 0).all()


def test_cost_is_the_information_plus_the_final_state():
    rng = np.random.default_rng(1)
    p = np.array([0.7, 0.2, 0.05, 0.05])
    sym = rng.choice(4, 20000, p=p)
    rows = rans.quantize_pmf(np.tile(p, (len(sym), 1)))
    enc = rans.Encoder(0)
    enc.row_symbols(sym, rows)
    info = -np.log2(p[sym]).sum() / 8
    assert info < len(enc.finish()) < info + rans.FINAL_STATE_BYTES + 2


def test_truncated_extended_or_reseeded_streams_are_refused():
    rng = np.random.default_rng(2)
    vals, idx = _symbols(rng)
    data = _encode(7, vals, idx)
    bad = [data[:-1], data + b"\0", data + b"\x01", data[:3], b"", b"\0" * 5]
    for b in bad:
        with pytest.raises(CodecError):
            dec = rans.Decoder(b, 7, "t")
            dec.table_symbols(idx, _rows(), OFFSETS)
            dec.finish()
    dec = rans.Decoder(data, 8, "t")  # another model's or size's seed
    dec.table_symbols(idx, _rows(), OFFSETS)
    with pytest.raises(CodecError, match="check state"):
        dec.finish()


def test_only_canonical_streams_decode():
    """Random bytes and bit-flipped streams: whatever passes `finish` re-encodes to itself.
    Random bytes almost never pass (31-bit final-state check). A flip inside a uniform escape
    nibble is another canonical stream (those bits are raw): only the container's CRC can
    catch such a flip, and it does (test_container)."""
    rng = np.random.default_rng(3)
    vals, idx = _symbols(rng, 60)
    data = _encode(0, vals, idx)
    accepted = {0: 0, 1: 0}
    for k in range(3000):
        if k % 2:
            b = bytearray(data)
            i = int(rng.integers(0, 8 * len(b)))
            b[i // 8] ^= 1 << (i % 8)
            b = bytes(b)
        else:
            b = bytes(rng.integers(0, 256, int(rng.integers(5, 40)), dtype=np.uint8))
        try:
            dec = rans.Decoder(b, 0, "t")
            got = dec.table_symbols(idx, _rows(), OFFSETS)
            dec.finish()
        except CodecError:
            continue
        accepted[k % 2] += 1
        assert _encode(0, got, idx) == b
    assert accepted[0] == 0  # random streams: acceptance ~2**-31 each
    assert accepted[1] < 1500 * 0.3  # flips: only those inside escape nibbles
