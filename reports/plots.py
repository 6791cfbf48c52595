"""Static inline SVG plots (matplotlib, svg backend), byte-identical across runs.

Determinism: a fixed `svg.hashsalt` (element ids), `metadata={'Date': None}` (no timestamp),
`svg.fonttype='none'` (text stays text: smaller files, no embedded glyphs, no external font;
the browser's default sans-serif draws it). Per-image scatter is thinned to a fixed number of
points per rate point by an evenly spaced, sorted selection, so no RNG is involved.
"""

from __future__ import annotations

import io
import math
import re

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsicbench.reports.loaders import RDPoint  # noqa: E402

RC = {
    "svg.hashsalt": "rsicbench-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "path.simplify": True,
}

# (column, axis label, lower-is-better)
RD_METRICS = (
    ("psnr", "PSNR (dB)", False),
    ("msssim_db", "MS-SSIM (dB)", False),
    ("lpips", "LPIPS", True),
    ("vifp", "VIFp", False),
)


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    # drop the XML prolog and DOCTYPE: the SVG is inlined into HTML
    text = re.sub(r"^<\?xml[^>]*>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    return text.strip()


def thin(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of at most k evenly spaced entries (deterministic)."""
    n = len(values)
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def rd_figure(curves: dict[str, list[RDPoint]], title: str, scatter_max: int) -> str:
    """2x2 RD plot: mean per rate point (line), IQR of bpp and of the metric (error bars),
    and a thinned per-image scatter."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7.2))
        cmap = plt.get_cmap("tab10")
        for ax, (col, label, lower) in zip(axes.flat, RD_METRICS):
            drawn = False
            for i, (codec, points) in enumerate(sorted(curves.items())):
                color = cmap(i % 10)
                xs, ys, xerr, yerr = [], [], [[], []], [[], []]
                for p in points:
                    if p.summary.get("target_bpp") is not None:
                        continue  # matched-rate points are not on the quality ladder; tables list them
                    x, y = p.mean("bpp"), p.mean(col)
                    if math.isnan(x) or math.isnan(y):
                        continue
                    xq, yq = p.quantiles("bpp"), p.quantiles(col)
                    xs.append(x)
                    ys.append(y)
                    xerr[0].append(max(x - xq[0], 0))
                    xerr[1].append(max(xq[1] - x, 0))
                    yerr[0].append(max(y - yq[0], 0))
                    yerr[1].append(max(yq[1] - y, 0))
                    if scatter_max > 0:
                        bx, by = p.values["bpp"], p.values[col]
                        ok = np.isfinite(bx) & np.isfinite(by)
                        bx, by = bx[ok], by[ok]
                        idx = thin(bx, scatter_max)
                        ax.scatter(bx[idx], by[idx], s=3, color=color, alpha=0.25, linewidths=0, rasterized=False)
                if xs:
                    drawn = True
                    ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, color=color, marker="o", ms=3, lw=1.2,
                                elinewidth=0.8, capsize=2, label=codec)
            ax.set_xlabel("bpp")
            ax.set_ylabel(label + (" (lower is better)" if lower else ""))
            if not drawn:
                ax.text(0.5, 0.5, f"no {col} values", transform=ax.transAxes, ha="center", va="center")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), frameon=False,
                       bbox_to_anchor=(0.5, 1.03))
        fig.suptitle(title, y=1.07 if handles else 1.0)
        fig.tight_layout()
        return _svg(fig)


def confusion_figure(mat: np.ndarray, classes: list[str], title: str) -> str:
    """Row-normalised confusion matrix heatmap (rows = true class); counts in the cells when small."""
    n = mat.shape[0]
    names = classes if len(classes) == n else [str(i) for i in range(n)]
    rows = mat.sum(axis=1, keepdims=True)
    norm = np.divide(mat, rows, out=np.zeros_like(mat), where=rows > 0)
    size = min(2.5 + 0.32 * n, 11)
    with plt.rc_context({**RC, "axes.grid": False, "font.size": 7 if n > 12 else 8}):
        fig, ax = plt.subplots(figsize=(size + 1, size))
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks(range(n), names, rotation=90)
        ax.set_yticks(range(n), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 25:
            for r in range(n):
                for c in range(n):
                    if mat[r, c]:
                        ax.text(c, r, f"{mat[r, c]:g}", ha="center", va="center", fontsize=6,
                                color="white" if norm[r, c] > 0.5 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
        ax.set_title(title)
        fig.tight_layout()
        return _svg(fig)
