"""Complexity of a learned model, shared by every model in the registry.

* params: total, and per named top-level module (g_a, h_s, entropy_bottleneck, ...).
* FLOPs: torch.utils.flop_counter.FlopCounterMode over one eval forward at 1x3x256x256
  (counts matmul/conv FLOPs as 2·MAC; elementwise ops such as GDN's square are not counted).
* time: encode and decode of a 256x256 input with REAL entropy coding (model.compress /
  decompress after update(force=True)), median of `repeats`, torch threads fixed.
* memory: peak Python-heap bytes during encode+decode by tracemalloc (torch's CPU tensor
  storage is NOT traced by tracemalloc), plus the process ru_maxrss delta (KiB on Linux,
  includes tensors), plus torch.cuda.max_memory_allocated when on CUDA.
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc

import torch


def param_counts(model: torch.nn.Module) -> dict:
    per = {name: sum(p.numel() for p in mod.parameters()) for name, mod in model.named_children()}
    return {"total": sum(p.numel() for p in model.parameters()), "per_module": per}


def flops(model: torch.nn.Module, size: int = 256) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.eval()(x)
    return int(fc.get_total_flops())


def timing(model: torch.nn.Module, size: int = 256, repeats: int = 3, device: str = "cpu") -> dict:
    model = model.to(device).eval()
    model.update(force=True)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    enc, dec = [], []
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            out = model.compress(x)
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.decompress(out["strings"], out["shape"])
            dec.append(time.perf_counter() - t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nbytes = sum(len(s) for group in out["strings"] for s in group)
    res = {"encode_s": statistics.median(enc), "decode_s": statistics.median(dec), "repeats": repeats,
           "bytes": nbytes, "bpp": 8 * nbytes / (size * size),
           "peak_python_heap_bytes": peak,
           "ru_maxrss_delta_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0}
    if device.startswith("cuda"):
        res["cuda_max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
    return res


def measure(model: torch.nn.Module, size: int = 256, repeats: int = 3, device: str = "cpu") -> dict:
    return {"params": param_counts(model), "flops": flops(model, size), "input": [1, 3, size, size],
            "timing": timing(model, size, repeats, device), "torch_threads": torch.get_num_threads(),
            "memory_note": "peak_python_heap_bytes: tracemalloc (Python heap only); "
                           "ru_maxrss_delta_kib: process peak RSS growth (includes tensors)"}
