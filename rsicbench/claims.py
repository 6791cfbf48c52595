"""The one reader of claims/<paper>.yaml: the numbers each paper reports (format: claims/README.md).

Every consumer (BD table, ablation, fidelity, readiness, the report) reads claims through
`read_claims` / `load_claims` / `all_claims`; a file that is not valid YAML or not in the
format raises one ValueError naming the file and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("id", "ref", "quantity", "subject", "value")


@dataclass(frozen=True)
class ClaimsFile:
    path: Path
    paper: str  # the paper's name as written in the file (`paper:`)
    claims: list[dict[str, Any]]  # as written, each with REQUIRED_KEYS, ids unique

    @property
    def stem(self) -> str:
        """The file's name without .yaml: how configs refer to the paper (e.g. `mgssnet`)."""
        return self.path.stem

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {str(c["id"]): c for c in self.claims}


def read_claims(path: str | os.PathLike) -> ClaimsFile:
    """One claims file, checked; FileNotFoundError / ValueError naming the file."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: claims file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})".replace("\n", " ")) from None
    if not isinstance(doc, dict) or "paper" not in doc or not isinstance(doc.get("claims"), list):
        raise ValueError(f"{path}: expected keys 'paper' and a list 'claims' (see claims/README.md)")
    seen: set[str] = set()
    for i, c in enumerate(doc["claims"]):
        if not isinstance(c, dict):
            raise ValueError(f"{path}: claim #{i} is not a mapping")
        missing = [k for k in REQUIRED_KEYS if k not in c]
        if missing:
            raise ValueError(f"{path}: claim #{i} ({c.get('id', '?')}) lacks {missing}")
        if str(c["id"]) in seen:
            raise ValueError(f"{path}: claim id {c['id']!r} appears twice")
        seen.add(str(c["id"]))
    return ClaimsFile(path, str(doc["paper"]), list(doc["claims"]))


def claims_dir(root: str | os.PathLike | None = None) -> Path:
    from rsicbench.paths import project_root

    return Path(root or project_root()) / "claims"


def load_claims(paper: str, root: str | os.PathLike | None = None) -> ClaimsFile:
    """claims/<paper>.yaml of the project at `root` (default: the project root)."""
    return read_claims(claims_dir(root) / f"{paper}.yaml")


def all_claims(folder: str | os.PathLike) -> dict[str, ClaimsFile]:
    """file stem -> its claims, for every claims/*.yaml in `folder` (empty if there is none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.stem: read_claims(p) for p in sorted(folder.glob("*.yaml"))}
