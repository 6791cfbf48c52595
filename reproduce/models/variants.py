"""Paper ablation variants as registered models: `<family>-<variant>`, e.g. `ltchm-dam`.

Importing this module registers every variant (the registry's table maps each variant name
to this module, read from the same config without importing torch: registry.py
`_paper_variant_names`).

The variant table is configuration (configs/papers.yaml `common.variants`): one row
`<family>-<variant>: builder keyword arguments (module switches)`, grouped by family here.
Each row becomes a registered model so that training (`create_model(<name>, **arch)`), the checkpoint (`model_name`) and the
learned codec (`create_codec(<name>, ...)`) all use the variant's own name, while the code
stays one builder per paper (an ablation is a params entry, not copied code).

Rules of the generated builder:
  * the variant's switches come first; `arch` (widths from configs/train.yaml) is merged on
    top, but it may NOT override a switch of the variant (that would silently train another
    variant under this name) -> ValueError;
  * width keys the family's model does not take (e.g. the profile-wide `M` for LTCHM,
    DMENet) are dropped, and `None` values mean "not set" (dropped as well).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any, Callable

#: family (the `<family>-` prefix of a configs/papers.yaml variants row) -> registered builder of that family
FAMILIES = {"ltchm": "ltchm", "mgss": "mgss", "mgss_factorized": "mgss_factorized", "dmenet": "dmenet"}


@lru_cache(maxsize=1)
def variant_table() -> dict[str, dict[str, dict]]:
    """configs/papers.yaml `common.variants` (profile-independent) as family -> variant -> switches
    (a seed control's `seed_offset` is a training setting, not a switch: left out here)."""
    from rsicbench.config import load_params, variant_switches, variants_by_family
    from rsicbench.paths import project_root

    path = project_root() / "configs" / "papers.yaml"
    flat = (load_params(path).get("common") or {}).get("variants")
    if not isinstance(flat, dict):
        raise ValueError(f"{path}: `common.variants` missing or not a mapping")
    table = variants_by_family(flat)
    for fam, rows in table.items():
        if fam not in FAMILIES:
            raise ValueError(f"{path}: unknown variant family {fam!r}; known: {', '.join(FAMILIES)}")
        if not isinstance(rows, dict) or not all(isinstance(v, dict) for v in rows.values()):
            raise ValueError(f"{path}: variants: each {fam}-<variant> row must be a keyword mapping")
    return {fam: {var: variant_switches(kw) for var, kw in rows.items()} for fam, rows in table.items()}


def variant_name(family: str, variant: str) -> str:
    return f"{family}-{variant}"


def variant_kwargs(name: str) -> tuple[str, dict]:
    """`<family>-<variant>` -> (registered family builder, the variant's switches)."""
    for fam, rows in variant_table().items():
        for var, kw in rows.items():
            if variant_name(fam, var) == name:
                return FAMILIES[fam], dict(kw)
    raise ValueError(f"{name!r} is not a paper variant (configs/papers.yaml variants)")


def _accepted(builder: Callable, cls: type | None) -> set[str] | None:
    params = inspect.signature(cls.__init__ if cls is not None else builder).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params) - {"self"}


def merge_kwargs(name: str, switches: dict, arch: dict, accepted: set[str] | None) -> dict:
    clash = {k for k in switches if k in arch and arch[k] is not None and arch[k] != switches[k]}
    if clash:
        raise ValueError(f"{name}: arch {({k: arch[k] for k in sorted(clash)})} overrides the variant's "
                         f"switches {({k: switches[k] for k in sorted(clash)})}; use another variant")
    from rsicbench.reproduce.models.registry import without_lacking_widths

    return without_lacking_widths({**switches, **{k: v for k, v in arch.items() if v is not None}}, accepted)


def register_family(family: str, builder: Callable[..., Any], model_cls: type | None = None) -> list[str]:
    """Register every variant of `family` (called at the end of the family's model module)."""
    from rsicbench.reproduce.models.registry import register_model

    accepted = _accepted(builder, model_cls)
    names = []
    for var, switches in sorted(variant_table().get(family, {}).items()):
        name = variant_name(family, var)

        def build(_n=name, _s=dict(switches), **arch: Any):
            return builder(**merge_kwargs(_n, _s, arch, accepted))

        build.__doc__ = f"{family} variant {var!r}: {switches} (configs/papers.yaml)"
        setattr(build, "arch_keys", accepted)  # what registry.model_arch checks (the family class's settings)
        register_model(name)(build)
        names.append(name)
    return names


def _register_all() -> None:
    from rsicbench.reproduce.models.dmenet.model import DMENet, build_dmenet
    from rsicbench.reproduce.models.ltchm.model import LTCHM, build_ltchm
    from rsicbench.reproduce.models.mgss.model import MGSSFactorized, MGSSNet, build_mgss, build_mgss_factorized

    register_family("ltchm", build_ltchm, LTCHM)
    register_family("mgss", build_mgss, MGSSNet)
    register_family("mgss_factorized", build_mgss_factorized, MGSSFactorized)
    register_family("dmenet", build_dmenet, DMENet)


_register_all()
