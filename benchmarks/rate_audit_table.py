"""The rate-audit table: every results/bench/rate_audit/*/summary.json (bench_rate_audit.py)
as one row per codec, real/est and the per-image bytes by cause, in table.md and table.csv."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

COLUMNS = ["model", "arch", "lam", "steps", "n_images", "bpp_real", "bpp_est", "real_over_est", "header_bytes",
           "forward_B", "model_B", "table_B", "cdf_B", "strings_B", "header_B",
           "mismatch_pct", "scale_table_pct", "cdf_pct", "flush_pct", "header_pct", "fixed_B", "bpp_est_for_1pct"]


def row(summary: dict) -> dict:
    b = summary["bytes_per_image"]
    m = b["model"]
    fixed = b["strings"] - b["cdf"] + b["header"]
    pixels = 8 * (b["strings"] + b["header"]) / summary["bpp_real_mean"]

    def pct(x: float) -> float:
        return round(100 * x / m, 2)

    arch = summary.get("arch") or {}
    return {"model": summary["model"], "arch": " ".join(f"{k}={v}" for k, v in sorted(arch.items())), "lam": summary["lam"], "steps": summary["steps"],
            "n_images": summary["n_images"], "bpp_real": round(summary["bpp_real_mean"], 4),
            "bpp_est": round(summary["bpp_est_mean"], 4), "real_over_est": round(summary["real_over_est"], 4),
            "header_bytes": "/".join(str(h) for h in summary["header_bytes"]),
            "forward_B": b["forward"], "model_B": m, "table_B": b["table"], "cdf_B": b["cdf"],
            "strings_B": b["strings"], "header_B": b["header"],
            # each cause as % of the coded-symbol estimate; they add up to real/est - 1
            "mismatch_pct": pct(m - b["forward"]), "scale_table_pct": pct(b["table"] - m),
            "cdf_pct": pct(b["cdf"] - b["table"]), "flush_pct": pct(b["strings"] - b["cdf"]),
            "header_pct": pct(b["header"]),
            # bytes that do not scale with the rate (flush + header), and the estimated bpp from
            # which they alone stay within 1 % of the estimate (at these images' pixel count)
            "fixed_B": round(fixed, 2), "bpp_est_for_1pct": round(100 * 8 * fixed / pixels, 3)}


def write_table(root: Path) -> str:
    from rsicbench.fsutil import write_text

    rows = []
    for p in sorted(root.glob("*/summary.json")):
        s = json.loads(p.read_text())
        if "bytes_per_image" in s:  # summaries of the audit before the per-cause breakdown are skipped
            rows.append(row(s))
    if not rows:
        raise SystemExit(f"{root}: no summary.json with a per-cause breakdown (run bench_rate_audit.py first)")
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(root / "table.csv", buf.getvalue())
    md = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    text = "\n".join(md) + "\n"
    write_text(root / "table.md", text)
    return text
