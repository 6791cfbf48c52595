"""`rsicbench data {list,fetch,verify,split}`: build, check and split the datasets.

  rsicbench data list
  rsicbench data sources          every dataset's and weight's sources, in order, and which was used
  rsicbench data fetch <ds> [--profile P] [--data-root DIR] [--workers N]
  rsicbench data fetch imagefolder --source DIR --name NAME [--tile 256]
  rsicbench data verify <ds>      re-decode every PNG, compare with the manifest
  rsicbench data split <ds>       8:1:1 (+ classifier protocol) -> data/<ds>/splits/
Settings come from configs/data.yaml for the active profile (params.yaml, or --profile).
"""

from __future__ import annotations

import argparse
import sys
import time

from rsicbench.config import settings as load_settings
from rsicbench.datasets import DATASETS, ImageFolder, get_dataset, list_datasets
from rsicbench.datasets.base import DatasetError, read_manifest
from rsicbench.datasets.splits import split_dataset
from rsicbench.imageio import ImageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rsicbench data", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="known datasets")
    src = sub.add_parser("sources", help="ordered, pinned, checksummed sources and which one each fetch used")
    src.add_argument("--data-root", default=None, help="folder holding <ds>/ (default: <project>/data)")
    src.add_argument("--profile", default=None, help="ci | default | paper (default: params.yaml)")
    for name in ("fetch", "verify", "split"):
        s = sub.add_parser(name)
        s.add_argument("dataset", help=f"one of {', '.join(list_datasets())}, or imagefolder (fetch, split)")
        s.add_argument("--profile", default=None, help="ci | default | paper (default: params.yaml)")
        s.add_argument("--data-root", default=None, help="folder holding <ds>/ (default: <project>/data)")
        s.add_argument("--workers", type=int, default=None, help="threads (default: params.yaml threads)")
        s.add_argument("--name", default=None, help="imagefolder: dataset name (folder under data/)")
        if name == "fetch":
            s.add_argument("--source", default=None, help="imagefolder: the folder of images")
            s.add_argument("--tile", type=int, default=None, help="imagefolder: cut into TILE^2 tiles")
            s.add_argument("--bands", type=int, nargs="+", default=None,
                           help="imagefolder: 1-based bands used as R G B (multi-band TIFF/GeoTIFF)")
    return p


def _dataset(args, cfg):
    if args.dataset == "imagefolder":
        if not args.name:
            raise DatasetError("imagefolder needs --name (and --source for fetch)")
        if args.cmd == "fetch":
            if not args.source:
                raise DatasetError("imagefolder fetch needs --source DIR")
            return ImageFolder(args.source, name=args.name, tile=args.tile, bands=args.bands,
                               data_root=args.data_root, settings=cfg)
        ds = ImageFolder(".", name=args.name, data_root=args.data_root, settings=cfg)
        return ds
    return get_dataset(args.dataset, args.data_root, cfg)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        for name in list_datasets():
            c = DATASETS[name]
            print(f"{name:<14} {c.urls[0] if c.urls else ''}")
        return 0
    cfg = load_settings("data", profile=args.profile)
    if args.cmd == "sources":
        from rsicbench.datasets.source_table import print_sources

        print_sources(args.data_root, cfg)
        return 0
    workers = args.workers or int(cfg.get("threads", 1))
    try:
        ds = _dataset(args, cfg)
        t0 = time.perf_counter()
        if args.cmd == "fetch":
            entries = ds.build(workers=workers)
            print(f"{ds.name}: {len(entries)} images verified and written to {ds.images_dir} "
                  f"({time.perf_counter() - t0:.1f} s, profile {cfg['profile']})")
        elif args.cmd == "verify":
            n = ds.verify_outputs(workers=workers)
            print(f"{ds.name}: {n} images match {ds.manifest_path} ({time.perf_counter() - t0:.1f} s)")
        else:
            entries = read_manifest(ds.manifest_path)
            sp = split_dataset(entries, ds.splits_dir, seed=int(cfg.get("seed", 0)),
                               ratios=tuple(cfg.get("split_ratios", (0.8, 0.1, 0.1))),
                               classifier=cfg.get("classifier") if ds.has_classes else None)
            print(f"{ds.name}: " + ", ".join(f"{k} {len(v)}" for k, v in sp.items()) + f" -> {ds.splits_dir}")
    except (DatasetError, ImageError, FileNotFoundError, ValueError) as e:
        print(f"rsicbench data {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
