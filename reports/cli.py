"""`rsicbench report`: build the self-contained HTML report from the pipeline's outputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rsicbench.config import settings
from rsicbench.paths import project_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench report", description=__doc__)
    ap.add_argument("--out", default="report/index.html", help="HTML file to write (default: %(default)s); "
                    "rd_points.csv and metrics.json go beside it")
    ap.add_argument("--results", default="results", help="results folder (default: %(default)s)")
    ap.add_argument("--data", default="data", help="data folder (default: %(default)s)")
    ap.add_argument("--claims", default="claims", help="paper claims folder (default: %(default)s)")
    ap.add_argument("--profile", default=None, help="profile to label the numbers with (default: params.yaml)")
    ap.add_argument("--no-timestamp", action="store_true", help="leave out the build time: byte-identical reruns")
    args = ap.parse_args(argv)

    from rsicbench.reports.build import build_report  # matplotlib import only when building

    root = project_root()

    def resolve(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else root / path

    try:
        cfg = settings("report", args.profile, root)
        done = build_report(root, resolve(args.results), resolve(args.data), resolve(args.claims), resolve(args.out),
                            cfg["profile"], cfg, with_timestamp=False if args.no_timestamp else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"rsicbench report: {e}", file=sys.stderr)
        return 1
    missing = [s.title for s in done if not s.produced]
    print(f"wrote {args.out} (profile {cfg['profile']}): {len(done) - len(missing)}/{len(done)} sections with data")
    if missing:
        print("not produced yet: " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
