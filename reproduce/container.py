"""The bitstream container of learned codecs: a small header, then the entropy-coded strings.

Layout (all integers little-endian):

    magic      4 bytes  b"RSLC"
    version    u8       FORMAT_VERSION
    model id   u8 length + UTF-8    registry name, e.g. "bmshj2018-hyperprior"
    model ver  u8 length + ASCII    architecture + weights fingerprint (see learned.py)
    height     u32, width u32       the original image size (decode crops to it)
    pad_h      u16, pad_w u16       rows/cols added at the bottom/right before coding
    shape      u8 count + u32 each  the latent shape compressai's decompress() needs
    groups     u8 count; per group: u16 count; per string: u32 length + bytes
    crc32      u32                  over everything before it

The CRC turns any corruption into a clear `CodecError` before a single symbol is decoded:
ANS decoders accept arbitrary bytes and would otherwise return a silently wrong image (or
loop for a long time on absurd shapes). Every length is bounds-checked against the data
actually present, so truncation is reported, never read past.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from rsicbench.reproduce.codec import CodecError

MAGIC = b"RSLC"
FORMAT_VERSION = 1
MAX_SIDE = 1 << 16  # refuse headers describing absurd images (corruption, not real data)


@dataclass
class Container:
    model_id: str
    model_version: str
    height: int
    width: int
    pad_h: int
    pad_w: int
    shape: list[int]
    strings: list[list[bytes]] = field(default_factory=list)


def _short(s: str, what: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 255:
        raise CodecError(f"container: {what} longer than 255 bytes: {s[:40]!r}...")
    return struct.pack("<B", len(b)) + b


def pack(c: Container) -> bytes:
    if not (0 < c.height <= MAX_SIDE and 0 < c.width <= MAX_SIDE):
        raise CodecError(f"container: image size {c.height}x{c.width} outside 1..{MAX_SIDE}")
    parts = [MAGIC, struct.pack("<B", FORMAT_VERSION), _short(c.model_id, "model id"),
             _short(c.model_version, "model version"),
             struct.pack("<IIHH", c.height, c.width, c.pad_h, c.pad_w),
             struct.pack("<B", len(c.shape)), *(struct.pack("<I", int(s)) for s in c.shape),
             struct.pack("<B", len(c.strings))]
    for group in c.strings:
        parts.append(struct.pack("<H", len(group)))
        for s in group:
            parts.append(struct.pack("<I", len(s)) + bytes(s))
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


class _Reader:
    def __init__(self, data: bytes, who: str):
        self.data, self.pos, self.who = data, 0, who

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CodecError(f"{self.who}: truncated bitstream (reading {what} at byte {self.pos}, "
                             f"need {n}, have {len(self.data) - self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def unpack(data: bytes, who: str = "learned codec") -> Container:
    """Parse and validate a container; any inconsistency is a `CodecError` naming the problem."""
    data = bytes(data)
    if len(data) < len(MAGIC) + 5:
        raise CodecError(f"{who}: truncated bitstream ({len(data)} bytes)")
    if data[:4] != MAGIC:
        raise CodecError(f"{who}: not a learned-codec bitstream (magic {data[:4]!r}, expected {MAGIC!r})")
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise CodecError(f"{who}: corrupted or truncated bitstream (CRC mismatch)")
    r = _Reader(body, who)
    r.take(4, "magic")
    (version,) = r.unpack("<B", "format version")
    if version != FORMAT_VERSION:
        raise CodecError(f"{who}: container format version {version} unsupported (this build reads {FORMAT_VERSION})")
    model_id = r.take(r.unpack("<B", "model id length")[0], "model id").decode("utf-8", "replace")
    model_version = r.take(r.unpack("<B", "model version length")[0], "model version").decode("ascii", "replace")
    height, width, pad_h, pad_w = r.unpack("<IIHH", "image size")
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise CodecError(f"{who}: header image size {height}x{width} outside 1..{MAX_SIDE}")
    (n_shape,) = r.unpack("<B", "shape length")
    shape = [r.unpack("<I", "shape")[0] for _ in range(n_shape)]
    (n_groups,) = r.unpack("<B", "string group count")
    strings = []
    for _ in range(n_groups):
        (n,) = r.unpack("<H", "string count")
        strings.append([r.take(r.unpack("<I", "string length")[0], "string") for _ in range(n)])
    if r.pos != len(body):
        raise CodecError(f"{who}: {len(body) - r.pos} trailing bytes after the last string")
    return Container(model_id, model_version, height, width, pad_h, pad_w, shape, strings)
