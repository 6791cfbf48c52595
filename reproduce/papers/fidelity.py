"""Architecture fidelity: our parameter counts and FLOPs beside what the papers report.

Counting conventions (why two columns):
  * `params`: every trainable parameter (sum of p.numel()).
  * `params_thop`: the convention of `thop.profile`, which the LTCHM paper's released code
    uses (model.py). thop only counts parameters of modules of known types (Conv, ConvT,
    Linear, BatchNorm, LayerNorm, ...) matched by EXACT type and only if they ran in the
    forward pass; parameters owned directly by custom modules (IDConv's kernel bank,
    relative-position tables, GDN, entropy bottleneck) and subclasses of nn.Conv2d (the
    masked context conv) are not counted. Reproduced here with forward hooks.
  * `flops`: torch.utils.flop_counter.FlopCounterMode (2 x multiply-accumulates, all ops
    incl. matmuls and functional convs). `macs_thop`: multiply-accumulates of the same
    exactly-typed Conv/ConvT/Linear modules only - what thop reports as "FLOPs" (it misses
    matmuls inside attention and functional convs such as IDConv's dynamic depthwise conv).
Inputs: whole models at 1x3x256x256 (LTCHM Sec. 3.10, DMENet Sec. 3.7); Table 5 blocks at
8x192x128x128 (LTCHM Sec. 3.9). Paper numbers come only from claims/<paper>.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from rsicbench.fsutil import write_json, write_text
from rsicbench.paths import project_root

_THOP_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
               nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
               nn.InstanceNorm2d)
TOLERANCE = 0.05


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def measure(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """params, params_thop, flops (FlopCounterMode) and macs_thop for one forward on x."""
    ran: dict[int, nn.Module] = {}
    macs = [0]

    def hook(m, inp, out):
        ran[id(m)] = m
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            # thop's count_convNd: OUTPUT elements x (Cin/groups x kernel + bias), for ConvT too
            k = int(torch.tensor(m.kernel_size).prod())
            macs[0] += out.numel() * ((m.in_channels // m.groups) * k + (m.bias is not None))
        elif isinstance(m, nn.Linear):
            macs[0] += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in _THOP_TYPES]
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {
        "params": count_params(model),
        "params_thop": sum(p.numel() for m in ran.values() for p in m.parameters(recurse=False)),
        "flops": int(fc.get_total_flops()),
        "macs_thop": int(macs[0]),
    }


def load_claims(root: Path) -> dict[tuple[str, str], dict]:
    """(paper file stem, claim id) -> claim, read by rsicbench.claims."""
    from rsicbench.claims import all_claims, claims_dir

    return {(stem, cid): c for stem, f in all_claims(claims_dir(root)).items() for cid, c in f.by_id().items()}


def _build(entry: dict) -> nn.Module:
    from rsicbench.reproduce.models import create_model
    from rsicbench.reproduce.models.ltchm.blocks import attention_block

    if "model" in entry:
        return create_model(entry["model"], **entry.get("kwargs", {}))
    return attention_block(entry["block"], entry.get("channels", 192), **entry.get("kwargs", {}))


def run(entries: Iterable[dict], root: Path | None = None) -> list[dict[str, Any]]:
    """Measure each fidelity entry (configs/papers.yaml `fidelity:`) and attach the claims."""
    root = root or project_root()
    claims = load_claims(root)
    rows = []
    torch.manual_seed(0)
    for e in entries:
        model = _build(e)
        shape = e.get("input", [1, 3, 256, 256])
        m = measure(model, torch.rand(*shape))
        row: dict[str, Any] = {"table": e["table"], "name": e["name"], "input": shape,
                               "config": e.get("kwargs", {}), **m}
        for q in ("params", "flops"):
            cid = e.get(f"claim_{q}")
            if not cid:
                continue
            paper, claim_id = cid.split(":", 1)
            if (paper, claim_id) not in claims:
                raise KeyError(f"configs/papers.yaml fidelity entry {e['name']!r}: no claim {cid!r} in claims/{paper}.yaml")
            c = claims[(paper, claim_id)]
            scale = 1e6 if c.get("unit") == "M" else 1e9 if c.get("unit") == "G" else 1.0
            paper_val = float(c["value"]) * scale
            row[f"paper_{q}"] = paper_val
            ours = {"params": ("params", "params_thop"), "flops": ("flops", "macs_thop")}[q]
            row[f"rel_diff_{q}"] = {k: (m[k] - paper_val) / paper_val for k in ours}
        rows.append(row)
    return rows


def _fmt(v: float | None, scale: float, suffix: str) -> str:
    return "" if v is None else f"{v / scale:.2f}{suffix}"


def markdown(rows: list[dict]) -> str:
    head = ("| paper table | model or module | input | params (all) | params (thop conv.) | paper params "
            "| FLOPs (FlopCounter) | MACs (thop conv.) | paper FLOPs | within 5% |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        ok = []
        for q in ("params", "flops"):
            d = r.get(f"rel_diff_{q}")
            if d:
                ok.append(f"{q}: " + ("yes" if min(abs(v) for v in d.values()) <= TOLERANCE else
                                      f"no ({min(d.values(), key=abs):+.0%})"))
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["table"], r["name"], "x".join(map(str, r["input"])), _fmt(r["params"], 1e6, "M"),
            _fmt(r["params_thop"], 1e6, "M"), _fmt(r.get("paper_params"), 1e6, "M"), _fmt(r["flops"], 1e9, "G"),
            _fmt(r["macs_thop"], 1e9, "G"), _fmt(r.get("paper_flops"), 1e9, "G"), "; ".join(ok)))
    return "\n".join(lines) + "\n"


def write(rows: list[dict], out_json: Path, out_md: Path) -> None:
    write_json(out_json, {"tolerance": TOLERANCE, "rows": rows})
    write_text(out_md, markdown(rows))
