"""`rsicbench classify train|evaluate|check-backbone`.

  train           train the classifier on the original train split (select on val), then
                  score the clean test split -> results/classifier/<ds>/
  evaluate        score every codec and rate point under results/rd/<ds>/ on the test split's
                  reconstructions -> results/downstream/<ds>/
  check-backbone  ImageNet top-3 of the mapped EfficientNet-Lite0 on scikit-image photos

Settings come from configs/downstream.yaml (profile from params.yaml / --profile).
`--protocol ratio10` uses the seeds' protocol: the classifier_train / classifier_val splits
(10% of each class for training, drawn only from non-test images).
"""

from __future__ import annotations

import argparse
import sys

from rsicbench.config import settings

PROTOCOLS = {"standard": ("train", "val"), "ratio10": ("classifier_train", "classifier_val")}


def _cfg(args: argparse.Namespace) -> dict:
    cfg = settings("downstream", args.profile)
    if args.dataset:
        cfg["dataset"] = args.dataset
    if getattr(args, "protocol", None):
        cfg["train_split"], cfg["val_split"] = PROTOCOLS[args.protocol]
        if args.protocol != "standard":
            cfg["out_dir"] = f"{cfg['out_dir']}/{args.protocol}"
            cfg["results_dir"] = f"{cfg['results_dir']}/{args.protocol}"
    for k in ("epochs", "input_size", "out_dir", "rd_dir", "results_dir"):
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rsicbench classify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("train", "evaluate"):
        s = sub.add_parser(name)
        s.add_argument("dataset", nargs="?", default=None, help="dataset name (default: configs/downstream.yaml)")
        s.add_argument("--profile", default=None, help="ci | default | paper")
        s.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None)
        # outputs elsewhere than configs/downstream.yaml's folders (CI: results/ci/, no DVC stage's)
        s.add_argument("--out-dir", dest="out_dir", default=None, help="classifier folder (default: out_dir)")
        if name == "evaluate":
            s.add_argument("--rd-dir", dest="rd_dir", default=None, help="engine outputs to score (default: rd_dir)")
        s.add_argument("--results-dir", dest="results_dir", default=None, help="scores folder (default: results_dir)")
        if name == "train":
            s.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
            s.add_argument("--input-size", dest="input_size", type=int, default=None)
    sub.add_parser("check-backbone")
    args = p.parse_args(argv)

    try:
        if args.cmd == "train":
            from rsicbench.downstream.train import train

            train(_cfg(args))
        elif args.cmd == "evaluate":
            from rsicbench.downstream.evaluate import evaluate_all

            evaluate_all(_cfg(args))
        else:
            from rsicbench.downstream.backbones import imagenet_check

            for name, top in imagenet_check().items():
                print(name + ": " + "; ".join(f"{i} {desc} ({prob:.3f})" for i, desc, prob in top))
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"rsicbench classify {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0
