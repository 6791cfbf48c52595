"""Speed of container format 4's coder (reproduce/coding/rans.py, one Python rANS stream per
image) against compressai's own C++ rANS, in the same process on the same images.

Per codec: CPU seconds per image of
  ours        `codec.encode` / `codec.decode` (session coders, one stream, container)
  compressai  the model's compressai `compress` / `decompress` with compressai's coder (one
              string per entropy model; no container): the reference
and their ratio, plus the share of our time spent inside rans.py (cProfile). GMM models
(cheng2020-gmm, LTCHM) have no compressai coder: ours only. Process CPU time with 1 torch
thread, alternating ours/reference per image so a load change hits both.

    python benchmarks/bench_coder.py bmshj2018-hyperprior=results/train/bmshj2018-hyperprior/r1/best.pt \
        mbt2018=...  --images 8        # -> results/bench/coder_speed.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

_CODER_ENTRIES = ("finish", "table_symbols", "row_symbols")  # top-level rans.py calls (no double count)


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _coder_share(fn) -> tuple[float, float]:
    pr = cProfile.Profile()
    t = time.process_time()
    pr.enable()
    fn()
    pr.disable()
    total = time.process_time() - t
    st = pstats.Stats(pr)
    coder = sum(v[3] for k, v in st.stats.items()  # type: ignore[attr-defined]
                if k[0].endswith("coding/rans.py") and k[2] in _CODER_ENTRIES)
    return coder, total


def bench(name: str, ckpt: str, images: list) -> dict:
    import torch

    from rsicbench.reproduce.codecs.base import create_codec
    from rsicbench.reproduce.coding import learned_stream

    opts = {"roi_provider": "full"} if name.startswith("mroi") else {}
    codec = create_codec(name, 0, checkpoint=ckpt, threads=1, **opts)
    learned_stream.layout(codec)
    model = codec.model
    has_ref = not hasattr(model, "gmm")
    ours_e = ours_d = ref_e = ref_d = 0.0
    n_bytes = 0
    for img in images:
        data = codec.encode(img)  # warm caches for this size
        n_bytes += len(data)
        ours_e += _cpu(lambda: codec.encode(img))
        ours_d += _cpu(lambda: codec.decode(data))
        if has_ref:
            x, _, _ = codec._to_tensor(img)
            kw = {"roi": torch.ones(1, 1, *x.shape[-2:])} if codec.needs_roi else {}
            with torch.no_grad():
                out = model.compress(x, **kw)  # no session: compressai's coder
                ref_e += _cpu(lambda: model.compress(x, **kw))
                ref_d += _cpu(lambda: model.decompress(out["strings"], out["shape"]))
    n = len(images)
    share_e = _coder_share(lambda: [codec.encode(im) for im in images])
    datas = [codec.encode(im) for im in images]
    share_d = _coder_share(lambda: [codec.decode(d) for d in datas])
    row = {"codec": name, "checkpoint": ckpt, "images": n, "bpp": round(8 * n_bytes / sum(im.shape[0] * im.shape[1] for im in images), 4),
           "ours_encode_s": round(ours_e / n, 4), "ours_decode_s": round(ours_d / n, 4),
           "rans_share_encode_pct": round(100 * share_e[0] / share_e[1], 1),
           "rans_share_decode_pct": round(100 * share_d[0] / share_d[1], 1)}
    if has_ref:
        row.update(compressai_encode_s=round(ref_e / n, 4), compressai_decode_s=round(ref_d / n, 4),
                   encode_ratio=round(ours_e / ref_e, 3), decode_ratio=round(ours_d / ref_d, 3))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("codecs", nargs="+", help="name=checkpoint")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("results/bench/coder_speed.json"))
    a = ap.parse_args(argv)

    from _common import pin_threads

    pin_threads(1)
    from rsicbench.fsutil import write_text
    from rsicbench.imageio import read_rgb
    from rsicbench.paths import shared_path
    from rsicbench.reproduce.evaluation import engine

    samples = engine.subset(engine.samples_from_folder(shared_path("datasets", "ucmerced")), per_class=1, max_images=a.images)
    images = [read_rgb(s.path) for s in samples]
    rows = []
    for spec in a.codecs:
        name, ckpt = spec.split("=", 1)
        rows.append(bench(name, ckpt, images))
        print(json.dumps(rows[-1]), flush=True)
    write_text(a.out, json.dumps({"rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
