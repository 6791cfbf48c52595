"""Loaders for datasets that cannot be fetched here (login walls, cloud drives, .rar).

Download them from the official page, unpack, and point the loader at the folder with the
environment variable or `<name>.path` in configs/data.yaml. No publisher gives checksums
for these archives, so verification is: every image must decode, and its pixel sha256 is
recorded in data/<ds>/manifest.tsv (later `rsicbench data verify` re-checks the PNGs).
"""

from __future__ import annotations

from pathlib import Path

from rsicbench.datasets.base import DatasetError
from rsicbench.datasets.imagefolder import FolderDataset


class _Unwrapped(FolderDataset):
    """Accepts the unpacked archive root or the folder inside it named `inner`."""

    inner: str = ""

    def _verify(self) -> Path:
        src = super()._verify()
        if self.inner and (src / self.inner).is_dir():
            src = src / self.inner
        return src


class NWPURESISC45(_Unwrapped):
    """NWPU-RESISC45 (Cheng et al. 2017): 45 classes x 700 RGB JPEGs, 256x256.

    The seeds (MGSS-Net, DMENet) use 140 images per class (6,300), split 8:1:1: set
    `nwpu_resisc45.per_class: 140` (configs/data.yaml) for that subset.
    """

    name = "nwpu_resisc45"
    urls = ("https://gcheng-nwpu.github.io/#Datasets",
            "https://onedrive.live.com/?authkey=%21AHHNaHIlzp%5FIXjs&id=5C5E061130630A68%21107")
    has_classes = True
    env_var = "RSICBENCH_NWPU_RESISC45"
    inner = "NWPU-RESISC45"
    layout = "NWPU-RESISC45/<class>/<class>_NNN.jpg (45 classes x 700, 256x256)"


class AID(_Unwrapped):
    """AID (Xia et al. 2017): 30 classes, 10,000 RGB JPEGs of 600x600 (kept at native size)."""

    name = "aid"
    urls = ("https://captain-whu.github.io/AID/",)
    has_classes = True
    env_var = "RSICBENCH_AID"
    inner = "AID"
    layout = "AID/<Class>/<class>_N.jpg (30 classes, 220-420 each, 600x600)"


class DOTA(FolderDataset):
    """DOTA v1 (Xia et al. 2018): 2,806 large aerial PNGs (800-4000 px), cut into 256^2
    tiles by rsicbench.datasets.tiler. Point the path at an `images/` folder."""

    name = "dota"
    urls = ("https://captain-whu.github.io/DOTA/dataset.html",)
    has_classes = False
    env_var = "RSICBENCH_DOTA"
    tile = 256
    layout = "images/P####.png (+ labelTxt/P####.txt, unused here)"

    def _verify(self) -> Path:
        src = super()._verify()
        if (src / "images").is_dir():
            src = src / "images"
        if not any(src.glob("*.png")):
            raise DatasetError(f"{src}: no DOTA images (P####.png)")
        return src


class Gaofen(_Unwrapped):
    """Gaofen-2 imagery via GID (Tong et al. 2020): 150 large GF-2 RGB scenes, 7200x6800,
    8-bit TIFF, cut into 256^2 tiles. (LTCHM's "China Gaofen satellite dataset" is not
    published; GID is the public Gaofen source.)"""

    name = "gaofen"
    urls = ("https://x-ytong.github.io/project/GID.html",)
    has_classes = False
    env_var = "RSICBENCH_GAOFEN"
    tile = 256
    inner = "image_RGB"
    layout = "GID/Large-scale Classification_5classes/image_RGB/GF2_*.tif (RGB, 7200x6800)"
