"""The bitstream container of learned codecs (format 3): a ~14-byte header, then the strings.

Layout (varint = unsigned LEB128, shortest form only):

    magic      1 byte   0xB5
    version    1 byte   FORMAT_VERSION (3; 2 had the same layout but compressai's coding-table
                        choices, see coding_tables.py)
    model tag  4 bytes  first 4 bytes of sha256(model name, weights fingerprint)
    height     varint   the original image size (decode crops to it)
    width      varint
    lengths    varint   per string, in the model's group order, EXCEPT the last one
    strings             the entropy-coded strings, concatenated (the last one runs to the CRC)
    crc16      2 bytes  CRC-16/CCITT (binascii.crc_hqx) over everything before it, little-endian

Nothing the model determines is stored, it is derived (`Layout`, from the model itself): the
padding is the minimal one to a multiple of `downsampling`, the latent shape is the padded
size divided by the model's latent stride, and the number of string groups and strings per
group are the model's. So a header cannot describe a latent shape the model would not
produce, and the lengths always sum to the payload exactly (the last string takes the rest;
each stored length must fit in what is left).

The image must be within `max_pixels` (default `MAX_PIXELS` = 2**26, e.g. 8192x8192):
`unpack` refuses larger sizes before any symbol is decoded, so decoding work and memory are
bounded by a size the caller chose.

The CRC catches accidental corruption (all single-bit errors and every burst <= 16 bits)
before decoding. A stream with a forged header and a recomputed CRC is caught by the derived
layout, the tag, and the entropy coders' own canonical-stream checks (reproduce/coding/entropy.py).

Version 1 streams (magic `RSLC`, 63-67-byte header) are refused with a message naming the
version; re-encode the image.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass, field

from rsicbench.errors import CodecError

MAGIC = 0xB5
FORMAT_VERSION = 3
OLD_TABLES_VERSION = 2  # same layout, compressai's scale index and bottleneck tables
V1_MAGIC = b"RSLC"
TAG_BYTES = 4
MAX_PIXELS = 1 << 26
_MAX_VARINT_BYTES = 5  # < 2**35: no image side or string length comes close


@dataclass(frozen=True)
class Layout:
    """What a model determines about its streams (derived, never read from a header)."""

    downsampling: int  # input padded to a multiple of this
    stride: int  # padded size / latent shape (the `shape` given to decompress)
    groups: tuple[int, ...]  # strings per group (batch of 1)

    def padding(self, height: int, width: int) -> tuple[int, int]:
        return (-height) % self.downsampling, (-width) % self.downsampling

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        ph, pw = self.padding(height, width)
        return (height + ph) // self.stride, (width + pw) // self.stride

    @property
    def n_strings(self) -> int:
        return sum(self.groups)


@dataclass
class Container:
    tag: bytes
    height: int
    width: int
    strings: list[list[bytes]] = field(default_factory=list)


def model_tag(model_name: str, fingerprint: str) -> bytes:
    """4 bytes naming the model and its weights: a stream of another model is refused."""
    return hashlib.sha256(f"{model_name}\0{fingerprint}".encode()).digest()[:TAG_BYTES]


def varint(n: int) -> bytes:
    if n < 0:
        raise CodecError(f"container: negative value {n}")
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _crc(body: bytes) -> bytes:
    return binascii.crc_hqx(body, 0).to_bytes(2, "little")


def check_size(height: int, width: int, max_pixels: int, who: str) -> None:
    if not (height > 0 and width > 0):
        raise CodecError(f"{who}: image size {height}x{width} is empty")
    if height * width > max_pixels:
        raise CodecError(f"{who}: image size {height}x{width} = {height * width} pixels exceeds the "
                         f"limit of {max_pixels} (codec option max_pixels)")


def pack(c: Container, layout: Layout, max_pixels: int = MAX_PIXELS, who: str = "learned codec") -> bytes:
    check_size(c.height, c.width, max_pixels, who)
    counts = tuple(len(g) for g in c.strings)
    if counts != layout.groups:
        raise CodecError(f"{who}: the model returned string groups {counts}, its layout says {layout.groups}")
    if len(c.tag) != TAG_BYTES:
        raise CodecError(f"{who}: model tag must be {TAG_BYTES} bytes")
    flat = [bytes(s) for g in c.strings for s in g]
    parts = [bytes([MAGIC, FORMAT_VERSION]), c.tag, varint(c.height), varint(c.width)]
    parts += [varint(len(s)) for s in flat[:-1]]
    body = b"".join(parts + flat)
    return body + _crc(body)


class _Reader:
    def __init__(self, data: bytes, end: int, who: str):
        self.data, self.pos, self.end, self.who = data, 0, end, who

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise CodecError(f"{self.who}: truncated or inconsistent bitstream ({what} at byte {self.pos} "
                             f"needs {n} bytes, {self.end - self.pos} left)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        n, self.pos = read_varint(self.data, self.pos, self.end, f"{self.who}: {what}")
        return n


def read_varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """(value, next position) of the shortest-form varint at `pos`; `what` names it in errors."""
    n = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise CodecError(f"{what}: truncated bitstream (varint at byte {pos}, no bytes left)")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if b == 0 and i:  # a longer encoding of a shorter number: not what pack writes
                raise CodecError(f"{what}: non-canonical varint at byte {pos - 1}")
            return n, pos
    raise CodecError(f"{what}: varint longer than {_MAX_VARINT_BYTES} bytes at byte {pos}")


def unpack(data: bytes, layout: Layout, tag: bytes, max_pixels: int = MAX_PIXELS,
           who: str = "learned codec") -> Container:
    """Parse and validate a container (format 3) for a model with `layout` and `tag`. Every check
    runs before any symbol is decoded; any failure is a `CodecError` naming the problem."""
    data = bytes(data)
    if data[:4] == V1_MAGIC:
        raise CodecError(f"{who}: container format version 1 (magic 'RSLC') is no longer read; "
                         f"this build reads version {FORMAT_VERSION}: re-encode the image")
    if len(data) < 2 or data[0] != MAGIC:
        raise CodecError(f"{who}: not a learned-codec bitstream (first byte {data[:1].hex() or 'missing'}, "
                         f"expected {MAGIC:02x})")
    if data[1] == OLD_TABLES_VERSION:
        raise CodecError(f"{who}: container format version 2 (coded with compressai's scale-index and "
                         f"bottleneck tables) is no longer read; this build reads version {FORMAT_VERSION}: "
                         f"re-encode the image")
    if data[1] != FORMAT_VERSION:
        raise CodecError(f"{who}: container format version {data[1]} unsupported (this build reads {FORMAT_VERSION})")
    if len(data) < 2 + TAG_BYTES + 2 + 2:
        raise CodecError(f"{who}: truncated bitstream ({len(data)} bytes)")
    body = data[:-2]
    if _crc(body) != data[-2:]:
        raise CodecError(f"{who}: corrupted or truncated bitstream (CRC mismatch)")
    r = _Reader(body, len(body), who)
    r.take(2, "magic")
    got = r.take(TAG_BYTES, "model tag")
    if got != tag:
        raise CodecError(f"{who}: bitstream was made by another model or other weights "
                         f"(tag {got.hex()}, this codec's is {tag.hex()}: wrong checkpoint?)")
    height, width = r.varint("height"), r.varint("width")
    check_size(height, width, max_pixels, who)
    lengths = [r.varint("string length") for _ in range(layout.n_strings - 1)]
    flat = [r.take(n, f"string {i}") for i, n in enumerate(lengths)]
    flat.append(r.take(len(body) - r.pos, "last string"))
    strings, i = [], 0
    for n in layout.groups:
        strings.append(flat[i:i + n])
        i += n
    return Container(got, height, width, strings)
