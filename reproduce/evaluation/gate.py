"""CI drift gate: `rsicbench gate --baseline .ci/baseline.json --current FILE [FILE ...]`.

Flattens each metrics JSON (dicts by key, lists of RD summaries by their `qtag`, other
lists by index) and each per_image.csv (rows by image) to `file:path.to.leaf -> number`,
compares with the committed baseline, and
exits 1 with a table of every value outside its tolerance, every baseline key now missing
and (with --strict) every new key. Tolerances come from configs/eval.yaml `gate:`: ordered
glob patterns over the flattened key, each with `abs` and/or `rel` (and a `kind` name for
the count by kind it prints, and optionally `codecs: learned|classical`: the rule applies only
to keys naming such a codec, see CodecNames); a value passes when
|current - baseline| <= abs + rel * |baseline|. Patterns listed under `ignore` (timings,
which depend on the machine) are never compared.

Refresh the baseline after an intended change:
  rsicbench gate --baseline .ci/baseline.json --current <files> --update
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsicbench.fsutil import read_json, write_json

DEFAULT_TOL = {"abs": 1e-9, "rel": 1e-6}


def flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON value by dotted path (bools and strings are not metrics). A list
    element is named by its `qtag` (RD points) or `variant` (ablation rows) when it has one, so
    adding a row does not rename every row after it; else by its index."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k in sorted(obj):
            out.update(flatten(obj[k], f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            name = next((v[k] for k in ("qtag", "variant") if isinstance(v, dict) and isinstance(v.get(k), str)), None)
            tag = name if name is not None else str(i)
            out.update(flatten(v, f"{prefix}[{tag}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def per_image_values(path: str | Path) -> dict[str, float]:
    """A per_image.csv as `[image].column -> number`; an empty cell (metric not defined, e.g.
    lpips off) is left out like a JSON null, and a failed image has no values, so it shows
    as MISSING against a baseline where it succeeded."""
    from rsicbench.results import read_per_image

    return {f"[{row['image']}].{col}": float(v) for row in read_per_image(path).rows
            for col, v in row.items() if col not in ("image", "error") and not math.isnan(v)}


def collect(files: list[str]) -> dict[str, float]:
    """Every gated value of the files: JSON (flatten) or per-image CSV (per_image_values)."""
    values: dict[str, float] = {}
    for f in files:
        flat = per_image_values(f) if f.endswith(".csv") else flatten(read_json(f))
        for k, v in flat.items():
            values[f"{Path(f).as_posix()}:{k}"] = v
    return values


@dataclass(frozen=True)
class CodecNames:
    """Which codec names are classical and which learned: a rule with `codecs: learned` (or
    `classical`) applies only to keys that name such a codec as one of their path/key tokens
    (results/rd/<ds>/<codec>/..., downstream/<ds>/<codec>/..., codecs.<codec>.... in a JSON)."""
    classical: frozenset[str] = frozenset()
    learned: frozenset[str] = frozenset()

    def kind_of(self, key: str) -> str | None:
        tokens = set(_TOKENS.split(key))
        if tokens & self.learned:
            return "learned"
        return "classical" if tokens & self.classical else None


_TOKENS = re.compile(r"[/.:\[\]]")


def _rule_for(key: str, rules: list[dict[str, Any]], names: CodecNames | None) -> dict[str, Any] | None:
    """The first rule whose glob matches `key` (and whose `codecs:` class, if any, is the key's)."""
    kind = names.kind_of(key) if names else None
    for rule in rules:
        if "codecs" in rule and rule["codecs"] != kind:
            continue
        if fnmatch.fnmatchcase(key, rule["match"]):
            return rule
    return None


def tolerance_for(key: str, rules: list[dict[str, Any]], names: CodecNames | None = None) -> dict[str, float]:
    rule = _rule_for(key, rules, names)
    if rule is not None:
        return {"abs": float(rule.get("abs", 0.0)), "rel": float(rule.get("rel", 0.0))}
    return dict(DEFAULT_TOL)


def codec_names(classical: list[str]) -> CodecNames:
    """Classical = configs/eval.yaml `codecs`; learned = every other registered codec (the
    external `ext-*` tools aside)."""
    from rsicbench.reproduce.codecs.base import list_codecs

    learned = {n for n in list_codecs() if n not in classical and not n.startswith("ext-")}
    return CodecNames(frozenset(classical), frozenset(learned))


def counts_by_kind(keys: list[str], rules: list[dict[str, Any]], names: CodecNames | None = None) -> dict[str, int]:
    """How many values each tolerance rule governs, by the rule's `kind` (else its pattern)."""
    counts: dict[str, int] = {}
    for key in keys:
        rule = _rule_for(key, rules, names)
        kind = "default" if rule is None else str(rule.get("kind", rule["match"]))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def compare(
    baseline: dict[str, float], current: dict[str, float], rules: list[dict[str, Any]],
    ignore: list[str] = (), strict: bool = False, names: CodecNames | None = None,
) -> tuple[list[dict[str, Any]], bool]:  # fmt: skip
    """Rows for every key that drifted, is missing or is new; and whether the gate passes."""
    rows, ok = [], True
    ignored = lambda k: any(fnmatch.fnmatchcase(k, p) for p in ignore)  # noqa: E731
    for key in sorted(set(baseline) | set(current)):
        if ignored(key):
            continue
        b, c = baseline.get(key), current.get(key)
        if b is None:
            rows.append({"key": key, "baseline": None, "current": c, "status": "NEW"})
            ok = ok and not strict
            continue
        if c is None:
            rows.append({"key": key, "baseline": b, "current": None, "status": "MISSING"})
            ok = False
            continue
        tol = tolerance_for(key, rules, names)
        limit = tol["abs"] + tol["rel"] * abs(b)
        both_nan = math.isnan(b) and math.isnan(c)
        diff = abs(c - b)
        if not both_nan and not (diff <= limit):  # NaN on one side fails too
            rows.append({"key": key, "baseline": b, "current": c, "diff": c - b, "limit": limit, "status": "DRIFT"})
            ok = False
    return rows, ok


def render(rows: list[dict[str, Any]]) -> str:
    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.6g}"

    head = ["status", "key", "baseline", "current", "diff", "allowed"]
    body = [[r["status"], r["key"], num(r.get("baseline")), num(r.get("current")), num(r.get("diff")), num(r.get("limit"))] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def _gate_settings(profile: str | None) -> dict[str, Any]:
    from rsicbench.config import settings

    return settings("eval", profile).get("gate", {}) or {}


def _load_gate_cfg(args: argparse.Namespace) -> dict[str, Any]:
    if not args.tolerances:
        return _gate_settings(args.profile)
    if not Path(args.tolerances).is_file():
        raise FileNotFoundError(f"--tolerances {args.tolerances}: file not found")
    from rsicbench.config import load_params

    return load_params(args.tolerances).get("gate") or {}  # names the file if it is not YAML


def expand_files(patterns: list[str]) -> list[str]:
    """configs/eval.yaml gate.files: globs (relative to the project folder; `**` recursive) of
    every producer's outputs. One that matches nothing is an error: its stage did not run."""
    import glob

    if not patterns:
        raise ValueError("gate: no --current files and no gate.files in the settings")
    files: list[str] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern, recursive=True))
        if not found:
            raise FileNotFoundError(f"gate.files: {pattern!r} matched no file (did its stage run?)")
        files += [f for f in found if f not in files]
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rsicbench gate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="committed baseline JSON (.ci/baseline.json)")
    ap.add_argument("--current", nargs="+", help="metrics JSON / per_image.csv files of this run "
                    "(default: configs/eval.yaml gate.files, the outputs of every producer)")
    ap.add_argument("--tolerances", help="YAML/JSON file with a `gate:` block (default: configs/eval.yaml)")
    ap.add_argument("--profile", help="profile whose gate settings apply")
    ap.add_argument("--strict", action="store_true", help="new keys fail too")
    ap.add_argument("--update", action="store_true", help="write the current values as the new baseline")
    args = ap.parse_args(argv)

    cfg = _load_gate_cfg(args)
    if not args.current:
        args.current = expand_files(cfg.get("files") or [])
    if not args.update and not Path(args.baseline).is_file():
        raise FileNotFoundError(f"--baseline {args.baseline}: file not found; create it with "
                        f"`rsicbench gate --baseline {args.baseline} --current <files> --update`")
    missing = [f for f in args.current if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"--current: {', '.join(missing)}: file not found")
    current = collect(args.current)
    if args.update:
        write_json(args.baseline, {"files": sorted(Path(f).as_posix() for f in args.current), "values": current})
        print(f"gate: baseline {args.baseline} updated with {len(current)} values from {len(args.current)} file(s)")
        return 0
    base = read_json(args.baseline)
    if not isinstance(base, dict) or "values" not in base:
        print(f"gate: {args.baseline}: not a baseline file (no 'values'); make one with --update", file=sys.stderr)
        return 2
    from rsicbench.config import settings

    names = codec_names(list(settings("eval", args.profile).get("codecs", [])))
    rows, ok = compare(base["values"], current, cfg.get("tolerances", []), cfg.get("ignore", []), args.strict, names)
    checked_keys = [k for k in base["values"] if not any(fnmatch.fnmatchcase(k, p) for p in cfg.get("ignore", []))]
    checked = len(checked_keys)
    if rows:
        print(render(rows))
    kinds = counts_by_kind(checked_keys, cfg.get("tolerances", []), names)
    print("gate: values by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    verdict = "PASS" if ok else "FAIL"
    n_drift = sum(r["status"] == "DRIFT" for r in rows)
    n_missing = sum(r["status"] == "MISSING" for r in rows)
    n_new = sum(r["status"] == "NEW" for r in rows)
    print(f"gate: {verdict}: {checked} baseline values checked; {n_drift} drifted, {n_missing} missing, {n_new} new")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
