"""`rsicbench <command> ...`: one console entry point; each command module has main(argv)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

# command -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("rsicbench.datasets.cli", "fetch, verify and split datasets"),
    "metrics": ("rsicbench.metrics.cli", "compare two image folders: per-image CSV + summary JSON"),
    "codecs": ("rsicbench.reproduce.commands.codecs", "list codecs and their versions"),
    "sweep": ("rsicbench.reproduce.commands.sweep", "evaluate a codec over rate points on a split"),
    "bd": ("rsicbench.reproduce.commands.bd", "BD-rate / BD-PSNR tables against an anchor"),
    "gate": ("rsicbench.reproduce.evaluation.gate", "CI drift gate: compare metrics JSON with a baseline"),
    "train": ("rsicbench.reproduce.commands.train", "train a learned codec"),
    "train-submit": ("rsicbench.reproduce.commands.train_submit", "train runs as Slurm (or local) jobs via submitit"),
    "evaluate": ("rsicbench.reproduce.commands.evaluate", "evaluate a learned codec checkpoint"),
    "complexity": ("rsicbench.reproduce.commands.complexity", "params, FLOPs, timing, memory"),
    "fidelity": ("rsicbench.reproduce.commands.fidelity", "params/FLOPs of paper models vs the papers' tables"),
    "ablation": ("rsicbench.reproduce.commands.ablation", "per-paper ablation tables: BD vs each paper's baseline variant"),
    "roi": ("rsicbench.reproduce.commands.roi", "ROI masks, cloud-detector validation, AGDL train/RD"),
    "classify": ("rsicbench.downstream.cli", "scene classifier: train, evaluate on reconstructions"),
    "report": ("rsicbench.reports.cli", "build the self-contained HTML report"),
    "folder": ("rsicbench.reproduce.commands.folder", "a folder of images through sweeps, learned evaluation, BD, report"),
    "doctor": ("rsicbench.reproduce.commands.doctor", "measure one train step and one code per model; project a profile's time"),
    "batch": ("rsicbench.cli", "several commands in one process: batch CMD ARGS :: CMD ARGS ..."),
}
BATCH_SEP = "::"


def _usage() -> str:
    lines = ["usage: rsicbench [--debug] <command> [args...]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", f"--debug (or {ENV_DEBUG}=1): show the traceback of an error instead of one line"]
    return "\n".join(lines)


# Commands that only read settings and write where told: outside a project they read the
# configs of the checkout this package runs from, so they work from any directory.
STANDALONE = ("metrics", "codecs", "gate")
ENV_DEBUG = "RSICBENCH_DEBUG"


@contextlib.contextmanager
def _short_argparse_errors():
    """argparse errors as one line (its usage block hid the message); restored afterwards."""
    original = argparse.ArgumentParser.error

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")

    argparse.ArgumentParser.error = error
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _report(cmd: str, e: Exception) -> int:
    """One line on stderr instead of a traceback. Our own error types, ValueError and OSError
    carry a message naming the input (exit 2); anything else is a bug (exit 1)."""
    if isinstance(e, (ValueError, OSError)) or type(e).__module__.startswith("rsicbench."):
        print(f"rsicbench {cmd}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    print(f"rsicbench {cmd}: error: {type(e).__name__}: {_one_line(e)} (run with --debug for the traceback)",
          file=sys.stderr)
    return 1


def batch(argv: list[str]) -> int:
    """`rsicbench batch train ... :: evaluate ...`: the commands one after another in this
    process, so a DVC stage that runs several pays the interpreter and torch imports once
    (docs/pipeline-speed.md). Stops at the first command that fails and returns its code."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: rsicbench batch CMD ARGS [:: CMD ARGS ...]  (stops at the first failure)")
        return 0 if argv else 2
    parts: list[list[str]] = [[]]
    for arg in argv:
        if arg == BATCH_SEP:
            parts.append([])
        else:
            parts[-1].append(arg)
    if any(not part or part[0] in ("batch", BATCH_SEP) for part in parts):
        print(f"rsicbench batch: error: expected CMD ARGS separated by {BATCH_SEP!r}, got {argv!r}", file=sys.stderr)
        return 2
    for part in parts:
        try:
            code = main(part)
        except SystemExit as e:  # argparse's --help / usage errors
            code = e.code if isinstance(e.code, int) else 2
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(ENV_DEBUG, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "batch":
        if debug:  # each command of the batch sees it
            os.environ[ENV_DEBUG] = "1"
        return batch(rest)
    if cmd not in COMMANDS:
        print(f"rsicbench: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if cmd in STANDALONE:
        from rsicbench.config import use_source_root_outside_project

        use_source_root_outside_project()
    try:
        module = importlib.import_module(COMMANDS[cmd][0])
        with _short_argparse_errors():
            return int(module.main(rest) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"rsicbench {cmd}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns errors into messages
        if debug:
            raise
        return _report(cmd, e)


if __name__ == "__main__":
    sys.exit(main())
