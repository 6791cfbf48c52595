"""Classical codecs, all in-process through maintained Python packages (see docs/codecs.md).

Every codec fixes its coding settings (listed in `settings`, recorded in every result with
the library versions) so reruns and other machines give the same streams. One `quality`
value sets the rate:

| name      | library                        | quality means                          | more bits when |
|-----------|--------------------------------|----------------------------------------|----------------|
| jpeg      | Pillow / libjpeg(-turbo)       | JPEG quality 1..100                    | higher         |
| jpeg2000  | Pillow / OpenJPEG              | compression ratio 1..1000 (`opj -r`)   | lower          |
| webp      | Pillow / libwebp               | quality 0..100                         | higher         |
| hevc      | pillow-heif / libheif + x265   | quality 0..100 (libheif maps to x265)  | higher         |
| avif      | Pillow / libavif + libaom      | quality 0..100                         | higher         |
| jpegxl    | imagecodecs / libjxl           | quality 1..100 (libjxl distance map)   | higher         |

JPEG2000 reproduces `opj_compress -r <ratio>` with its defaults exactly (tested against the
real binary in tests/test_codecs_j2k.py): reversible 5/3 DWT, RGB->YCC (RCT) on, 6
resolutions, 1 quality layer, LRCP, 64x64 code-blocks, 1 precinct per resolution, one tile,
no SOP/EPH, raw .j2k codestream. Pillow's own default differs in one place: MCT off.

Decoders accept only their own format, refuse images over `max_pixels`, raise only CodecError
and convert gray / >8-bit output by the image rule (reproduce/codecs/decoder_guard.py).
"""

from __future__ import annotations

import io
import math
from typing import Any, ClassVar

import numpy as np
from PIL import Image, features

from rsicbench.reproduce.codecs import decoder_guard as guard
from rsicbench.reproduce.codecs.base import Codec, CodecError, register_codec


def _pillow_lib(feature: str) -> str:
    import PIL

    return f"Pillow {PIL.__version__} / {feature} {features.version(feature) or 'n/a'}"


class _FixedSettingsCodec(Codec):
    """A codec whose coding settings are fixed defaults, overridable only by known keys."""

    #: the coding settings this codec uses (documented in docs/codecs.md)
    defaults: ClassVar[dict[str, Any]] = {}
    #: decoders refuse streams whose header declares more pixels (set per instance to change;
    #: not a coding setting, so not in `settings`)
    max_pixels: int = guard.DEFAULT_MAX_PIXELS

    def __init__(self, quality: float, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise CodecError(
                f"{self.name}: unknown option(s) {sorted(unknown)}; known: {sorted(self.defaults) or 'none'}"
            )
        if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)):
            raise CodecError(f"{self.name}: {self.quality_name} must be a number, got {quality!r}")
        if self.integer_quality and float(quality) != int(quality):
            raise CodecError(f"{self.name}: {self.quality_name} must be an integer, got {quality}")
        super().__init__(quality, **options)
        self.settings = {**self.defaults, **options}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["settings"] = dict(self.settings)
        return d

    def _pil_decode(self, data: bytes, pil_format: str) -> np.ndarray:
        data = guard.check_format(self.name, data)
        return guard.decode_with_pillow(self.name, data, pil_format, self.max_pixels)


@register_codec("jpeg")
class JpegCodec(_FixedSettingsCodec):
    """Baseline JPEG: 4:2:0 chroma subsampling (libjpeg's default), standard (IJG) quant
    tables scaled by quality, no Huffman optimisation, no progressive mode."""

    quality_range = (1, 100)
    defaults = {"subsampling": "4:2:0", "optimize": False, "progressive": False}

    @property
    def version(self) -> str:
        return _pillow_lib("jpg")

    def encode(self, image: np.ndarray) -> bytes:
        a = self.check_image(image, self.name)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=self.quality, **self.settings)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return self._pil_decode(data, "JPEG")


def j2k_resolutions(height: int, width: int, wanted: int = 6) -> int:
    """opj_compress's 6 resolutions, fewer only when the image is too small for 5 DWT levels
    (opj_compress itself refuses such images; we code them with as many levels as fit)."""
    return max(1, min(wanted, int(math.floor(math.log2(min(height, width)))) + 1))


@register_codec("jpeg2000")
class Jpeg2000Codec(_FixedSettingsCodec):
    """JPEG2000 through OpenJPEG, configured as `opj_compress -i in.ppm -o out.j2k -r <ratio>`.

    quality = the compression ratio of opj_compress's `-r` (1 = lossless): OpenJPEG's rate
    allocator aims at W*H*3 / ratio bytes, header included. Settings = opj_compress's
    defaults (see module docstring); `mct=1` is the one setting Pillow would otherwise change.
    The COM marker holds OpenJPEG's own "Created by OpenJPEG version X" text, as
    opj_compress writes it, so streams match opj_compress's byte for byte when versions match.
    """

    quality_name = "ratio"
    higher_is_better = False
    quality_range = (1, 1000)
    defaults = {
        "irreversible": False,  # opj default: reversible 5/3 even when lossy
        "mct": 1,  # RGB->YCC (RCT) as opj_compress does for >= 3 components
        "num_resolutions": 6,
        "progression": "LRCP",
        "codeblock_size": (64, 64),
        "no_jp2": True,  # raw codestream (.j2k), as in LTCHM's command
    }

    @property
    def version(self) -> str:
        return _pillow_lib("jpg_2000")

    def encode(self, image: np.ndarray) -> bytes:
        a = self.check_image(image, self.name)
        s = dict(self.settings)
        s["num_resolutions"] = j2k_resolutions(a.shape[0], a.shape[1], int(s["num_resolutions"]))
        s["codeblock_size"] = tuple(s["codeblock_size"])
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[self.quality], **s)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        data = guard.check_format(self.name, data)
        width, height, bits = guard.j2k_header(self.name, data)
        guard.check_size(self.name, width, height, self.max_pixels)
        if bits <= 8:
            return guard.decode_with_pillow(self.name, data, "JPEG2000", self.max_pixels)
        # Pillow narrows >8-bit RGB by bit shift; imagecodecs (also OpenJPEG) keeps the samples
        import imagecodecs

        with guard.library_errors(self.name):
            return guard.to_rgb(self.name, imagecodecs.jpeg2k_decode(data), bits)


@register_codec("webp")
class WebpCodec(_FixedSettingsCodec):
    """Lossy WebP (VP8, always 4:2:0), method 4 (libwebp's and Squoosh's default effort)."""

    quality_range = (0, 100)
    defaults = {"method": 4}

    @property
    def version(self) -> str:
        return _pillow_lib("webp")

    def encode(self, image: np.ndarray) -> bytes:
        a = self.check_image(image, self.name)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="WEBP", quality=self.quality, lossless=False, exact=False, **self.settings)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return self._pil_decode(data, "WEBP")


@register_codec("avif")
class AvifCodec(_FixedSettingsCodec):
    """AVIF (AV1 intra) through Pillow's libavif with the libaom encoder, speed 6 (Pillow's
    default), 4:2:0 (Squoosh's default, the tool LTCHM used), 8-bit, full range."""

    quality_range = (0, 100)
    defaults = {"speed": 6, "subsampling": "4:2:0", "codec": "aom", "range": "full"}

    @property
    def version(self) -> str:
        from PIL import AvifImagePlugin

        aom = AvifImagePlugin.get_codec_version("aom")
        return f"{_pillow_lib('avif')} / libaom {aom}"

    def encode(self, image: np.ndarray) -> bytes:
        a = self.check_image(image, self.name)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="AVIF", quality=self.quality, **self.settings)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        return self._pil_decode(data, "AVIF")


@register_codec("hevc")
class HevcCodec(_FixedSettingsCodec):
    """HEVC intra (BPG's codec) in a HEIF container via pillow-heif / libheif / x265, 4:4:4.

    BPG itself (bellard.org/bpg) is not available as a maintained Python package, so this
    stands in for LTCHM's BPG rows; the HEIF container adds a few hundred bytes of boxes,
    counted in the rate. Odd sizes: libheif pads to the coding block grid and crops on
    decode; the padding's cost is in the stream.
    """

    quality_range = (0, 100)
    defaults = {"chroma": 444}

    @property
    def version(self) -> str:
        import pillow_heif

        info = pillow_heif.libheif_info()
        return f"pillow-heif {pillow_heif.__version__} / libheif {info.get('libheif')} / {info.get('HEIF')}"

    def encode(self, image: np.ndarray) -> bytes:
        import pillow_heif

        a = self.check_image(image, self.name)
        heif = pillow_heif.from_bytes(mode="RGB", size=(a.shape[1], a.shape[0]), data=a.tobytes())
        buf = io.BytesIO()
        heif.save(buf, format="HEIF", quality=self.quality, **self.settings)
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        import pillow_heif

        data = guard.check_format(self.name, data)
        with guard.library_errors(self.name):
            # samples as coded (10/12-bit unshifted); libheif's own 8-bit conversion shifts
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False, hdr_to_16bit=False)
            width, height = heif.size
            guard.check_size(self.name, width, height, self.max_pixels)
            return guard.to_rgb(self.name, np.asarray(heif), int(heif.info.get("bit_depth", 8)))


@register_codec("jpegxl")
class JpegXlCodec(_FixedSettingsCodec):
    """JPEG XL (VarDCT, lossy) through imagecodecs / libjxl, effort 7 (libjxl's default).
    quality is libjxl's quality scale (mapped to a Butteraugli distance by libjxl)."""

    quality_range = (1, 99)  # 100 would switch libjxl to lossless mode
    defaults = {"effort": 7}

    @property
    def version(self) -> str:
        import imagecodecs

        return f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}"

    def encode(self, image: np.ndarray) -> bytes:
        import imagecodecs

        a = self.check_image(image, self.name)
        return bytes(imagecodecs.jpegxl_encode(a, level=self.quality, **self.settings))

    def decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        data = guard.check_format(self.name, data)
        width, height, bits, is_float = guard.jxl_header(data)
        guard.check_size(self.name, width, height, self.max_pixels)
        if is_float:
            raise CodecError(f"{self.name}: cannot decode stream: floating-point samples (range ambiguous)")
        with guard.library_errors(self.name):
            out = imagecodecs.jpegxl_decode(data, 0)  # first frame only: an animation is not an image
        if out.shape[:2] not in ((height, width), (width, height)):  # (w, h): orientation transposes
            raise CodecError(f"{self.name}: cannot decode stream: decoded {out.shape}, header {width}x{height}")
        # libjxl returns b-bit samples unscaled (0..2^b-1), so scale by the header's depth
        return guard.to_rgb(self.name, out, bits)


CLASSICAL_CODECS = ("jpeg", "jpeg2000", "webp", "hevc", "avif", "jpegxl")
