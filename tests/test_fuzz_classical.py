"""Fuzz the six classical decoders: ~100 fixed-seed mutated or unusual streams per codec.

Each stream is decoded by two long-lived worker processes (this file run as a script), each under
an address-space limit (RLIMIT_AS) and a per-decode time limit; a worker that crashes or hangs is
counted and restarted. Asserted: no crash, no hang, every failure is a CodecError, no codec decodes
another format's stream, both processes agree on every outcome (same pixels for every decode), and
the valid streams the libraries write (grayscale, >8-bit, alpha, ...) decode by the image rule.

Mutation kinds: valid, variant (library-made grayscale / 10-16-bit / alpha / CMYK / container
streams), foreign (the other codecs' streams and PNG), size_lie (header width/height edits),
truncate, extend, bitflip, overwrite (runs of random bytes).
Run `pytest tests/test_fuzz_classical.py -s` to see the counts.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

CODECS = ("jpeg", "jpeg2000", "webp", "hevc", "avif", "jpegxl")
QUALITY = {"jpeg": 50, "jpeg2000": 20, "webp": 50, "hevc": 40, "avif": 50, "jpegxl": 50}
MEMORY_LIMIT = 3 << 30  # RLIMIT_AS per worker: room for one image at the default pixel limit
# seconds per decode before it counts as a hang: generous, because the just-under-the-limit
# size lies (9459^2 pixels) really decode ~270 MB and take >10 s on a loaded 2-core machine
DECODE_TIMEOUT = 60.0
SEED = 20261201


# ---------------------------------------------------------------- worker (runs in a subprocess)


def _worker() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import pillow_heif
    from PIL import AvifImagePlugin

    from rsicbench.reproduce.codecs import classical as C
    from rsicbench.reproduce.codecs.base import CodecError

    pillow_heif.options.DECODE_THREADS = 1  # the worker's own process: one thread per decode
    AvifImagePlugin.DEFAULT_MAX_THREADS = 1
    # the classes themselves: create_codec would also import the learned codecs (torch)
    classes = (C.JpegCodec, C.Jpeg2000Codec, C.WebpCodec, C.HevcCodec, C.AvifCodec, C.JpegXlCodec)
    codecs = {cls.name: cls(QUALITY[cls.name]) for cls in classes}  # default max_pixels
    inp, out = sys.stdin.buffer, sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        n_name, n_data = struct.unpack("<II", head)
        name, data = inp.read(n_name).decode(), inp.read(n_data)
        try:
            rec = codecs[name].decode(data)
            if not (isinstance(rec, np.ndarray) and rec.dtype == np.uint8 and rec.ndim == 3 and rec.shape[2] == 3):
                raise TypeError(f"decoded {type(rec).__name__} {getattr(rec, 'shape', None)}")
            reply = {"outcome": "decoded", "shape": list(rec.shape), "sha": hashlib.sha256(rec.tobytes()).hexdigest()}
        except CodecError as e:
            reply = {"outcome": "CodecError", "msg": str(e)}
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            reply = {"outcome": "other", "msg": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


# ---------------------------------------------------------------- parent side


class _Worker:
    """One decoding subprocess; `decode` returns its reply, or a crash/hang record."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env,
        )
        self.buf = b""
        if self.receive(timeout=120) != "ready":
            self.log.seek(0)
            raise RuntimeError(f"fuzz worker did not start: {self.log.read()[-2000:].decode(errors='replace')}")

    def send(self, name: str, data: bytes) -> None:
        try:
            self.proc.stdin.write(struct.pack("<II", len(name), len(data)) + name.encode() + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died; `receive` reports the crash

    def receive(self, timeout: float = DECODE_TIMEOUT) -> dict | str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                return {"outcome": "hang"}
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.wait()
                    self.log.seek(0)
                    tail = self.log.read()[-300:].decode(errors="replace")
                    return {"outcome": "crash", "msg": f"exit {code}: {tail}"}
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return "ready" if line == b"ready" else json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _image(rng, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x * 200 / w + 20, y * 200 / h + 20, (x + y) * 100 / (h + w) + 60], axis=2)
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def _pil(arr: np.ndarray, fmt: str, mode: str | None = None, **kw) -> bytes:
    from PIL import Image

    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _heif(arr: np.ndarray, mode: str) -> bytes:
    import pillow_heif

    h, w = arr.shape[:2]
    buf = io.BytesIO()
    pillow_heif.from_bytes(mode=mode, size=(w, h), data=np.ascontiguousarray(arr).tobytes()).save(buf, quality=90)
    return buf.getvalue()


def _variants(rng) -> dict[str, list[tuple[str, bytes, np.ndarray]]]:
    """Valid streams the libraries write beyond our encoders' 8-bit RGB, with the rule's expected image."""
    import imagecodecs

    from rsicbench.imageio import to_rgb8

    rgb = _image(rng, 40, 56)
    gray = rgb[:, :, 1].copy()
    rgba = np.dstack([rgb, gray])
    rgb16 = (rgb.astype(np.uint16) * 257 + rng.integers(0, 257, rgb.shape)).astype(np.uint16)
    rgb10, rgb12 = rgb16 >> 6, rgb16 >> 4

    def rule(a, bits=None):
        if bits is not None:  # the b-bit rule: round(v * 255 / (2^b - 1))
            a = np.round(a.astype(np.float64) * 255 / ((1 << bits) - 1)).astype(np.uint8)
        return to_rgb8(a)

    return {
        "jpeg": [
            ("gray", _pil(gray, "JPEG", quality=95), rule(gray)),
            ("cmyk", _pil(rgb, "JPEG", "CMYK", quality=95), rule(rgb)),
            ("progressive", _pil(rgb, "JPEG", quality=95, progressive=True), rule(rgb)),
        ],
        "jpeg2000": [
            ("gray", _pil(gray, "JPEG2000", no_jp2=True), rule(gray)),
            ("gray16", _pil(rgb16[:, :, 0].copy(), "JPEG2000", no_jp2=True), rule(rgb16[:, :, 0])),
            ("rgba", _pil(rgba, "JPEG2000", no_jp2=True), rule(rgba)),
            ("rgb12", bytes(imagecodecs.jpeg2k_encode(rgb12, level=0, codecformat="J2K", bitspersample=12)), rule(rgb12, 12)),
            ("rgb16", bytes(imagecodecs.jpeg2k_encode(rgb16, level=0, codecformat="J2K")), rule(rgb16)),
        ],
        "webp": [
            ("gray", _pil(gray, "WEBP", quality=95), rule(gray)),
            ("rgba", _pil(rgba, "WEBP", quality=95), rule(rgba)),
            ("lossless", _pil(rgb, "WEBP", lossless=True), rule(rgb)),
        ],
        "hevc": [
            ("gray", _heif(gray, "L"), rule(gray)),
            ("rgba", _heif(rgba, "RGBA"), rule(rgba)),
            ("rgb10", _heif(rgb16, "RGB;16"), rule(rgb16)),
            ("gray10", _heif(rgb16[:, :, 1].copy(), "L;16"), rule(rgb16[:, :, 1])),
        ],
        "avif": [
            ("gray", bytes(imagecodecs.avif_encode(gray, level=95)), rule(gray)),
            ("rgba", _pil(rgba, "AVIF", quality=95), rule(rgba)),
            ("rgb10", bytes(imagecodecs.avif_encode(rgb10, level=100, bitspersample=10)), rule(rgb10, 10)),
            ("rgb12", bytes(imagecodecs.avif_encode(rgb12, level=100, bitspersample=12)), rule(rgb12, 12)),
        ],
        "jpegxl": [
            ("gray", bytes(imagecodecs.jpegxl_encode(gray, level=95)), rule(gray)),
            ("rgba", bytes(imagecodecs.jpegxl_encode(rgba, level=95)), rule(rgba)),
            ("rgb12", bytes(imagecodecs.jpegxl_encode(rgb12, lossless=True, bitspersample=12)), rule(rgb12, 12)),
            ("rgb16", bytes(imagecodecs.jpegxl_encode(rgb16, lossless=True)), rule(rgb16)),
            ("gray16", bytes(imagecodecs.jpegxl_encode(rgb16[:, :, 1].copy(), lossless=True)), rule(rgb16[:, :, 1])),
            ("container", bytes(imagecodecs.jpegxl_encode(rgb, level=95, usecontainer=True)), rule(rgb)),
        ],
    }


# --- header edits that make a stream lie about its size


def _be(v: int, n: int) -> bytes:
    return int(v).to_bytes(n, "big")


def _jpeg_sof(data: bytes) -> int:
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        if data[i + 1] in (0xC0, 0xC1, 0xC2):
            return i
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise AssertionError("no SOF marker")


def _jxl_size_bits(v: int) -> int:
    """Length in bits of the SizeHeader at the start of `v` (the codestream after FF0A, LSB first)."""
    pos = 1
    small = v & 1

    def u32() -> int:
        nonlocal pos
        sel = (v >> pos) & 3
        pos += 2 + (9, 13, 18, 30)[sel]
        return 0

    if small:
        pos += 5
    else:
        u32()
    ratio = (v >> pos) & 7
    pos += 3
    if ratio == 0:
        if small:
            pos += 5
        else:
            u32()
    return pos


def _jxl_with_size(data: bytes, w: int, h: int) -> bytes:
    """The codestream with its SizeHeader re-written as (w, h) (30-bit U32 fields), rest bit-shifted."""
    v = int.from_bytes(data[2:], "little")
    old = _jxl_size_bits(v)
    new = 0 | (3 << 1) | (((h - 1) & (2**30 - 1)) << 3) | (0 << 33) | (3 << 36) | (((w - 1) & (2**30 - 1)) << 38)
    nv = new | ((v >> old) << 68)
    nbits = 8 * (len(data) - 2) - old + 68
    return data[:2] + nv.to_bytes((nbits + 7) // 8, "little")


def _with_size(name: str, data: bytes, w: int, h: int) -> bytes:
    d = bytearray(data)
    if name == "jpeg":
        i = _jpeg_sof(data)
        d[i + 5 : i + 9] = _be(h & 0xFFFF, 2) + _be(w & 0xFFFF, 2)
    elif name == "jpeg2000":  # SIZ Xsiz, Ysiz (image offsets are 0 in our streams)
        d[8:16] = _be(w & 0xFFFFFFFF, 4) + _be(h & 0xFFFFFFFF, 4)
    elif name == "webp":  # VP8 key frame: 14-bit width/height, little-endian, after the start code
        assert data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a"
        d[26:30] = struct.pack("<HH", w & 0x3FFF, h & 0x3FFF)
    elif name in ("hevc", "avif"):  # the first 'ispe' box: full-box header, then width, height
        i = data.index(b"ispe")
        d[i + 8 : i + 16] = _be(w & 0xFFFFFFFF, 4) + _be(h & 0xFFFFFFFF, 4)
    else:
        return _jxl_with_size(data, max(w, 1), max(h, 1))
    return bytes(d)


def _streams() -> list[tuple[str, str, bytes, np.ndarray | None]]:
    """(codec, kind, stream, expected image or None): ~100 per codec, fixed by SEED."""
    from rsicbench.reproduce.codecs.base import create_codec

    rng = np.random.default_rng(SEED)
    img, img2 = _image(rng, 64, 64), _image(rng, 48, 72)
    main = {n: create_codec(n, QUALITY[n]).encode(img) for n in CODECS}
    png = _pil(img, "PNG")
    variants = _variants(rng)
    out = []
    for name in CODECS:
        s = main[name]
        h, w = img.shape[:2]
        out.append((name, "valid", s, None))
        out.append((name, "valid", create_codec(name, QUALITY[name]).encode(img2), None))
        out += [(name, "variant", v, ref) for _, v, ref in variants[name]]
        out += [(name, "foreign", main[o], None) for o in CODECS if o != name] + [(name, "foreign", png, None)]
        # over the default pixel limit, just under it (9459^2 = 89,472,681), ..., zero, swapped
        sizes = [(65535, 65535), (1 << 20, 16), (16383, 16383), (9459, 9459), (2048, 2048), (2 * w, h // 2),
                 (w + 1, h), (w, h - 1), (1, 1), (0, h), (w, 0), (h, w)]
        if name == "jpegxl":
            sizes[0] = (1 << 30, 1 << 30)
        out += [(name, "size_lie", _with_size(name, s, sw, sh), None) for sw, sh in sizes]
        if name == "jpeg2000":  # 1x1 tiles: 4096 tiles for a 64x64 image
            out.append((name, "size_lie", s[:24] + _be(1, 4) * 2 + s[32:], None))
        for n in [0, 1, 2, 3, 4, 8, 12, 16, 24, 32] + sorted(rng.integers(33, len(s), 6).tolist()):
            out.append((name, "truncate", s[:n], None))
        out.append((name, "extend", s + s, None))
        out.append((name, "extend", s + b"\0" * 4096, None))
        for _ in range(6):
            out.append((name, "extend", s + rng.integers(0, 256, int(rng.integers(1, 2000)), dtype=np.uint8).tobytes(), None))
        bases = [s] * 4 + [v for _, v, _ in variants[name]]
        for k in range(36):
            base = bytearray(bases[int(rng.integers(len(bases)))])
            # half the flips in the first 64 bytes, where the headers are
            span = min(len(base), 64) if k % 2 == 0 else len(base)
            for _ in range(int(rng.integers(1, 4))):
                base[int(rng.integers(span))] ^= 1 << int(rng.integers(8))
            out.append((name, "bitflip", bytes(base), None))
        for _ in range(12):
            base = bytearray(s)
            i, n = int(rng.integers(len(base))), int(rng.integers(1, 33))
            base[i : i + n] = rng.integers(0, 256, len(base[i : i + n]), dtype=np.uint8).tobytes()
            out.append((name, "overwrite", bytes(base), None))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_fuzz_classical_decoders():
    from rsicbench.reproduce.codecs.base import create_codec

    streams = _streams()
    expected_sha = {}
    for i, (name, kind, data, ref) in enumerate(streams):
        if ref is not None:  # the variant's decode, checked against the rule in-process
            rec = create_codec(name, QUALITY[name]).decode(data)
            assert rec.shape == ref.shape and _psnr(rec, ref) > 25, f"{name} variant {i}: {_psnr(rec, ref):.1f} dB"
            expected_sha[i] = hashlib.sha256(rec.tobytes()).hexdigest()

    workers = [_Worker(), _Worker()]
    results, restarts, t0 = [], 0, time.monotonic()
    try:
        for name, _kind, data, _ in streams:
            for w in workers:
                w.send(name, data)
            pair = []
            for j, w in enumerate(workers):
                r = w.receive()
                if r["outcome"] in ("crash", "hang"):
                    w.close()
                    workers[j] = _Worker()
                    restarts += 1
                pair.append(r)
            results.append(pair)
    finally:
        for w in workers:
            w.close()
    elapsed = time.monotonic() - t0

    by_outcome = collections.Counter()
    by_kind = collections.defaultdict(collections.Counter)
    problems = []
    for i, ((name, kind, data, ref), (a, b)) in enumerate(zip(streams, results)):
        by_outcome[(name, a["outcome"])] += 1
        by_kind[kind][a["outcome"]] += 1
        for r in (a, b):
            if r["outcome"] in ("crash", "hang", "other"):
                problems.append(f"{name} {kind} #{i}: {r}")
        if a["outcome"] != b["outcome"] or a.get("sha") != b.get("sha"):
            problems.append(f"{name} {kind} #{i}: processes disagree: {a} vs {b}")
        if kind == "foreign" and not (a["outcome"] == "CodecError" and "expected" in a["msg"]):
            problems.append(f"{name} decoded another format's stream (#{i}): {a}")
        if kind in ("valid", "variant") and a["outcome"] != "decoded":
            problems.append(f"{name} {kind} #{i} did not decode: {a}")
        if i in expected_sha and a.get("sha") != expected_sha[i]:
            problems.append(f"{name} variant #{i}: worker's pixels differ from the in-process decode")

    print(f"\nclassical fuzz: {len(streams)} streams x 2 processes in {elapsed:.1f} s, {restarts} worker restarts")
    print("by codec and outcome:", {f"{n}/{o}": c for (n, o), c in sorted(by_outcome.items())})
    for kind in ("valid", "variant", "foreign", "size_lie", "truncate", "extend", "bitflip", "overwrite"):
        print(f"  {kind:9s} {dict(by_kind[kind])}")
    assert not problems, "\n".join(problems[:20])
    assert restarts == 0
    assert min(sum(1 for s in streams if s[0] == n) for n in CODECS) >= 90


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _worker()
