"""Large-scene tiler (the seeds' San Francisco protocol: a 17408^2 scene cut into 256^2
tiles, tiles with black bars or a single value removed).

Rule: a non-overlapping grid from the top-left corner; the right/bottom remainder that does
not fill a whole tile is dropped (no padding, which would invent pixels). A tile is invalid,
and dropped, when
  * the fraction of nodata pixels exceeds `max_nodata_frac` (default 0: any nodata pixel
    drops the tile). Nodata is either an explicit boolean mask (Landsat: 0 in any band of
    the raw data) or, without one, pure-black pixels (0,0,0), the black bars of scenes;
  * or the tile holds a single value everywhere (an empty, uninformative tile).
An image smaller than one tile in either dimension yields no tiles: it is skipped and a
warning names it (padding or resizing would invent or change pixels).
Tile names: `<stem>_r<row>_c<col>` with zero-padded grid indices.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    y: int
    x: int
    rgb: np.ndarray

    def name(self, stem: str) -> str:
        return f"{stem}_r{self.row:03d}_c{self.col:03d}"


def grid(height: int, width: int, tile: int = 256) -> list[tuple[int, int, int, int]]:
    """(row, col, y, x) of every whole tile, row-major."""
    return [(r, c, r * tile, c * tile) for r in range(height // tile) for c in range(width // tile)]


def tile_is_valid(rgb: np.ndarray, nodata: np.ndarray | None = None, max_nodata_frac: float = 0.0) -> bool:
    bad = nodata if nodata is not None else np.all(rgb == 0, axis=2)
    if bad.mean() > max_nodata_frac:
        return False
    return bool(rgb.max() != rgb.min())


def tile_image(rgb: np.ndarray, tile: int = 256, nodata: np.ndarray | None = None,
               max_nodata_frac: float = 0.0, source: str = "<image>") -> list[Tile]:
    """Valid tiles of an HxWx3 uint8 image (see the module rule)."""
    h, w = rgb.shape[:2]
    if nodata is not None and nodata.shape != (h, w):
        raise ValueError(f"{source}: nodata mask {nodata.shape} does not match image {(h, w)}")
    if h < tile or w < tile:
        warnings.warn(f"{source}: {w}x{h} is smaller than one {tile}x{tile} tile; skipped", stacklevel=2)
        return []
    out = []
    for r, c, y, x in grid(h, w, tile):
        t = rgb[y:y + tile, x:x + tile]
        m = None if nodata is None else nodata[y:y + tile, x:x + tile]
        if tile_is_valid(t, m, max_nodata_frac):
            out.append(Tile(r, c, y, x, np.ascontiguousarray(t)))
    return out
