"""Paper variants in the pipeline: config -> model mapping, λ conventions, ablation table."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from rsicbench.config import ConfigError, seed_offset, settings, variant_switches, variants_by_family
from rsicbench.reproduce.papers.ablation import ablation_table
from rsicbench.reproduce.training.lambdas import to_compressai
from rsicbench.reproduce.models.registry import create_model, list_models
from rsicbench.reproduce.models.variants import merge_kwargs, variant_kwargs

SMALL = {"ltchm": dict(N=16, ep_hidden=32), "mgss": dict(N=16, M=16), "mgss_factorized": dict(N=16, M=16),
         "dmenet": dict(N=16)}


def _table():
    return variants_by_family(settings("papers", "default")["variants"])


def _all():
    return [(fam, var, kw) for fam, rows in sorted(_table().items()) for var, kw in sorted(rows.items())]


def _signature(net) -> list[tuple[str, str, tuple]]:
    return [(n, type(m).__name__, tuple(p.shape for p in m.parameters(recurse=False)))
            for n, m in net.named_modules()]


@pytest.mark.parametrize("fam,var,kw", _all(), ids=lambda v: v if isinstance(v, str) else "")
def test_variant_name_builds_exactly_the_configured_module_set(fam, var, kw):
    name = f"{fam}-{var}"
    assert name in list_models()
    assert variant_kwargs(name) == (fam, variant_switches(kw))  # a seed control's seed_offset is no switch
    import torch

    torch.manual_seed(0)
    a = create_model(name, **{"M": 48, **SMALL[fam]})  # a profile-wide M must be harmless
    torch.manual_seed(0)
    b = create_model(fam, **SMALL[fam], **variant_switches(kw))
    assert _signature(a) == _signature(b)


def test_a_variant_refuses_arch_that_changes_its_switches():
    with pytest.raises(ValueError, match="overrides the variant's switches"):
        create_model("ltchm-baseline", N=16, attention="dam")
    # None = "not set"; an unused profile-wide width (M) is dropped only for families without it
    assert merge_kwargs("x", {"a": 1}, {"N": 8, "M": 4, "k": None}, {"a", "N"}) == {"a": 1, "N": 8}


def test_switch_changes_only_the_named_modules():
    base = {n: t for n, t, _ in _signature(create_model("dmenet-baseline", N=16))}
    sdpm = {n: t for n, t, _ in _signature(create_model("dmenet-sdpm", N=16))}
    changed = {n for n in base.keys() | sdpm.keys() if base.get(n) != sdpm.get(n)}
    assert changed and all(n.startswith(("g_a.2", "g_s.2")) for n in changed), sorted(changed)


@pytest.mark.parametrize("profile", ["ci", "default", "paper"])
def test_every_variant_has_a_train_entry_with_paper_lambdas(profile):
    from rsicbench.reproduce.training.run_config import run_config

    cfg = settings("train", profile)
    for fam, var, _ in _all():
        spec = cfg["models"][f"{fam}-{var}"]
        conv = spec["lambda_convention"]
        tc = run_config(f"{fam}-{var}", "r2", cfg)
        assert tc.lam == pytest.approx(to_compressai(spec["lambdas"][2], conv))
        if fam == "ltchm":
            assert conv == "mse01" and spec["lambdas"] == [128, 256, 512, 1024, 2048, 4096]
        else:
            assert conv == "shi_penalty" and spec["lambdas"][0] == 0.66 and spec["lambdas"][-1] == 0.007


@pytest.mark.parametrize("profile", ["ci", "default", "paper"])
def test_every_variant_of_a_family_gets_its_baselines_budget(profile):
    """An ablation compares equally trained models: per rate, every variant resolves the same
    steps, schedule, crops, width and fine-tuning source as its family's baseline."""
    from dataclasses import asdict

    from rsicbench.reproduce.training.run_config import rate_tags, run_config

    cfg = settings("train", profile)
    budget = lambda m, t: {k: v for k, v in asdict(run_config(m, t, cfg)).items()  # noqa: E731
                           if k not in ("model", "init_digest")}
    for fam, var, kw in _all():
        name, base = f"{fam}-{var}", f"{fam}-baseline"
        assert rate_tags(name, "profile", cfg) == rate_tags(base, "profile", cfg)
        for t in rate_tags(base, "profile", cfg):
            mine, theirs = budget(name, t), budget(base, t)
            # a seed control: the same budget at params.yaml seed + its offset
            assert mine.pop("seed") == theirs.pop("seed") + seed_offset(kw), (profile, name, t)
            assert mine == theirs, (profile, name, t)


def test_every_family_has_a_seed_control_with_its_baselines_switches():
    for fam, rows in _table().items():
        controls = [v for v, kw in rows.items() if seed_offset(kw)]
        assert controls, fam
        for v in controls:
            assert variant_switches(rows[v]) == rows["baseline"], (fam, v)


@pytest.mark.parametrize("row,match", [
    ({"attention": "dam", "seed_offset": 1}, "must equal its family's baseline"),
    ({"attention": "none", "seed_offset": 0}, "integer >= 1"),
    ({"attention": "none", "seed_offset": True}, "integer >= 1"),
    ({"attention": "none", "seed_offset": "1"}, "integer >= 1"),
])
def test_a_bad_seed_control_row_is_refused_naming_it(row, match):
    with pytest.raises(ConfigError, match=f"ltchm-baseline_seed1.*{match}|{match}"):
        variants_by_family({"ltchm-baseline": {"attention": "none"}, "ltchm-baseline_seed1": row})
    with pytest.raises(ConfigError, match="ltchm-x"):
        variants_by_family({"ltchm-x": {"seed_offset": 1}})  # no baseline to be a control of


def test_default_dmenet_is_trained_at_the_measured_recipe():
    """docs/learned.md "Paper models at the baselines' budget": DMENet's first block is N/4 wide,
    so the default gives it N=64 (16 channels there; at N=32 it had 8); its highest-rate λ (0.211)
    fine-tunes from the 0.013 point, which trains first. Resolved here, and the built model's
    first convolution checked, so a silently ignored override would fail."""
    from rsicbench.reproduce.training.run_config import rate_tags, run_config

    cfg = settings("train", "default")
    assert rate_tags("dmenet-full", "profile", cfg) == ["r5", "r2"]
    r5, r2 = run_config("dmenet-full", "r5", cfg), run_config("dmenet-full", "r2", cfg)
    assert (r5.steps, r5.snapshot_at, r5.init_from) == (4000, 3000, "")
    assert (r2.steps, r2.init_from) == (1000, "r5")
    model = create_model("dmenet-full", **r5.arch)
    assert model.g_a[0][0].out_channels == 16


def test_default_mgss_trains_with_the_stage_skip_at_the_stable_lr():
    """docs/learned.md: with the stage skip, MGSS-Net's full model went NaN at lr 1e-3; the default
    trains every MGSS-Net variant at 3e-4 (the family's budget otherwise unchanged), and the
    built model has the skip (a silently ignored setting would fail here)."""
    from rsicbench.reproduce.models.mgss.blocks import StageTail
    from rsicbench.reproduce.training.run_config import run_config

    cfg = settings("train", "default")
    for short in variants_by_family(settings("papers", "default")["variants"])["mgss"]:
        variant = f"mgss-{short}"
        r2, r5 = run_config(variant, "r2", cfg), run_config(variant, "r5", cfg)
        assert (r2.lr, r5.lr, r2.steps, r5.steps, r5.init_from) == (3e-4, 3e-4, 1300, 650, "r2"), variant
    model = create_model("mgss-full", **run_config("mgss-full", "r2", cfg).arch)
    assert [m.skip for m in model.modules() if isinstance(m, StageTail)] == [True] * 7


def test_lambda_conventions():
    assert to_compressai(4096, "mse01") == pytest.approx(4096 / 255**2)
    assert to_compressai(0.013, "shi_penalty") == pytest.approx(0.013)  # = CompressAI q4's λ
    with pytest.raises(ValueError, match="unknown λ convention"):
        to_compressai(1, "nope")


# ------------------------------------------------------------------ ablation table on fixtures
def _write_point(root, model, q, bpp, psnr, n_ok=2):
    d = root / model / f"q{q}"
    d.mkdir(parents=True)
    (d / "per_image.csv").write_text("image,bpp,psnr\n")
    (d / "summary.json").write_text(json.dumps({
        "qtag": f"q{q}", "n_ok": n_ok, "mean": {"bpp": bpp, "psnr": psnr},
        "describe": {"arch": {"N": 8}, "lambda_compressai": 0.01}}))


def _claims(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text(yaml.safe_dump({"paper": "X", "claims": [
        {"id": "t4_dam", "ref": "Table 4", "quantity": "bd_rate_psnr", "subject": "ltchm:dam", "value": -4.233,
         "unit": "%"}]}))
    return p


def test_ablation_table_bd_against_the_family_baseline(tmp_path):
    rd = tmp_path / "rd"
    base = [(0.2, 28.0), (0.5, 31.0), (1.0, 34.0)]
    for q, (b, p) in enumerate(base):
        _write_point(rd, "ltchm-baseline", q, b, p)
        _write_point(rd, "ltchm-dam", q, 0.9 * b, p)  # same PSNR with 10% fewer bits
    _write_point(rd, "ltchm-full", 0, 0.5, 32.0)  # one point: BD impossible
    _write_point(rd, "ltchm-hpham_gca", 0, 0.3, 30.0)
    _write_point(rd, "ltchm-hpham_gca", 1, 0.6, 29.0)  # PSNR falls with rate: non-monotonic vs anchor
    variants = {"ltchm-baseline": {"attention": "none"}, "ltchm-dam": {"attention": "dam"}, "ltchm-full": {},
                "ltchm-hpham_gca": {"hpham": True}, "ltchm-hpham_nogca": {"gca": False}}
    t = ablation_table("ltchm", variants, rd, _claims(tmp_path), "default", with_params=False)
    rows = {r["variant"]: r for r in t["rows"]}
    assert t["rows"][0]["variant"] == "ltchm-baseline" and t["profile"] == "default"
    dam = rows["ltchm-dam"]
    assert dam["bd_rate_psnr"]["value"] == pytest.approx(-10.0, abs=1e-6) and dam["bd_rate_psnr"]["valid"]
    assert dam["bd_psnr"]["value"] > 0
    assert dam["modules"] == {"attention": "dam"} and dam["anchor"] == "ltchm-baseline"
    assert dam["paper_claims"][0]["value"] == -4.233 and dam["paper_claims"][0]["ref"] == "Table 4"
    full = rows["ltchm-full"]
    assert full["bd_rate_psnr"]["value"] is None and not full["bd_rate_psnr"]["valid"]
    assert any("1 rate points" in w for w in full["bd_rate_psnr"]["warnings"])
    hp = rows["ltchm-hpham_gca"]["bd_rate_psnr"]
    assert hp["value"] is None and any("direction" in w or "monotonic" in w for w in hp["warnings"])
    missing = rows["ltchm-hpham_nogca"]
    assert missing["bd_rate_psnr"]["value"] is None and "not evaluated" in missing["bd_rate_psnr"]["warnings"][0]
    json.dumps(t, allow_nan=False)  # strict JSON: no NaN sneaks into the file


def test_ablation_table_without_baseline_says_so(tmp_path):
    rd = tmp_path / "rd"
    _write_point(rd, "ltchm-dam", 0, 0.2, 28.0)
    _write_point(rd, "ltchm-dam", 1, 0.4, 30.0)
    t = ablation_table("ltchm", {"ltchm-baseline": {}, "ltchm-dam": {}}, rd, _claims(tmp_path), "ci",
                       with_params=False)
    dam = [r for r in t["rows"] if r["variant"] == "ltchm-dam"][0]
    assert dam["bd_rate_psnr"]["value"] is None and "ltchm-baseline" in dam["bd_rate_psnr"]["warnings"][0]


def test_ablation_table_bad_summary_names_the_file(tmp_path):
    rd = tmp_path / "rd" / "ltchm-baseline" / "q0"
    rd.mkdir(parents=True)
    (rd / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="summary.json"):
        ablation_table("ltchm", {"ltchm-baseline": {}}, tmp_path / "rd", _claims(tmp_path), "ci",
                       with_params=False)
    assert not math.isnan(0.0)


def test_ltchm_paper_profile_channels_follow_lambda():
    """LTCHM Fig. 1: C = 192 for λ in {128, 256, 512}, 256 above (arch_per_rate)."""
    from rsicbench.reproduce.training.run_config import run_config

    cfg = settings("train", "paper")
    widths = [run_config("ltchm-full", f"r{i}", cfg).arch["N"] for i in range(6)]
    assert widths == [192, 192, 192, 256, 256, 256]
    bad = {"models": {"m": {"lambdas": [1, 2], "arch_per_rate": [{"N": 8}]}}}
    with pytest.raises(ValueError, match="arch_per_rate must list one arch mapping per λ"):
        run_config("m", "r0", bad)


def test_evalset_by_classes_or_the_eval_images(tmp_path, monkeypatch):
    """eval_set images: classes -> the first test image of each of the first N classes;
    images: eval -> exactly the samples given (the subset every other codec is evaluated on)."""
    import json as _json

    import numpy as _np

    from rsicbench.imageio import write_png
    from rsicbench.reproduce.papers import evalset as ev
    from rsicbench.results import Sample

    split = []
    for c in ("beach", "forest", "river"):
        for i in range(3):
            path = tmp_path / "src" / c / f"{c}{i}.png"
            write_png(path, _np.full((8, 8, 3), 10 * i, dtype=_np.uint8))
            split.append(Sample(path, f"{c}/{c}{i}.png", c))
    monkeypatch.setattr("rsicbench.datasets.load_split", lambda ds, part: list(split))
    assert ev.build_evalset("toy", 2, tmp_path / "a" / "evalset") == ["beach/beach0.png", "forest/forest0.png"]
    chosen = [s for s in split if s.relpath.endswith(("0.png", "1.png"))]  # e.g. per_class 2
    got = ev.build_evalset("toy", 0, tmp_path / "b" / "evalset", same_as=chosen)
    assert got == sorted(s.relpath for s in chosen) and len(got) == 6
    assert (tmp_path / "b" / "evalset" / "river" / "river1.png").read_bytes() == \
        (tmp_path / "src" / "river" / "river1.png").read_bytes()
    assert _json.loads((tmp_path / "b" / "evalset.json").read_text())["rule"] == "eval"
