"""Fuzz the learned-codec decoders: corrupted and forged container v2 streams.

Two learned families: a hyperprior (bmshj2018-hyperprior) and an autoregressive context
model (cheng2020-anchor), tiny checkpoints trained for 2 steps. From 2 encoded images each,
a fixed-seed generator makes ~300 mutated streams per family: accidental corruption (bit
flips, truncation, extension; the CRC is left as is) and forgeries with a RECOMPUTED CRC
(image size, model tag, string lengths, empty/short/swapped strings, payload bits, version).

Every stream is decoded in BOTH of two long-lived worker subprocesses (tests/
learned_decode_worker.py: address space limited with RLIMIT_AS, each decode watched with a
time limit; a worker that dies or hangs is counted and restarted). Asserted: 0 crashes,
0 hangs, 0 exceptions other than CodecError, identical outcome and pixels in both processes
for every stream, and no stream the container or the coders can prove wrong decodes. The
only forgery allowed to decode changes the image size within the same padded size (the
header cannot prove that wrong); it must then give the original pixels, cropped. A payload
bit flip with a recomputed CRC may decode to an image of the original size (MAY_DECODE_OTHER).
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rsicbench.reproduce.coding import container

from rsicbench.reproduce.coding import learned_stream
from rsicbench.reproduce.codecs.base import create_codec
from rsicbench.reproduce.training.train import TrainConfig, train

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # ~35 s CPU, 60-80 s wall on a loaded 2-core machine

FAMILIES = {"bmshj2018-hyperprior": {"N": 8, "M": 8}, "cheng2020-anchor": {"N": 8}}
SIZES = [(70, 50), (96, 128)]
PER_IMAGE = 150  # mutated streams per encoded image: ~300 per family
DECODE_TIMEOUT_S = 10.0
MEMORY_LIMIT = 4 << 30
WORKER = Path(__file__).with_name("learned_decode_worker.py")
# kinds whose streams may decode: the header's size changes within the same padded size
MAY_DECODE = {"size-same-padding"}
# payload bit flips with a recomputed CRC may decode to another image of the same size: a flip
# in a bypass-coded escape nibble of compressai's rANS is another canonical string (seen: one y
# symbol 7 -> 3 at scale index 0). No coder can prove such a string wrong; the CRC is what
# catches accidental flips (kind "bitflip").
MAY_DECODE_OTHER = {"payload-flip+crc"}


def _image(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    im = np.stack([x * 3 + seed * 20, y * 3, (x + y) * 1.5], 2) + rng.normal(0, 12, (h, w, 3))
    return np.clip(im, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from rsicbench.imageio import write_png

    base = tmp_path_factory.mktemp("fuzz")
    (base / "imgs").mkdir()
    for i in range(3):
        write_png(base / "imgs" / f"im{i}.png", _image(72, 72, i))
    paths = sorted(str(p) for p in (base / "imgs").glob("*.png"))
    out = {}
    for model, arch in FAMILIES.items():
        cfg = TrainConfig(model=model, lam=0.01, arch=arch, steps=2, batch=2, patch=64, val_every=2,
                          ckpt_every=2, val_patch=64, val_images=2, threads=1)
        train(cfg, paths, paths, base / model, progress=False)
        out[model] = _amplify(base / model / "best.pt")
    return out


def _amplify(path: Path, gain: float = 30.0) -> str:
    """2-step checkpoints code every latent as 0 (8-byte y strings); scaling the last layer of
    the analysis transform gives the strings real content, bypass-coded symbols included."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    last = max({k.split(".")[1] for k in obj["model"] if k.startswith("g_a.")}, key=int)
    for k in obj["model"]:
        if k.startswith(f"g_a.{last}.") and k.endswith(("weight", "bias")):
            obj["model"][k] = obj["model"][k] * gain
    out = path.with_name("amplified.pt")
    torch.save(obj, out)
    return str(out)


# ---------------------------------------------------------------------------- forging
def _forge(tag: bytes, h: int, w: int, lengths: list[int], payload: bytes, version: int = container.FORMAT_VERSION) -> bytes:
    body = (bytes([container.MAGIC, version]) + tag + container.varint(h) + container.varint(w)
            + b"".join(container.varint(n) for n in lengths) + payload)
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "little")


def _with_crc(body: bytes) -> bytes:
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "little")


def mutations(data: bytes, c: container.Container, layout: container.Layout, rng) -> list[tuple[str, bytes]]:
    """(kind, stream) pairs; every kind but MAY_DECODE must be refused."""
    flat = [s for g in c.strings for s in g]
    h, w, tag = c.height, c.width, c.tag
    ph, pw = layout.padding(h, w)

    def forged(strings=flat, hh=h, ww=w, tg=tag, lengths=None):
        lens = [len(s) for s in strings[:-1]] if lengths is None else lengths
        return _forge(tg, hh, ww, lens, b"".join(strings))

    def one(kind: str) -> bytes:
        if kind == "bitflip":
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, 8 * len(b)))
                b[i // 8] ^= 1 << (i % 8)
            return bytes(b)
        if kind == "truncate":
            return data[:int(rng.integers(0, len(data)))]
        if kind == "extend":
            return data + rng.bytes(int(rng.integers(1, 64)))
        if kind == "extend+crc":  # bytes appended to the last string, CRC recomputed
            return _with_crc(data[:-2] + rng.bytes(int(rng.integers(1, 64))))
        if kind == "payload-flip+crc":
            b = bytearray(data[:-2])
            start = len(b) - sum(len(s) for s in flat)
            for _ in range(int(rng.integers(1, 3))):
                i = int(rng.integers(8 * start, 8 * len(b)))
                b[i // 8] ^= 1 << (i % 8)
            return _with_crc(bytes(b))
        if kind == "size-same-padding":
            hh = int(rng.integers(h + ph - layout.downsampling + 1, h + ph + 1))
            ww = int(rng.integers(w + pw - layout.downsampling + 1, w + pw + 1))
            return forged(hh=hh, ww=ww)
        if kind == "size-other":
            choices = [(4096, 4096), (65536, 65536), (1 << 13, (1 << 13) + 1), (0, w), (h, 0),
                       (h + ph + int(rng.integers(1, 200)), w), (h, w + pw + int(rng.integers(1, 200))),
                       (max(1, h - ph - layout.downsampling), w), (int(rng.integers(1, 1 << 12)), int(rng.integers(1, 1 << 12)))]
            hh, ww = choices[int(rng.integers(0, len(choices)))]
            if hh + (-hh) % layout.downsampling == h + ph and ww + (-ww) % layout.downsampling == w + pw:
                hh += layout.downsampling  # keep it a different padded size
            return forged(hh=hh, ww=ww)
        if kind == "tag+crc":
            return forged(tg=bytes(rng.bytes(container.TAG_BYTES)))
        if kind == "lengths+crc":  # move bytes between strings, or lie about a length
            lens = [len(s) for s in flat[:-1]]
            i = int(rng.integers(0, len(lens)))
            d = int(rng.integers(1, 9)) * (1 if rng.random() < 0.5 else -1)
            lens[i] = max(0, lens[i] + d) if rng.random() < 0.7 else lens[i] + len(data)
            return forged(lengths=lens)
        if kind == "empty-string+crc":
            i = int(rng.integers(0, len(flat)))
            return forged(strings=[b"" if j == i else s for j, s in enumerate(flat)])
        if kind == "short-string+crc":
            i = int(rng.integers(0, len(flat)))
            n = int(rng.choice([4, 8, 12, max(8, len(flat[i]) // 2 // 4 * 4)]))
            repl = flat[i][:n] if rng.random() < 0.5 else bytes(rng.bytes(n))
            return forged(strings=[repl if j == i else s for j, s in enumerate(flat)])
        if kind == "swap-strings+crc":
            return forged(strings=flat[::-1])
        if kind == "version+crc":
            return _forge(tag, h, w, [len(s) for s in flat[:-1]], b"".join(flat), version=int(rng.choice([0, 1, 2, 4, 255])))
        raise AssertionError(kind)

    kinds = ["bitflip", "truncate", "extend", "extend+crc", "payload-flip+crc", "size-same-padding", "size-other",
             "tag+crc", "lengths+crc", "empty-string+crc", "short-string+crc", "swap-strings+crc", "version+crc"]
    out = []
    for i in range(PER_IMAGE):
        kind = kinds[i % len(kinds)]
        stream = one(kind)
        if stream != data:  # a no-op mutation proves nothing
            out.append((kind, stream))
    return out


# ---------------------------------------------------------------------------- workers
class Worker:
    def __init__(self):
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(MEMORY_LIMIT)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def send(self, req: dict) -> None:
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.restart()
            return {"outcome": "hang"}
        line = self.proc.stdout.readline()
        if not line:
            self.restart()
            return {"outcome": "crash"}
        return json.loads(line)

    def restart(self):
        self.proc.kill()
        self.proc.wait()
        self.start()

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _decode_everywhere(workers, reqs, first_timeout: float) -> list[list[dict]]:
    """Each request to every worker (in parallel); results[i][k] = worker k's answer to i."""
    results = []
    for i, req in enumerate(reqs):
        for wk in workers:
            try:
                wk.send(req)
            except BrokenPipeError:
                wk.restart()
                wk.send(req)
        results.append([wk.receive(first_timeout if i == 0 else DECODE_TIMEOUT_S) for wk in workers])
    return results


def test_fuzz_learned_decoders(checkpoints):
    t0 = time.monotonic()
    rng = np.random.default_rng(20261201)
    cases = []  # (family, kind, stream, expected image for MAY_DECODE kinds)
    for model, ckpt in checkpoints.items():
        codec = create_codec(model, 0, checkpoint=ckpt, threads=1)
        layout = learned_stream.layout(codec)
        for seed, (h, w) in enumerate(SIZES):
            data = codec.encode(_image(h, w, seed))
            c = container.unpack(data, layout, learned_stream.tag(codec))
            full = _forge(c.tag, h + layout.padding(h, w)[0], w + layout.padding(h, w)[1],
                          [len(s) for g in c.strings for s in g][:-1], b"".join(s for g in c.strings for s in g))
            reference = codec.decode(full)  # the padded image: every same-padding crop is a crop of it
            cases.append((model, "original", data, reference[:h, :w]))
            for kind, stream in mutations(data, c, layout, rng):
                cases.append((model, kind, stream, reference))
    reqs = [{"model": m, "checkpoint": checkpoints[m], "data": base64.b64encode(s).decode()} for m, _, s, _ in cases]
    workers = [Worker(), Worker()]
    try:
        results = _decode_everywhere(workers, reqs, first_timeout=120.0)
    finally:
        for wk in workers:
            wk.close()

    counts = collections.Counter()
    problems = []
    for (model, kind, stream, ref), answers in zip(cases, results):
        a, b = answers
        counts[(model, kind, a["outcome"])] += 1
        if a != b:
            problems.append(f"{model} {kind}: processes disagree ({a['outcome']} vs {b['outcome']})")
        if a["outcome"] in ("crash", "hang", "error"):
            problems.append(f"{model} {kind}: {a['outcome']} {a.get('detail', '')}")
        if a["outcome"] == "decoded":
            img = np.frombuffer(base64.b64decode(a["pixels"]), np.uint8).reshape(a["shape"])
            if kind == "original":
                ok = np.array_equal(img, ref)
            elif kind in MAY_DECODE:
                ok = img.shape[0] <= ref.shape[0] and img.shape[1] <= ref.shape[1] \
                    and np.array_equal(img, ref[:img.shape[0], :img.shape[1]])
            elif kind in MAY_DECODE_OTHER:  # the header is the original's; both processes agree (above)
                ok = img.shape[0] <= ref.shape[0] and img.shape[1] <= ref.shape[1]
            else:
                ok = False
            if not ok:
                problems.append(f"{model} {kind}: a stream that must be refused decoded to {a['shape']}")
        elif kind == "original":
            problems.append(f"{model}: the original stream did not decode: {a}")

    by_kind = collections.Counter()
    by_outcome = collections.Counter()
    print(f"\nlearned fuzz: {len(cases)} streams x 2 processes in {time.monotonic() - t0:.1f} s")
    for (model, kind, outcome), n in sorted(counts.items()):
        print(f"  {model:22s} {kind:20s} {outcome:8s} {n}")
        by_kind[(kind, outcome)] += n
        by_outcome[outcome] += n
    print("  by outcome:", dict(by_outcome))
    assert not problems, "\n".join(problems[:20])
    assert sum(n for (m, k, o), n in counts.items() if k != "original") >= 500
