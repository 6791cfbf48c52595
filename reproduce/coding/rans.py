"""One rANS stream for all of a learned codec's symbols (container format 4).

Why our own coder and not compressai's: compressai's Rans64 writes one string per entropy
model and sample, each ending in a 64-bit state of which ~31 bits carry nothing, and its C++
decoder has no bounds checks. With a 7-byte header that fixed cost kept real/estimated bpp
above 1.01 below ~0.32 bpp. Here every symbol of an image goes into ONE stream with one
5-byte final state, and the 31 free bits of the initial state carry a check (`seed`: the
model tag and image size): a stream decodes only if it ends exactly at its last byte in
exactly that state.

Byte-wise rANS (Duda 2013; as Giesen's rans_byte): state x in [L, 256·L), L = 2**31,
probabilities in units of 2**-24. The encoder buffers (start, freq) pairs and codes them in
reverse at `finish` (rANS is last-in first-out), so the decoder reads symbols in the order
they were pushed: what autoregressive models need. Plain Python integers: a forged stream
cannot make it read outside its input, and decoding stops at the first byte it lacks.

Canonical: with L a multiple of 2**PRECISION and byte renormalization the decoder's steps
are exact inverses of the encoder's (b-uniqueness), so a stream that decodes to its last
byte and ends in the seed state is the encoding of the symbols it decoded to, byte for byte.

Symbols:
  * compressai tables (`table_symbols`): its 16-bit quantized CDFs (scaled to 24 bits,
    same probabilities) with its escape rule: a value outside the table codes the escape
    symbol, then 4-bit nibbles (their count, in steps of 15, then the value's nibbles);
  * per-symbol CDF rows (`row_symbols`; the GMM coder's mixtures, `quantize_pmf`);
  * small unsigned integers (`uint`) in the same nibble code.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from rsicbench.errors import CodecError

PRECISION = 24
TOTAL = 1 << PRECISION
L = 1 << 31
X_MAX = L << 8
SEED_MASK = L - 1
_SHIFT = 8 + 31 - PRECISION  # x_max(freq) = freq << _SHIFT  (= (L >> PRECISION) << 8 times freq)
TABLE_PRECISION = 16  # compressai's quantized CDFs
NIBBLE = 4
MAX_NIBBLE = (1 << NIBBLE) - 1
_NIB_FREQ = TOTAL >> NIBBLE
MAX_NIBBLES = 8  # |value| < 2**31: a longer count is a corrupted stream
FINAL_STATE_BYTES = 5


def quantize_pmf(table: np.ndarray) -> np.ndarray:
    """(k, n) float64 pmfs -> (k, n + 1) int64 CDFs in units of 2**-PRECISION: every symbol
    at least 1, the remainder of the rounding on each row's most probable symbol.
    Deterministic for identical floats, so encoder and decoder build identical rows."""
    p = np.asarray(table, dtype=np.float64)
    k, n = p.shape
    p = p / p.sum(1, keepdims=True)
    f = 1 + np.floor(p * (TOTAL - n)).astype(np.int64)
    f[np.arange(k), p.argmax(1)] += TOTAL - f.sum(1)
    cdf = np.zeros((k, n + 1), dtype=np.int64)
    np.cumsum(f, axis=1, out=cdf[:, 1:])
    return cdf


def table_rows(cdfs, lengths) -> list[list[int]]:
    """compressai's quantized CDF rows (each cut to its length), scaled to PRECISION bits."""
    up = PRECISION - TABLE_PRECISION
    return [[int(v) << up for v in row[:int(n)]] for row, n in zip(cdfs, lengths)]


class Encoder:
    def __init__(self, seed: int):
        self.x0 = L | (seed & SEED_MASK)
        self._start: list[int] = []
        self._freq: list[int] = []

    def _nibble(self, v: int) -> None:
        self._start.append(v * _NIB_FREQ)
        self._freq.append(_NIB_FREQ)

    def uint(self, v: int) -> None:
        """v >= 0 as a nibble count (steps of 15) and its nibbles, low first (compressai's bypass)."""
        if v < 0 or v >> (NIBBLE * MAX_NIBBLES):
            raise CodecError(f"rANS: value {v} outside the coder's range 0..2**{NIBBLE * MAX_NIBBLES}")
        n = 0
        while v >> (NIBBLE * n):
            n += 1
        c = n
        while c >= MAX_NIBBLE:
            self._nibble(MAX_NIBBLE)
            c -= MAX_NIBBLE
        self._nibble(c)
        for j in range(n):
            self._nibble((v >> (NIBBLE * j)) & MAX_NIBBLE)

    def table_symbols(self, values, indexes, rows: list[list[int]], offsets) -> None:
        start, freq = self._start, self._freq
        for s, i in zip(values, indexes):
            row = rows[i]
            max_value = len(row) - 2
            v = int(s) - offsets[i]
            if 0 <= v < max_value:
                start.append(row[v])
                freq.append(row[v + 1] - row[v])
                continue
            start.append(row[max_value])
            freq.append(row[max_value + 1] - row[max_value])
            self.uint(-2 * v - 1 if v < 0 else 2 * (v - max_value))

    def row_symbols(self, symbols, rows: np.ndarray) -> None:
        k = np.arange(len(rows))
        s = np.asarray(symbols, dtype=np.int64)
        if len(s) != len(rows) or (len(s) and (s.min() < 0 or s.max() >= rows.shape[1] - 1)):
            raise CodecError("rANS: symbols outside their CDF rows")
        lo = rows[k, s]
        self._start.extend(lo.tolist())
        self._freq.extend((rows[k, s + 1] - lo).tolist())

    def finish(self) -> bytes:
        x, out = self.x0, bytearray()
        for start, freq in zip(reversed(self._start), reversed(self._freq)):
            x_max = freq << _SHIFT
            while x >= x_max:
                out.append(x & 0xFF)
                x >>= 8
            x = ((x // freq) << PRECISION) + x % freq + start
        out += x.to_bytes(FINAL_STATE_BYTES, "little")
        out.reverse()
        return bytes(out)


class Decoder:
    """Reads what `Encoder` wrote; every problem is a `CodecError` naming `who`."""

    def __init__(self, data: bytes, seed: int, who: str):
        self.data, self.who, self.x0 = bytes(data), who, L | (seed & SEED_MASK)
        if len(self.data) < FINAL_STATE_BYTES:
            raise CodecError(f"{who}: truncated bitstream ({len(self.data)} payload bytes, "
                             f"the coder's state alone takes {FINAL_STATE_BYTES})")
        self.x = int.from_bytes(self.data[:FINAL_STATE_BYTES], "big")
        self.pos = FINAL_STATE_BYTES
        if not L <= self.x < X_MAX:
            raise CodecError(f"{who}: corrupted or forged bitstream (coder state out of range)")

    def _advance(self, start: int, freq: int, slot: int) -> None:
        x = freq * (self.x >> PRECISION) + slot - start
        data, pos = self.data, self.pos
        while x < L:
            if pos >= len(data):
                raise CodecError(f"{self.who}: truncated or forged bitstream (the coder needs byte {pos}, "
                                 f"the payload has {len(data)})")
            x = (x << 8) | data[pos]
            pos += 1
        self.x, self.pos = x, pos

    def _nibble(self) -> int:
        slot = self.x & (TOTAL - 1)
        v = slot // _NIB_FREQ
        self._advance(v * _NIB_FREQ, _NIB_FREQ, slot)
        return v

    def uint(self) -> int:
        n = c = self._nibble()
        while c == MAX_NIBBLE:
            c = self._nibble()
            n += c
            if n > MAX_NIBBLES:
                break
        if n > MAX_NIBBLES:
            raise CodecError(f"{self.who}: corrupted or forged bitstream (escape of {n} nibbles)")
        v = 0
        for j in range(n):
            v |= self._nibble() << (NIBBLE * j)
        if n and not v >> (NIBBLE * (n - 1)):  # a leading zero nibble: not what the encoder writes
            raise CodecError(f"{self.who}: corrupted or forged bitstream (non-canonical escape)")
        return v

    def table_symbols(self, indexes, rows: list[list[int]], offsets) -> list[int]:
        out = []
        mask = TOTAL - 1
        for i in indexes:
            row = rows[i]
            max_value = len(row) - 2
            slot = self.x & mask
            v = bisect_right(row, slot) - 1
            self._advance(row[v], row[v + 1] - row[v], slot)
            if v == max_value:
                raw = self.uint()
                v = -(raw >> 1) - 1 if raw & 1 else (raw >> 1) + max_value
            out.append(v + offsets[i])
        return out

    def row_symbols(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.int64)
        mask = TOTAL - 1
        for k, row in enumerate(rows.tolist()):
            slot = self.x & mask
            v = bisect_right(row, slot) - 1
            self._advance(row[v], row[v + 1] - row[v], slot)
            out[k] = v
        return out

    def finish(self) -> None:
        """Refuse a stream with bytes left over or that does not end in the seed state."""
        if self.pos != len(self.data) or self.x != self.x0:
            raise CodecError(f"{self.who}: corrupted or forged bitstream, or made by another model or "
                             f"other weights (the coder "
                             + ("ends with bytes left over)" if self.pos != len(self.data)
                                else "does not end in this model's check state)"))
