"""`rsicbench codecs [--json]`: every registered codec, its rate parameter and library version."""

from __future__ import annotations

import argparse
import json
import sys

from rsicbench.reproduce.codecs.base import CodecError, codec_factory, create_codec, list_codecs, mid_quality


def codec_info(name: str) -> dict:
    factory = codec_factory(name)
    rng = getattr(factory, "quality_range", None)
    info = {"codec": name, "quality_name": getattr(factory, "quality_name", "?"),
            "quality_range": list(rng) if rng else None,
            "higher_is_better": getattr(factory, "higher_is_better", None)}  # fmt: skip
    try:  # a learned codec may need a checkpoint to be built; report why not
        probe = create_codec(name, mid_quality(name) if rng else 1)
        info["version"] = probe.version
        info["settings"] = getattr(probe, "settings", probe.options)
    except (CodecError, FileNotFoundError, ValueError, TypeError) as e:
        info["version"] = f"unavailable: {e}"
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench codecs", description=__doc__)
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    infos = [codec_info(n) for n in list_codecs()]
    if args.json:
        print(json.dumps(infos, indent=2, sort_keys=True, default=str))
        return 0
    for i in infos:
        rng = i["quality_range"]
        direction = "" if i["higher_is_better"] is None else ("more bits up" if i["higher_is_better"] else "more bits down")
        print(f"{i['codec']:<14} {i['quality_name']:<8} {str(rng):<12} {direction:<15} {i['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
