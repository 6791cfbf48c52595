"""One exception type for bad user input; `rsicbench.cli` turns it into a one-line error.

Raise `UserError` (or a subclass) with a message that names the input and the problem.
It is a ValueError so older `except ValueError` handlers keep catching it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user (argument, file, config): the message names it and the problem."""


class CodecError(RuntimeError):
    """A codec could not encode or decode; the message names the codec and the cause."""


def int_at_least(minimum: int):
    """An argparse `type` accepting integers >= `minimum` (argparse reports the error in one line)."""
    import argparse

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = minimum - 1
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return v

    return parse


def check_writable(path, what: str, is_dir: bool = False) -> None:
    """Refuse, before any work starts, an output path that cannot be written.

    `path` is a file to be written (or, with is_dir, a folder to write into); `what` names
    the argument (e.g. "--out-csv"). Probes the nearest existing folder by creating and
    removing a temporary file there (also right for root, for whom permission bits lie).
    Creates nothing that stays.
    """
    import os
    import tempfile
    from pathlib import Path

    p = Path(path)
    if p.exists() and (p.is_dir() != is_dir):
        kind = "a folder" if p.is_dir() else "a file"
        raise UserError(f"{what} {path}: is {kind}, expected {'a folder' if is_dir else 'a file path'}")
    probe = p if is_dir and p.is_dir() else p.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{what} {path}: cannot create it, {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rsicbench-probe.", dir=probe)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write into {probe} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)
