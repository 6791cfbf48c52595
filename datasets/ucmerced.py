"""UC Merced Land Use (Yang & Newsam 2010): 21 classes x 100 aerial RGB images, 0.3 m/px.

Source order (rsicbench.datasets.sources; the first that works wins):
  1. $RSICBENCH_UCMERCED (a folder `<class>/<name>.<ext>`),
  2. `ucmerced.path` in configs/data.yaml (same layout),
  3. the local mirror `<shared>/datasets/ucmerced` (lossless WebP copies),
  4. the official zip http://weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip
     (TIFs at `UCMerced_LandUse/Images/<class>/<name>.tif`; no published checksum),
  5. torchgeo's mirror of the same zip on Hugging Face, checked with torchgeo's md5.
A zip is downloaded into the cache (`<cache>/UCMerced_LandUse*.zip`, ~318 MB; a copy put
there by hand is used as is) and extracted safely; then read like a folder.
Every image, whatever the source, is decoded and its pixel sha256 compared with the hash
shipped in `datasets/ucmerced_manifest.tsv` (copied from the mirror's MANIFEST.tsv); a
mismatch stops the fetch with an error naming the file. So the per-image pixel hashes are
the check of every source, and the zip checksum (where known) is checked first.

Odd sizes: 44 images are a few pixels smaller than 256x256 (e.g. 253x256). They are kept at
their native size, neither resized nor padded: resizing would change the pixels the hashes
protect, padding would invent pixels; codecs and metrics accept any size and bpp uses the
real H*W.

Subset: `ucmerced.per_class` (configs/data.yaml) keeps N images per class, chosen by a
seeded sha256 ranking (rsicbench.datasets.base.rank), for the `ci` profile.
"""

from __future__ import annotations

from pathlib import Path

from rsicbench.datasets.base import (
    Dataset,
    DatasetError,
    Entry,
    _parallel_map,
    png_is_current,
    rank,
    safe_extract,
    write_manifest,
)
from rsicbench.datasets.sources import Source, local_hint, local_sources, resolve, url_source
from rsicbench.paths import cache_dir

SHIPPED_MANIFEST = Path(__file__).with_name("ucmerced_manifest.tsv")
SOURCE_EXTS = (".webp", ".tif", ".tiff", ".png")
# torchgeo's public mirror of the official zip and its md5 (microsoft/torchgeo, UCMerced.url/.md5).
TORCHGEO_URL = "https://huggingface.co/datasets/torchgeo/ucmerced/resolve/main/UCMerced_LandUse.zip"
TORCHGEO_MD5 = "5b7ec56793786b6dc8a908e8854ac0e4"


def shipped_manifest() -> list[dict[str, str]]:
    lines = [ln for ln in SHIPPED_MANIFEST.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]


class UCMerced(Dataset):
    name = "ucmerced"
    urls = ("http://weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip", TORCHGEO_URL)
    checksums: dict[str, str] = {}  # none published for the zip; every image is hash-checked
    has_classes = True
    env_var = "RSICBENCH_UCMERCED"
    layout = "<class>/<name>.tif|.webp|.png (21 classes x 100), e.g. the zip's UCMerced_LandUse/Images"
    shared_parts = ("datasets", "ucmerced")

    def selected(self) -> list[dict[str, str]]:
        rows = shipped_manifest()
        n = self.option("per_class")
        if n is None:
            return rows
        seed = int(self.settings.get("seed", 0))
        by_class: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            by_class.setdefault(r["class"], []).append(r)
        out = []
        for c in sorted(by_class):
            names = rank([r["name"] for r in by_class[c]], seed=seed, salt=f"ucmerced-subset/{c}")[: int(n)]
            keep = set(names)
            out += [r for r in by_class[c] if r["name"] in keep]
        return out

    def sources(self) -> list[Source]:
        per_image = "pixel sha256 of every image (datasets/ucmerced_manifest.tsv)"

        def unzip(tag: str):
            def then(archive: Path) -> Path:
                extracted = cache_dir() / "ucmerced_extracted" / tag
                images = extracted / "UCMerced_LandUse" / "Images"
                if not images.is_dir():
                    try:
                        safe_extract(archive, extracted, max_files=5_000, max_bytes=2 * 1024**3)
                    except DatasetError:
                        archive.unlink()  # e.g. an error page saved as the zip: never reuse it
                        raise
                if not images.is_dir():
                    raise DatasetError(f"{archive}: no UCMerced_LandUse/Images folder in the zip")
                return images
            return then

        return [*local_sources(self, self.shared_parts, per_image),
                url_source(self.urls[0], "UCMerced_LandUse.zip", unzip("official"),
                           checksum=f"none published; {per_image}"),
                url_source(TORCHGEO_URL, "UCMerced_LandUse.torchgeo.zip", unzip("torchgeo"), md5=TORCHGEO_MD5,
                           pin="main",
                           checksum=f"md5 {TORCHGEO_MD5} (torchgeo's; pins the content of revision main) "
                                    f"+ {per_image}")]

    def _verify(self) -> Path:
        """Find the source folder (local copy, or a downloaded and extracted zip)."""
        hint = local_hint(self, self.shared_parts,
                          f"put UCMerced_LandUse.zip into {cache_dir()} (it is then checked image by image)")
        src, self.source = resolve("ucmerced", self.sources(), hint)
        return src

    def find_source(self, src: Path, row: dict[str, str]) -> Path:
        for ext in SOURCE_EXTS:
            p = src / row["class"] / f"{row['name']}{ext}"
            if p.is_file():
                return p
        raise DatasetError(f"{src / row['class'] / row['name']}.*: image missing from the UC Merced source")

    def build(self, workers: int = 1) -> list[Entry]:
        from rsicbench.imageio import pixel_sha256, read_rgb, write_png

        src = self._verify()
        rows = self.selected()

        def one(row: dict[str, str]) -> Entry:
            rel = f"{row['class']}/{row['name']}.png"
            out = self.images_dir / rel
            entry = Entry(rel, row["class"], int(row["width"]), int(row["height"]), row["sha256_rgb"])
            if png_is_current(out, row["sha256_rgb"]):
                return entry  # resumed: already written and verified
            path = self.find_source(src, row)
            rgb = read_rgb(path)
            got = pixel_sha256(rgb)
            if got != row["sha256_rgb"]:
                raise DatasetError(
                    f"{path}: pixel sha256 {got} does not match the shipped manifest "
                    f"({row['sha256_rgb']}); the file is corrupt or not the official image")
            if (rgb.shape[1], rgb.shape[0]) != (entry.width, entry.height):
                raise DatasetError(f"{path}: size {rgb.shape[1]}x{rgb.shape[0]}, expected {entry.width}x{entry.height}")
            write_png(out, rgb)
            return entry

        entries = _parallel_map(one, rows, workers, "ucmerced")
        self.prune({e.relpath for e in entries})
        write_manifest(self.manifest_path, entries)
        odd = sorted(e.relpath for e in entries if (e.width, e.height) != (256, 256))
        self.write_info({"source": self.source.record(), "images": len(entries), "per_class": self.option("per_class"),
                         "verified": "pixel sha256 vs datasets/ucmerced_manifest.tsv",
                         "native_size_not_256": odd})
        return entries
