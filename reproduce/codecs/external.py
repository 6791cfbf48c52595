"""Command-line encoders as codecs: `ext-<name>` for every entry of configs/external.yaml.

An entry gives the encode and decode commands as argument lists (run without a shell),
with placeholders filled per call:
  {input} {output}   the files of that step (a temp folder per call)
  {quality}          the rate parameter (the entry's `quality` block: name, range,
                     higher_is_better, integer)
  {width} {height}   the image size (encoders of raw YUV need it)
  {env:NAME}         an environment variable (e.g. where VTM's cfg files are); unset -> error
`input` is the file the encoder reads (png | ppm | yuv444p), `stream` the extension of the
coded file, `output` what the decoder writes (png | ppm | yuv444p). A raw-YUV decoder does not
know the size, so for `output: yuv444p` the stream is prefixed with 4 bytes (height, width as
uint16 big-endian), counted in the rate like every other byte. YUV: BT.709 full-range Y'CbCr
(compressai.transforms.functional.rgb2ycbcr, as CompressAI's VTM runner), 8-bit planar 4:4:4.

A missing binary, a non-zero exit, a timeout or an empty/missing output raises CodecError
naming the command; the engine then records the error for that image, never a row of zeros.
The settings file is $RSICBENCH_EXTERNAL_CODECS when set, else configs/external.yaml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rsicbench.reproduce.codecs.base import Codec, CodecError, register_factory

FILE_KINDS = ("png", "ppm", "yuv444p")
_PLACEHOLDER = re.compile(r"\{(input|output|quality|width|height|env:[A-Za-z_][A-Za-z0-9_]*)\}")
_SIZE_HEADER = 4


def config_path() -> Path:
    env = os.environ.get("RSICBENCH_EXTERNAL_CODECS")
    if env:
        return Path(env)
    from rsicbench.paths import project_root

    return project_root() / "configs" / "external.yaml"


def load_entries(path: Path) -> dict[str, dict[str, Any]]:
    """name -> checked entry of `common.codecs`; a bad entry is one ValueError naming it."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with common.codecs")
    codecs = ((raw.get("common") or {}).get("codecs")) or {}
    if not isinstance(codecs, dict):
        raise ValueError(f"{path}: common.codecs must be a mapping of name -> entry")
    return {name: check_entry(name, e, path) for name, e in codecs.items()}


def check_entry(name: str, e: Any, path: Path | str = "entry") -> dict[str, Any]:
    where = f"{path}: codecs.{name}"
    if not isinstance(e, dict):
        raise ValueError(f"{where}: expected a mapping")
    for key in ("encode", "decode"):
        cmd = e.get(key)
        if not (isinstance(cmd, list) and cmd and all(isinstance(a, (str, int, float)) for a in cmd)):
            raise ValueError(f"{where}.{key}: expected a non-empty list of arguments")
        for a in map(str, cmd):
            for m in re.finditer(r"\{[^}]*\}", a):
                if not _PLACEHOLDER.fullmatch(m.group(0)):
                    raise ValueError(f"{where}.{key}: unknown placeholder {m.group(0)} in {a!r}")
        joined = " ".join(map(str, cmd))
        if "{input}" not in joined or "{output}" not in joined:
            raise ValueError(f"{where}.{key}: needs both {{input}} and {{output}}")
    for key in ("input", "output"):
        if e.get(key, "png") not in FILE_KINDS:
            raise ValueError(f"{where}.{key}: {e.get(key)!r}; expected one of {', '.join(FILE_KINDS)}")
    if not isinstance(e.get("stream"), str) or not e["stream"]:
        raise ValueError(f"{where}.stream: the coded file's extension is required, e.g. webp")
    q = e.get("quality") or {}
    rng = q.get("range")
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng) and rng[0] < rng[1]):
        raise ValueError(f"{where}.quality.range: expected [low, high]")
    if not isinstance(q.get("higher_is_better"), bool):
        raise ValueError(f"{where}.quality.higher_is_better: expected true or false (does a larger value give more bits?)")
    t = e.get("timeout", 120)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
        raise ValueError(f"{where}.timeout: expected seconds > 0")
    return e


# ----------------------------------------------------------------------------- files


def rgb_to_yuv444(a: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW uint8 planar BT.709 full-range Y'CbCr."""
    x = a.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    cb = (b - y) / 1.8556 + 0.5
    cr = (r - y) / 1.5748 + 0.5
    return np.clip(np.rint(np.stack([y, cb, cr]) * 255.0), 0, 255).astype(np.uint8)


def yuv444_to_rgb(p: np.ndarray) -> np.ndarray:
    y, cb, cr = (p.astype(np.float64) / 255.0)
    cb, cr = cb - 0.5, cr - 0.5
    r = y + 1.5748 * cr
    b = y + 1.8556 * cb
    g = (y - 0.2126 * r - 0.0722 * b) / 0.7152
    return np.clip(np.rint(np.stack([r, g, b], -1) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: Path, a: np.ndarray, kind: str) -> None:
    from PIL import Image

    if kind == "yuv444p":
        path.write_bytes(rgb_to_yuv444(a).tobytes())
    else:  # png (lossless, no compression: speed) or binary ppm
        Image.fromarray(a).save(path, format=kind.upper(), **({"compress_level": 1} if kind == "png" else {}))


def read_image(path: Path, kind: str, size: tuple[int, int] | None, who: str) -> np.ndarray:
    from rsicbench.imageio import decode_rgb

    data = path.read_bytes()
    if kind == "yuv444p":
        h, w = size
        n = 3 * h * w
        if len(data) < n:
            raise CodecError(f"{who}: decoder wrote {len(data)} bytes, a {h}x{w} 8-bit 4:4:4 frame needs {n}")
        return yuv444_to_rgb(np.frombuffer(data[:n], np.uint8).reshape(3, h, w))
    try:
        return decode_rgb(data, f"{who} output {path.name}")
    except ValueError as e:
        raise CodecError(str(e)) from None


# ----------------------------------------------------------------------------- codec


class ExternalCodec(Codec):
    """One configs/external.yaml entry; subclasses are made by `register_all`."""

    entry: ClassVar[dict[str, Any]] = {}
    thread_parallel = False  # the engine runs classical-style codecs in processes

    def __init__(self, quality: float, **options: Any) -> None:
        unknown = set(options) - {"timeout"}
        if unknown:
            raise CodecError(f"{self.name}: unknown option(s) {sorted(unknown)}; known: ['timeout']")
        if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)):
            raise CodecError(f"{self.name}: {self.quality_name} must be a number, got {quality!r}")
        if self.integer_quality and float(quality) != int(quality):
            raise CodecError(f"{self.name}: {self.quality_name} must be an integer, got {quality}")
        super().__init__(quality, **options)
        self.timeout = float(options.get("timeout", self.entry.get("timeout", 120)))
        for step in ("encode", "decode"):
            exe = str(self.entry[step][0])
            if shutil.which(exe) is None:
                raise CodecError(f"{self.name}: {step} command {exe!r} not found on PATH "
                                 f"({self.entry.get('install') or 'install it or edit ' + str(config_path())})")

    @property
    def version(self) -> str:
        return tool_version(tuple(map(str, self.entry.get("version") or [])), str(self.entry.get("version_pattern", "")))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["settings"] = {"encode": list(map(str, self.entry["encode"])), "decode": list(map(str, self.entry["decode"])),
                         "input": self.entry.get("input", "png"), "output": self.entry.get("output", "png"),
                         "stream": self.entry["stream"], "binary": shutil.which(str(self.entry["encode"][0]))}
        return d

    def _argv(self, step: str, values: dict[str, str]) -> list[str]:
        def fill(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("env:"):
                v = os.environ.get(key[4:])
                if v is None:
                    raise CodecError(f"{self.name}: {step} command needs the environment variable {key[4:]}")
                return v
            return values[key]

        return [_PLACEHOLDER.sub(fill, str(a)) for a in self.entry[step]]

    def _run(self, argv: list[str]) -> None:
        cmd = " ".join(argv)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout)
        except FileNotFoundError:
            raise CodecError(f"{self.name}: command not found: {argv[0]!r} (in `{cmd}`)") from None
        except subprocess.TimeoutExpired:
            raise CodecError(f"{self.name}: `{cmd}` timed out after {self.timeout:g} s") from None
        if p.returncode != 0:
            tail = (p.stderr or p.stdout).decode("utf-8", "replace").strip()[-400:]
            raise CodecError(f"{self.name}: `{cmd}` exited with status {p.returncode}: {tail or '(no output)'}")

    def _output(self, path: Path, argv: list[str]) -> bytes:
        if not path.is_file() or path.stat().st_size == 0:
            raise CodecError(f"{self.name}: `{' '.join(argv)}` wrote no output ({path.name} "
                             f"{'is empty' if path.is_file() else 'missing'})")
        return path.read_bytes()

    def encode(self, image: np.ndarray) -> bytes:
        a = self.check_image(image, self.name)
        h, w = a.shape[:2]
        kind = self.entry.get("input", "png")
        with tempfile.TemporaryDirectory(prefix=f"rsicbench-{self.name}-") as d:
            src, dst = Path(d) / f"in.{'yuv' if kind == 'yuv444p' else kind}", Path(d) / f"out.{self.entry['stream']}"
            write_image(src, a, kind)
            q = f"{self.quality:g}" if not self.integer_quality else str(int(self.quality))
            argv = self._argv("encode", {"input": str(src), "output": str(dst), "quality": q,
                                         "width": str(w), "height": str(h)})
            self._run(argv)
            data = self._output(dst, argv)
        if self.entry.get("output", "png") == "yuv444p":
            if h > 65535 or w > 65535:
                raise CodecError(f"{self.name}: {h}x{w} too large for the size prefix")
            data = h.to_bytes(2, "big") + w.to_bytes(2, "big") + data
        return data

    def decode(self, data: bytes) -> np.ndarray:
        kind = self.entry.get("output", "png")
        size = None
        if kind == "yuv444p":
            if len(data) <= _SIZE_HEADER:
                raise CodecError(f"{self.name}: stream of {len(data)} bytes is too short")
            size = (int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big"))
            data = data[_SIZE_HEADER:]
        with tempfile.TemporaryDirectory(prefix=f"rsicbench-{self.name}-") as d:
            src, dst = Path(d) / f"in.{self.entry['stream']}", Path(d) / f"out.{'yuv' if kind == 'yuv444p' else kind}"
            src.write_bytes(data)
            w, h = (str(size[1]), str(size[0])) if size else ("", "")
            argv = self._argv("decode", {"input": str(src), "output": str(dst), "quality": "", "width": w, "height": h})
            self._run(argv)
            self._output(dst, argv)
            return read_image(dst, kind, size, f"{self.name}: `{' '.join(argv)}`")


@lru_cache(maxsize=None)
def tool_version(argv: tuple[str, ...], pattern: str = "") -> str:
    """The first output line of the entry's `version` command (matching `version_pattern`, if given)."""
    if not argv:
        return "unknown (no version command in the entry)"
    try:
        p = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({' '.join(argv)}: {type(e).__name__})"
    for line in (p.stdout + p.stderr).decode("utf-8", "replace").splitlines():
        if line.strip() and (not pattern or re.search(pattern, line)):
            return f"{argv[0]} {line.strip()[:100]}"
    return f"unknown ({' '.join(argv)} printed nothing)"


def make_class(name: str, entry: dict[str, Any]) -> type[ExternalCodec]:
    q = entry["quality"]
    return type(f"External_{re.sub(r'[^A-Za-z0-9]', '_', name)}", (ExternalCodec,), {
        "name": f"ext-{name}", "entry": entry, "quality_name": str(q.get("name", "quality")),
        "quality_range": (q["range"][0], q["range"][1]), "higher_is_better": bool(q["higher_is_better"]),
        "integer_quality": bool(q.get("integer", True)), "__doc__": entry.get("note") or f"external codec {name}"})


def register_all(path: Path | None = None) -> list[str]:
    path = path or config_path()
    if not path.is_file():
        return []
    names = []
    for name, entry in load_entries(path).items():
        register_factory(f"ext-{name}", make_class(name, entry))
        names.append(f"ext-{name}")
    return names


EXTERNAL_CODECS = tuple(register_all())
