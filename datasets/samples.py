"""Sample inputs from the mirror: one 38-Cloud patch with its cloud mask, two DOTA images.

38-Cloud (Mohajerani & Saeedi 2019, https://github.com/SorourMo/38-Cloud-A-Cloud-Segmentation-Dataset):
files `<band>_patch_..._T1.TIF` with band in red, green, blue, nir, truecolor, gt.
  -> images/38cloud/<patch>.png  the `truecolor` RGB (uint8, as published)
  -> aux/masks/38cloud/<patch>.png  the `gt` cloud mask, single-channel PNG, values 0/255
  -> aux/nir/38cloud/<patch>.png the NIR band, 16-bit grayscale PNG (lossless, not scaled)
DOTA v1 (https://captain-whu.github.io/DOTA/): large PNGs -> 256^2 tiles by the tiler
  -> images/dota/<P####>_rRRR_cCCC.png (remainders dropped, invalid tiles dropped).
Source order (rsicbench.datasets.sources): $RSICBENCH_SAMPLES, `samples.path` in
configs/data.yaml, the mirror `<shared>/datasets/samples`, then the files themselves from two
public GitHub repositories pinned to a commit (4.3 MB): 38-Cloud's `sample/` folder
(SorourMo/38-Cloud-A-Cloud-Segmentation-Dataset @ c048667f, the commit that added the TIFs;
later commits removed them) and DOTA_devkit's `example/images/` (CAPTAIN-WHU/DOTA_devkit @
a3f8a59c). Known files are sha256-checked from any source (datasets/source_checksums.tsv);
the GitHub files are exactly those (byte-identical to the mirror's).
Manifest extra columns: `mask` (path relative to data/samples, or empty) and `source`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsicbench.datasets.base import Dataset, DatasetError, Entry, shipped_checksums, verify_file, write_manifest
from rsicbench.datasets.sources import Source, github_sources, local_hint, local_sources, resolve
from rsicbench.datasets.tiler import tile_image
from rsicbench.paths import cache_dir

# Public repositories holding the sample files, pinned to a commit (files checked by sha256).
CLOUD38_REPO = "SorourMo/38-Cloud-A-Cloud-Segmentation-Dataset"
CLOUD38_COMMIT = "c048667fea9962535d622493af0a69c4fe7f8fb3"  # added the TIFs (later commits removed them)
DOTA_DEVKIT_REPO = "CAPTAIN-WHU/DOTA_devkit"
DOTA_DEVKIT_COMMIT = "a3f8a59c35c370d43c6b3fe8d397bab63b785a0f"


def read_mask(path: Path) -> np.ndarray:
    """A 0/255 single-band mask; any other value is refused (it would not be a mask)."""
    import tifffile

    try:
        m = tifffile.imread(path) if path.suffix.lower() in (".tif", ".tiff") else np.asarray(_pil_open(path))
    except Exception as e:  # noqa: BLE001 - decoders raise many types
        raise DatasetError(f"{path}: cannot read mask ({e})") from None
    m = np.squeeze(m)
    if m.ndim != 2:
        raise DatasetError(f"{path}: mask must be single-band, got shape {m.shape}")
    values = set(np.unique(m).tolist())
    if values <= {0, 1}:
        m = m.astype(np.uint8) * 255
    elif not values <= {0, 255}:
        raise DatasetError(f"{path}: mask values {sorted(values)[:5]}... are not 0/255 (or 0/1)")
    return m.astype(np.uint8)


def _pil_open(path: Path):
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.copy()


def write_gray_png(path: Path, arr: np.ndarray) -> None:
    """Lossless single-channel PNG (8- or 16-bit), fixed settings."""
    import io

    from PIL import Image

    from rsicbench import fsutil

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=6)
    fsutil.write_bytes(path, buf.getvalue())


class Samples(Dataset):
    name = "samples"
    urls = ("https://github.com/SorourMo/38-Cloud-A-Cloud-Segmentation-Dataset",
            "https://captain-whu.github.io/DOTA/dataset.html")
    has_classes = False
    env_var = "RSICBENCH_SAMPLES"
    layout = "38cloud/{truecolor,gt,nir}_patch_*.TIF, dota/P####.png"

    @property
    def checksums(self) -> dict[str, str]:  # type: ignore[override]
        return shipped_checksums("samples")

    shared_parts = ("datasets", "samples")

    def sources(self) -> list[Source]:
        def files(prefix: str, folder: str) -> dict[str, tuple[str, str]]:
            return {rel: (f"{folder}/{rel.split('/', 1)[1]}", d) for rel, d in self.checksums.items()
                    if rel.startswith(prefix)}

        groups = [(CLOUD38_REPO, CLOUD38_COMMIT, files("38cloud/", "sample")),
                  (DOTA_DEVKIT_REPO, DOTA_DEVKIT_COMMIT, files("dota/", "example/images"))]
        return [*local_sources(self, self.shared_parts, "sha256 of known files (datasets/source_checksums.tsv)"),
                github_sources(groups, cache_dir() / "samples_github")]

    def _verify(self) -> Path:
        hint = local_hint(self, self.shared_parts)
        src, self.source = resolve("samples", self.sources(), hint)
        for rel, digest in self.checksums.items():
            if (src / rel).is_file():
                verify_file(src / rel, digest)
        return src

    def build(self, workers: int = 1) -> list[Entry]:
        from rsicbench.imageio import pixel_sha256, read_rgb, write_png

        src = self._verify()
        entries: list[Entry] = []
        for tc in sorted((src / "38cloud").glob("truecolor_*.[Tt][Ii][Ff]")):
            patch = tc.stem[len("truecolor_"):]
            rgb = read_rgb(tc)
            rel = f"38cloud/{patch}.png"
            write_png(self.images_dir / rel, rgb)
            extra = [("source", tc.name)]
            gt = tc.with_name(f"gt_{patch}{tc.suffix}")
            if gt.is_file():
                mask = read_mask(gt)
                if mask.shape != rgb.shape[:2]:
                    raise DatasetError(f"{gt}: mask {mask.shape} does not match image {rgb.shape[:2]}")
                write_gray_png(self.aux_dir / "masks" / rel, mask)
                extra.append(("mask", f"aux/masks/{rel}"))
            nir = tc.with_name(f"nir_{patch}{tc.suffix}")
            if nir.is_file():
                import tifffile

                write_gray_png(self.aux_dir / "nir" / rel, tifffile.imread(nir))
            entries.append(Entry(rel, None, rgb.shape[1], rgb.shape[0], pixel_sha256(rgb), tuple(extra)))
        for img in sorted((src / "dota").glob("*.png")):
            rgb = read_rgb(img)
            for t in tile_image(rgb, int(self.option("tile", 256)), source=str(img)):
                rel = f"dota/{t.name(img.stem)}.png"
                write_png(self.images_dir / rel, t.rgb)
                entries.append(Entry(rel, None, t.rgb.shape[1], t.rgb.shape[0], pixel_sha256(t.rgb),
                                     (("source", f"{img.name}@y={t.y},x={t.x}"),)))
        if not entries:
            raise DatasetError(f"{src}: no 38cloud/truecolor_*.TIF and no dota/*.png found")
        self.prune({e.relpath for e in entries})
        write_manifest(self.manifest_path, entries)
        self.write_info({"images": len(entries), "masks": "aux/masks (0/255)", "nir": "aux/nir (16-bit)",
                         "source": self.source.record()})
        return entries
