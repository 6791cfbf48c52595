"""Report section "Paper-profile readiness": results/paper_readiness.json (`rsicbench doctor`).

What one optimisation step and one 256x256 encode/decode cost per model on the machine the
doctor ran on, and the paper profile's projected time there. No DVC stage writes the file, so
when it is absent the section names the command that does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsicbench.reports.context import Context
from rsicbench.reports.htmlutil import Section, esc, fmt, note, profile_tag, table
from rsicbench.reports.loaders import _json_object

FILE = "paper_readiness.json"
COMMAND = "rsicbench doctor --profile paper"
_MEASURED = ("step_wall_s", "step_cpu_s", "encode_s", "decode_s", "batch", "patch", "scale", "params")


def load_readiness(results: Path) -> dict[str, Any] | None:
    """results/paper_readiness.json (reproduce/papers/readiness.py), checked, or None when absent."""
    path = results / FILE
    obj = _json_object(path)
    if obj is None:
        return None
    rows = obj.get("models")
    ok = isinstance(rows, list) and all(
        isinstance(r, dict) and "model" in r and "projected_total_s" in r and isinstance(r.get("measurements"), list)
        and r["measurements"] and all(isinstance(m, dict) and set(_MEASURED) <= set(m) for m in r["measurements"])
        for r in rows)
    if not ok:
        raise ValueError(f"{path}: expected 'models', a list of objects with 'model', 'projected_total_s' and "
                         f"'measurements' holding {', '.join(_MEASURED)} (reproduce/papers/readiness.py)")
    return obj


def _hours(s: float | None) -> str:
    if s is None:
        return "—"
    h = s / 3600.0
    return f"{fmt(h)} h" + (f'<br><span class="iqr">{fmt(h / 24.0)} days</span>' if h >= 48 else "")


def _lines(ms: list[dict], cell) -> str:
    return "<br>".join(cell(m) for m in ms)


def _memory(m: dict) -> str:
    if m.get("cuda_max_allocated_mb") is not None:
        return f"{fmt(m['cuda_max_allocated_mb'])} MB CUDA"
    return f"{fmt(m.get('rss_peak_mb'))} MB RSS"


def _row(r: dict) -> list[str]:
    ms = r["measurements"]
    width = lambda m: ", ".join(f"{k}={v}" for k, v in sorted((m.get("arch") or {}).items()))  # noqa: E731
    batch = lambda m: (f"{m['batch']}×{m['patch']}² "  # noqa: E731
                       + (f"<span class='iqr'>(×{m['scale']:g} → {m.get('paper_batch')}×{m.get('paper_patch')}²)</span>"
                          if m["scale"] != 1 else ""))
    rates = f"{r.get('rates')} × {fmt(max(r.get('steps_per_rate') or [0]))}"
    return [esc(r.get("family", "")), f"{esc(r['model'])}<br><span class='iqr'>{esc(r.get('role', ''))}</span>",
            _lines(ms, lambda m: esc(width(m))), _lines(ms, lambda m: fmt(m["params"])), _lines(ms, batch),
            _lines(ms, lambda m: f"{fmt(m['step_wall_s'])} / {fmt(m['step_cpu_s'])}"),
            _lines(ms, lambda m: fmt(m["step_wall_s"] * m["scale"])), _lines(ms, _memory),
            _lines(ms, lambda m: f"{fmt(m['encode_s'])} / {fmt(m['decode_s'])}"), rates, fmt(r.get("eval_images")),
            _hours(r.get("projected_train_s")), _hours(r.get("projected_eval_s")), _hours(r.get("projected_total_s"))]


def section_readiness(ctx: Context) -> Section:
    title = "Paper-profile readiness"
    obj = load_readiness(ctx.results)
    if obj is None:
        body = (f'<p class="missing">Not produced by this run: <code>{esc(COMMAND)}</code> writes '
                f"<code>{esc(ctx.results / FILE)}</code> (no DVC stage runs it; minutes on a CPU).</p>")
        return Section("readiness", title, body, False)
    head = ["family", "model", "width", "params", "measured batch×crop", "step s wall / CPU",
            "step s at profile batch", "peak memory", "encode / decode s (256²)", "rates × steps",
            "eval images", "projected train", "projected eval", "projected total"]
    device = esc(obj.get("cuda_device") or obj.get("device", "?"))
    load = obj.get("loadavg_start")
    caption = (f"measured by <code>{esc(COMMAND)}</code> on {device} (torch {esc(obj.get('torch', '?'))}, "
               f"{fmt(obj.get('cpu_count'))} CPUs"
               + (f", load average {fmt(load[0], 2)} at start" if isinstance(load, list) and load else "")
               + f"), {profile_tag(str(obj.get('profile', '?')))}")
    parts = [table(head, [_row(r) for r in obj["models"]], caption=caption)]
    parts.append(note(f"Projection: {esc(obj.get('formula', ''))}. The timed step is the second one on the same "
                      "batch (the first pays one-time set-up); a step measured at a smaller batch or crop is scaled "
                      "linearly in pixels (×scale), which overstates a GPU's time (larger batches use it better). "
                      "Evaluation = encode + decode per image per rate point, metrics not counted."))
    if not obj.get("cuda_available"):
        parts.append(note("No GPU was available to this measurement: every figure is CPU time."))
    return Section("readiness", title, "".join(parts), True)
