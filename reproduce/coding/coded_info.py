"""Information content of exactly the symbols a learned codec's `compress` writes.

Why: a model's eval-mode `forward` is not always what its coder codes. CompressAI's
autoregressive models (mbt2018, Cheng2020 anchor/attn, MGSS) quantize y as round(y) in
`forward` (context and likelihoods), but `compress` codes round(y - means) with the context
of round(y - means) + means. An estimate from `forward` then measures other symbols, under
other scales and means, than the bitstream holds.

`measure(model, compress)` runs `compress()` with every entropy model of `model` observed
(instance attributes, removed afterwards; nothing global is patched) and returns, per entropy
model, the bits of the coded symbols under:
  * `model`: the model's own distribution (continuous scales with the model's scale and
    likelihood lower bounds, as `forward` computes likelihoods): the honest estimate;
  * `table`: the same Gaussian at the scale the coder uses (the scale table entry picked by
    `build_indexes`; GaussianConditional only): the scale table's cost is `table - model`;
  * `cdf`: the coder's own integer tables (compressai's 16-bit CDFs, out-of-range symbols
    as the escape symbol plus 4-bit bypass nibbles): `cdf - table` is the CDF precision and
    tail cost; the real string minus `cdf` is the rANS flush.
GMM (entropy.py) symbols: `model`, and as `cdf` the bits under the coder's own rows (the
mixture restricted to the string's symbol support, renormalized and quantized to 24 bits,
`rans.quantize_pmf`), so mass the model puts outside the coded support shows as a saving.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

BYPASS_BITS = 4  # compressai's rANS: escape values are coded in 4-bit bypass nibbles
MAX_BYPASS = (1 << BYPASS_BITS) - 1


@dataclass
class Bits:
    symbols: int = 0
    model: float = 0.0
    table: float = float("nan")
    cdf: float = float("nan")

    def add(self, n: int, model: float, table: float | None = None, cdf: float | None = None) -> None:
        self.symbols += n
        self.model += model
        if table is not None:
            self.table = table + (0.0 if math.isnan(self.table) else self.table)
        if cdf is not None:
            self.cdf = cdf + (0.0 if math.isnan(self.cdf) else self.cdf)


def _bits(p: torch.Tensor) -> float:
    return float((-torch.log2(p.double())).sum())


def cdf_bits(symbols: np.ndarray, indexes: np.ndarray, cdfs: np.ndarray, lengths: np.ndarray,
             offsets: np.ndarray, precision: int) -> float:
    """Bits of `symbols` under compressai's quantized CDFs, escape and bypass included
    (mirrors compressai's rans_interface.cpp `encode_with_indexes`)."""
    s = symbols.astype(np.int64).ravel()
    idx = indexes.astype(np.int64).ravel()
    v = s - offsets[idx]
    max_value = lengths[idx] - 2
    escaped = (v < 0) | (v >= max_value)
    raw = np.where(v < 0, -2 * v - 1, 2 * (v - max_value))
    v = np.where(escaped, max_value, v)
    freq = cdfs[idx, v + 1].astype(np.int64) - cdfs[idx, v]
    total = float(np.sum(precision - np.log2(freq)))
    raw = raw[escaped]
    if raw.size:
        n_nibbles = np.zeros_like(raw)
        while np.any(raw >> (n_nibbles * BYPASS_BITS)):
            n_nibbles += (raw >> (n_nibbles * BYPASS_BITS)) != 0
        total += float(np.sum(BYPASS_BITS * (n_nibbles // MAX_BYPASS + 1 + n_nibbles)))
    return total


class _Gaussian:
    """Observes one compressai GaussianConditional: scales from `build_indexes`, symbols from
    `quantize(..., "symbols")` (called in that order by every compressai compress path)."""

    def __init__(self, m, bits: Bits):
        self.m, self.bits, self.pending = m, bits, []
        self.build_indexes, self.quantize = m.build_indexes, m.quantize

    def on_build_indexes(self, scales):
        idx = self.build_indexes(scales)
        self.pending.append((scales.detach(), idx))
        return idx

    def on_quantize(self, inputs, mode, means=None):
        out = self.quantize(inputs, mode, means)
        if mode == "symbols":
            if not self.pending:
                raise RuntimeError("coded_info: symbols coded without build_indexes (unknown compress path)")
            scales, idx = self.pending.pop(0)
            if scales.shape != out.shape:
                raise RuntimeError(f"coded_info: scales {tuple(scales.shape)} vs symbols {tuple(out.shape)}")
            self._add(out, scales, idx)
        return out

    def _likelihood(self, sym, scales):
        p = self.m._likelihood(sym, scales)
        return self.m.likelihood_lower_bound(p) if self.m.use_likelihood_bound else p

    def _add(self, sym, scales, idx):
        m, symf = self.m, sym.double()
        table_scales = m.scale_table.double()[idx.long()]
        cdf = cdf_bits(sym.numpy(), idx.numpy(), m._quantized_cdf.numpy(), m._cdf_length.numpy(),
                       m._offset.numpy(), m.entropy_coder_precision)
        self.bits.add(sym.numel(), _bits(self._likelihood(symf, scales.double())),
                      _bits(self._likelihood(symf, table_scales)), cdf)


class _Bottleneck:
    """Observes one compressai EntropyBottleneck: symbols (and medians) from `quantize`."""

    def __init__(self, m, bits: Bits):
        self.m, self.bits, self.quantize = m, bits, m.quantize

    def on_quantize(self, inputs, mode, means=None):
        out = self.quantize(inputs, mode, means)
        if mode == "symbols":
            m = self.m
            c = out.size(1)
            y = (out.double() + means.double()).transpose(0, 1).reshape(c, 1, -1).float()
            p, _, _ = m._likelihood(y)
            if m.use_likelihood_bound:
                p = m.likelihood_lower_bound(p)
            idx = torch.arange(c).view(1, c, *([1] * (out.dim() - 2))).expand_as(out)
            cdf = cdf_bits(out.numpy(), idx.numpy(), m._quantized_cdf.numpy(), m._cdf_length.numpy(),
                           m._offset.numpy(), m.entropy_coder_precision)
            self.bits.add(out.numel(), _bits(p), None, cdf)
        return out


_gmm = threading.local()  # the GMM coder reports to the GMM observer of this thread


def report_gmm(symbols: np.ndarray, table: np.ndarray, rows: np.ndarray) -> None:
    """Called by the GMM coder (entropy.py) with each batch of coded symbols, their pmfs and
    the coder's integer CDF rows."""
    obs = getattr(_gmm, "observer", None)
    if obs is not None:
        obs(symbols, table, rows)


@contextmanager
def _observing(model):
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional

    from rsicbench.reproduce.coding import entropy, rans  # lazily: entropy.py reports to this module

    found: dict[str, Bits] = {}
    patched = []  # (module, {attribute: its own instance value before, or None})
    gmm_bound = None
    for name, m in model.named_modules():
        if isinstance(m, GaussianConditional):
            patched.append((m, {a: m.__dict__.get(a) for a in ("build_indexes", "quantize")}))
            obs = _Gaussian(m, found.setdefault(name, Bits()))
            m.build_indexes, m.quantize = obs.on_build_indexes, obs.on_quantize
        elif isinstance(m, EntropyBottleneck):
            patched.append((m, {"quantize": m.__dict__.get("quantize")}))
            obs_b = _Bottleneck(m, found.setdefault(name, Bits()))
            m.quantize = obs_b.on_quantize
        elif isinstance(m, entropy.GaussianMixtureConditional):
            if gmm_bound is not None:
                raise RuntimeError("coded_info: more than one GMM entropy model")
            gmm_bound, gmm_bits = m.likelihood_bound, found.setdefault(name, Bits())

    def on_gmm(symbols, table, rows):
        k = np.arange(len(symbols))
        p = table[k, symbols]
        freq = rows[k, symbols + 1] - rows[k, symbols]  # the coder's own probabilities
        gmm_bits.add(len(symbols), float(np.sum(-np.log2(np.maximum(p, gmm_bound)))), None,
                     float(np.sum(rans.PRECISION - np.log2(freq))))

    _gmm.observer = on_gmm if gmm_bound is not None else None
    try:
        yield found
    finally:
        _gmm.observer = None
        for m, before in patched:  # e.g. coding_tables' build_indexes stays installed
            for a, v in before.items():
                if v is None:
                    m.__dict__.pop(a, None)
                else:
                    m.__dict__[a] = v


def measure(model, compress) -> tuple[dict, dict[str, Bits]]:
    """Run `compress()` (a call of `model.compress`) observed: (its output, bits per entropy
    model, named by module path)."""
    with _observing(model) as found, torch.no_grad():
        out = compress()
    return out, found
