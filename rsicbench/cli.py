"""`rsicbench <command> ...`: one console entry point; each command module has main(argv)."""

from __future__ import annotations

import importlib
import sys

# command -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("rsicbench.datasets.cli", "fetch, verify and split datasets"),
    "metrics": ("rsicbench.metrics.cli", "compare two image folders: per-image CSV + summary JSON"),
    "codecs": ("rsicbench.reproduce.cli_codecs", "list codecs and their versions"),
    "sweep": ("rsicbench.reproduce.cli_sweep", "evaluate a codec over rate points on a split"),
    "bd": ("rsicbench.reproduce.cli_bd", "BD-rate / BD-PSNR tables against an anchor"),
    "gate": ("rsicbench.reproduce.gate", "CI drift gate: compare metrics JSON with a baseline"),
    "train": ("rsicbench.reproduce.cli_train", "train a learned codec"),
    "evaluate": ("rsicbench.reproduce.cli_evaluate", "evaluate a learned codec checkpoint"),
    "complexity": ("rsicbench.reproduce.cli_complexity", "params, FLOPs, timing, memory"),
    "fidelity": ("rsicbench.reproduce.cli_fidelity", "params/FLOPs of paper models vs the papers' tables"),
    "ablation": ("rsicbench.reproduce.cli_ablation", "per-paper ablation tables: BD vs each paper's baseline variant"),
    "roi": ("rsicbench.reproduce.cli_roi", "ROI masks, cloud-detector validation, AGDL train/RD"),
    "classify": ("rsicbench.downstream.cli", "scene classifier: train, evaluate on reconstructions"),
    "report": ("rsicbench.reports.cli", "build the self-contained HTML report"),
}


def _usage() -> str:
    lines = ["usage: rsicbench <command> [args...]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"rsicbench: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
