"""Generic image-folder dataset, so users can run the suite on their own images.

Layouts (detected, never guessed silently):
  * `<root>/<class>/<image>`: every image one level down -> labelled by folder name;
  * `<root>/<image>`: every image at the top -> no labels;
  a mix of both is refused (the error names one file of each kind).
Images are read with rsicbench.imageio (its conversion rule for gray, RGBA, palette,
16-bit and multi-band TIFF/GeoTIFF; option `bands` = the 1-based bands used as R, G, B) and written as lossless PNG `data/<name>/images/[<class>/]<stem>.png`. Two source
files with the same stem (a.jpg, a.tif) are refused. Without tiling, images keep their
native size (any size is fine for codecs and metrics). With `tile`, large images are cut by
rsicbench.datasets.tiler (images smaller than a tile are skipped with a warning).
`per_class` keeps N images per class (per folder), chosen by the seeded sha256 ranking.
"""

from __future__ import annotations

import os
from pathlib import Path

from rsicbench.datasets.base import IMAGE_EXTS, Dataset, DatasetError, Entry, _parallel_map, rank, write_manifest


def scan_folder(root: Path) -> list[tuple[Path, str | None]]:
    """(file, label) for every image under root, sorted; labels from the class folder."""
    if not root.is_dir():
        raise DatasetError(f"{root}: image folder not found")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DatasetError(f"{root}: no images ({', '.join(IMAGE_EXTS)})")
    depth = {len(p.relative_to(root).parts) for p in files}
    if depth == {1}:
        return [(p, None) for p in files]
    if depth == {2}:
        return [(p, p.parent.name) for p in files]
    top = next(p for p in files if len(p.relative_to(root).parts) == 1) if 1 in depth else None
    deep = next(p for p in files if len(p.relative_to(root).parts) > 2) if max(depth) > 2 else None
    raise DatasetError(
        f"{root}: mixed layout; expected all images at <root>/<image> or all at <root>/<class>/<image> "
        f"(e.g. {top or deep} vs {next(p for p in files if p not in (top, deep))})")


class FolderDataset(Dataset):
    """A dataset built from a local folder of images (subclasses add URL and layout)."""

    tile: int | None = None
    shared_parts: tuple[str, ...] | None = None

    def _verify(self) -> Path:
        src = self.source_dir(self.shared_parts) if self.shared_parts else self.source_dir(("__none__",))
        if src is None:
            raise DatasetError(
                f"no local copy of {self.name}: download it from {', '.join(self.urls) or 'its publisher'}, "
                f"unpack it (layout: {self.layout}) and set {self.env_var or 'the path'} or "
                f"`{self.name}.path` in configs/data.yaml")
        return src

    def items(self, src: Path) -> list[tuple[Path, str | None]]:
        items = scan_folder(src)
        stems: dict[tuple[str | None, str], Path] = {}
        for p, label in items:
            key = (label, p.stem)
            if key in stems:
                raise DatasetError(f"{p}: same name as {stems[key]}; rename one of them")
            stems[key] = p
        n = self.option("per_class")
        if n is None:
            return items
        seed = int(self.settings.get("seed", 0))
        out = []
        for label in sorted({lb or "" for _, lb in items}):
            group = {p.name: (p, lb) for p, lb in items if (lb or "") == label}
            for name in sorted(rank(group, seed, salt=f"{self.name}-subset/{label}")[: int(n)]):
                out.append(group[name])
        return sorted(out)

    def build(self, workers: int = 1) -> list[Entry]:
        from rsicbench.datasets.tiler import tile_image
        from rsicbench.imageio import pixel_sha256, read_rgb, write_png

        src = self._verify()
        tile = self.option("tile", self.tile)
        bands = self.option("bands", getattr(self, "bands", None))
        max_nodata = float(self.option("max_nodata_frac", 0.0))

        def one(item: tuple[Path, str | None]) -> list[Entry]:
            path, label = item
            rgb = read_rgb(path, bands=bands)
            prefix = f"{label}/" if label else ""
            if not tile:
                rel = f"{prefix}{path.stem}.png"
                write_png(self.images_dir / rel, rgb)
                return [Entry(rel, label, rgb.shape[1], rgb.shape[0], pixel_sha256(rgb))]
            out = []
            for t in tile_image(rgb, int(tile), max_nodata_frac=max_nodata, source=str(path)):
                rel = f"{prefix}{t.name(path.stem)}.png"
                write_png(self.images_dir / rel, t.rgb)
                out.append(Entry(rel, label, int(tile), int(tile), pixel_sha256(t.rgb),
                                 (("source", f"{path.name}@y={t.y},x={t.x}"),)))
            return out

        entries = [e for group in _parallel_map(one, self.items(src), workers, self.name) for e in group]
        if not entries:
            raise DatasetError(f"{src}: no usable images (all smaller than a tile or invalid)")
        self.prune({e.relpath for e in entries})
        write_manifest(self.manifest_path, entries)
        self.write_info({"images": len(entries), "per_class": self.option("per_class"), "tile": tile, "bands": bands})
        return entries


class ImageFolder(FolderDataset):
    """A user's folder: `rsicbench data fetch imagefolder --source DIR --name NAME`."""

    name = "imagefolder"
    layout = "<root>/<image> or <root>/<class>/<image>"

    def __init__(self, source: str | os.PathLike, name: str = "imagefolder", tile: int | None = None,
                 bands: list[int] | None = None, **kw):
        super().__init__(**kw)
        self.name = name
        self._source = Path(source)
        self.tile = tile
        self.bands = list(bands) if bands else None

    def _verify(self) -> Path:
        if not self._source.is_dir():
            raise DatasetError(f"{self._source}: image folder not found")
        return self._source
