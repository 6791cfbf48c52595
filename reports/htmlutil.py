"""Small HTML helpers shared by the sections: escaping, number formatting, tables, notices."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np


@dataclass
class Section:
    id: str
    title: str
    body: str
    produced: bool  # False when none of its inputs exist yet


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers with a fixed precision; NaN/None as an em dash (never a made-up number)."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}".replace(",", "\u202f")
    if isinstance(x, (float, np.floating)):
        if math.isnan(x) or math.isinf(x):
            return "—"
        ax = abs(x)
        if ax != 0 and (ax >= 1e6 or ax < 10 ** -digits):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}"
    return esc(x)


def table(header: list[str], rows: Iterable[list[str]], caption: str = "", cls: str = "") -> str:
    """Cells are inserted as given: callers escape text with esc() and numbers with fmt()."""
    out = [f'<table class="{esc(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def missing(stage: str, expected: str | Path) -> str:
    return (f'<p class="missing">Not produced by this run (stage <code>{esc(stage)}</code> has not run): '
            f"expected <code>{esc(expected)}</code>.</p>")


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def profile_tag(profile: str) -> str:
    return f'<span class="profile profile-{esc(profile)}">profile: {esc(profile)}</span>'


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def heatmap(mat: np.ndarray, caption: str) -> str:
    """A compact row-normalised confusion matrix as an HTML table (rows = true class, columns =
    predicted; class indices, legend given once by the caller): cell shade = fraction of the
    true class (10 steps), cell text = count. Far smaller than an SVG per matrix."""
    mat = np.asarray(mat, dtype=np.float64)
    rows = mat.sum(axis=1, keepdims=True)
    norm = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
    n = mat.shape[0]
    out = [f'<table class="hm"><caption>{caption}</caption><tr><th>t\\p</th>'
           + "".join(f"<th>{j}</th>" for j in range(n)) + "</tr>"]
    for i in range(n):
        cells = "".join(f'<td class="h{min(9, int(norm[i, j] * 10))}">{int(mat[i, j]) if mat[i, j] else ""}</td>' for j in range(n))
        out.append(f"<tr><th>{i}</th>{cells}</tr>")
    out.append("</table>")
    return "".join(out)
