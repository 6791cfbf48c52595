"""The bitstream container of learned codecs (format 4): a 7-byte header around one rANS stream.

Layout (varint = unsigned LEB128, shortest form only):

    format     1 byte   0xB4 (format 4)
    height     varint   the original image size (decode crops to it)
    width      varint
    payload             one rANS stream holding every symbol of every entropy model (rans.py,
                        shared_stream.py), in the order the model codes them
    crc16      2 bytes  CRC-16/CCITT (binascii.crc_hqx) over the model tag, then everything
                        before it; little-endian

The model tag (first 4 bytes of sha256(model name, weights fingerprint)) is not stored: it
seeds the CRC, and, with the image size, the rANS coder's initial state (`stream_seed`), which
the decoder must end in. So a stream of another model or other weights fails the CRC (or, one
time in 65,536, the final-state check), and so does a header whose size was changed.

Nothing the model determines is stored, it is derived (`Layout`, from the model itself): the
padding is the minimal one to a multiple of `downsampling`, the latent shape is the padded
size divided by the model's latent stride, and the string groups are the model's. So a
header cannot describe a latent shape the model would not produce, and the autoregressive
decoders' work is bounded by the declared size.

The image must be within `max_pixels` (default `MAX_PIXELS` = 2**26, e.g. 8192x8192):
`unpack` refuses larger sizes before any symbol is decoded, so decoding work and memory are
bounded by a size the caller chose.

The CRC catches accidental corruption (all single-bit errors and every burst <= 16 bits)
before decoding; a forged stream with a recomputed CRC is refused by the coder (it must end
exactly at its last byte, in the seed state: rans.py).

Older formats are refused with a message naming the version (1: magic `RSLC`; 2 and 3: magic
0xB5 and a version byte, one compressai rANS string per entropy model); re-encode the image.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

from rsicbench.errors import CodecError

FORMAT_VERSION = 4
MAGIC = 0xB0 | FORMAT_VERSION  # one byte: format 4
OLD_MAGIC = 0xB5  # formats 2 and 3: this byte, then the version
V1_MAGIC = b"RSLC"
TAG_BYTES = 4
HEADER_BYTES_256 = 1 + 2 + 2 + 2  # format, height and width varints at 256 px, CRC
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


@dataclass
class Container:
    height: int
    width: int
    payload: bytes


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


def _crc(tag: bytes, body: bytes) -> bytes:
    return binascii.crc_hqx(body, binascii.crc_hqx(tag, 0)).to_bytes(2, "little")


def stream_seed(tag: bytes, height: int, width: int) -> int:
    """The rANS coder's initial (and required final) state bits: model tag and image size."""
    return int.from_bytes(hashlib.sha256(tag + varint(height) + varint(width)).digest()[:4], "little")


def check_size(height: int, width: int, max_pixels: int, who: str) -> None:
    if not (height > 0 and width > 0):
        raise CodecError(f"{who}: image size {height}x{width} is empty")
    if height * width > max_pixels:
        raise CodecError(f"{who}: image size {height}x{width} = {height * width} pixels exceeds the "
                         f"limit of {max_pixels} (codec option max_pixels)")


def pack(tag: bytes, height: int, width: int, payload: bytes, max_pixels: int = MAX_PIXELS,
         who: str = "learned codec") -> bytes:
    check_size(height, width, max_pixels, who)
    if len(tag) != TAG_BYTES:
        raise CodecError(f"{who}: model tag must be {TAG_BYTES} bytes")
    body = bytes([MAGIC]) + varint(height) + varint(width) + bytes(payload)
    return body + _crc(tag, body)


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


def unpack(data: bytes, tag: bytes, max_pixels: int = MAX_PIXELS, who: str = "learned codec") -> Container:
    """Parse and validate a container (format 4) for a model with `tag`. Every check runs
    before any symbol is decoded; any failure is a `CodecError` naming the problem."""
    data = bytes(data)
    if data[:4] == V1_MAGIC:
        raise CodecError(f"{who}: container format version 1 (magic 'RSLC') is no longer read; "
                         f"this build reads version {FORMAT_VERSION}: re-encode the image")
    if len(data) >= 2 and data[0] == OLD_MAGIC and data[1] in (2, 3):
        raise CodecError(f"{who}: container format version {data[1]} (one compressai rANS string per "
                         f"entropy model) is no longer read; this build reads version {FORMAT_VERSION}: "
                         f"re-encode the image")
    if not data or data[0] != MAGIC:
        raise CodecError(f"{who}: not a learned-codec bitstream of format {FORMAT_VERSION} (first byte "
                         f"{data[:1].hex() or 'missing'}, expected {MAGIC:02x})")
    if len(data) < 1 + 2 + 2:
        raise CodecError(f"{who}: truncated bitstream ({len(data)} bytes)")
    body = data[:-2]
    if _crc(tag, body) != data[-2:]:
        raise CodecError(f"{who}: corrupted or truncated bitstream, or made by another model or other "
                         f"weights (check mismatch: wrong checkpoint?)")
    r = _Reader(body, len(body), who)
    r.take(1, "format")
    height, width = r.varint("height"), r.varint("width")
    check_size(height, width, max_pixels, who)
    return Container(height, width, body[r.pos:])
