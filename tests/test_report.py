"""The HTML report: sections from a fixture tree written by the producers' own code
(tests/report_fixtures.py), honest 'not produced' text, no external URLs, determinism,
verdicts, bad-input errors, the CLI and the DVC side files."""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import pytest

from rsicbench.config import settings
from rsicbench.reports.build import build_report
from report_fixtures import PAPER_POINTS, make_tree

ROOT = Path(__file__).resolve().parents[1]
SECTION_IDS = ["datasets", "rd", "bd", "ablation", "complexity", "readiness", "downstream", "roi", "claims", "viewer", "provenance"]


def _cfg(profile: str = "default") -> dict:
    cfg = copy.deepcopy(settings("report", profile, ROOT))
    cfg["viewer_target_bpp"] = 2.0  # 64x64 JPEGs carry ~1.2 bpp of header
    return cfg


def _build(root: Path, out: Path, profile: str = "default", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_report(root, root / "results", root / "data", root / "claims", out, profile, _cfg(profile), **kw)


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}".*?</section>', page, re.S)
    assert m, f"section {sid} missing"
    return m.group(0)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    facts = make_tree(root)
    return root, facts


@pytest.fixture(scope="module")
def built(tree):
    root, facts = tree
    out = root / "report" / "index.html"
    done = _build(root, out)
    return root, facts, out, out.read_text(encoding="utf-8"), done


def _rows(sec: str) -> dict[str, str]:
    """First cell text -> the whole row, for every table row of a section."""
    return {re.sub(r"<[^>]+>", "", m.group(1)).strip(): m.group(0)
            for m in re.finditer(r"<tr><td>(.*?)</td>.*?</tr>", sec, re.S)}


def test_every_section_renders_from_fixture(built):
    root, facts, out, page, done = built
    assert [s.id for s in done] == SECTION_IDS
    assert all(s.produced for s in done), [s.id for s in done if not s.produced]
    assert "Not produced by this run" not in _section(page, "rd")
    rd = _section(page, "rd")
    assert rd.count("<svg") == 2 and all(c in rd for c in facts["codecs"])  # ucmerced + ucmerced-papers
    # the failed image is reported, and excluded from the point's count
    assert "decoder crashed" not in rd and "agricultural/agricultural00.png" in rd
    assert "data:image/png;base64," in _section(page, "viewer")
    roi = _section(page, "roi")
    assert "ROI-PSNR" in roi and "33.750" in roi and "38cloud.iou" in roi and "0.812" in roi
    assert "<td>12</td>" in _section(page, "datasets")
    assert "profile: default" in rd


def test_bd_table_has_every_measured_codec(built):
    root, facts, out, page, done = built
    rows = _rows(_section(page, "bd"))
    codecs = facts["bd"]["codecs"]
    ltchm = codecs["ltchm"]["bd_rate_psnr"]
    assert f"{ltchm['value']:.2f}" in rows["ltchm"] and f"{ltchm['ci_low']:.2f}" in rows["ltchm"]  # value and CI from the file
    assert set(rows) == set(facts["codecs"])  # every codec under results/rd/ucmerced/, anchor included
    assert "anchor" in rows["jpeg2000"]
    # refused by the BD stage: no number, its reason shown
    assert codecs["mbt2018"]["bd_rate_psnr"]["value"] is None
    assert "1 rate points" in rows["mbt2018"] and "pchip needs at least 2" in rows["mbt2018"]
    assert "not in results/bd/ucmerced.json" in rows["webp"]  # measured after the BD stage ran


def test_ablation_has_a_row_per_paper_variant(built):
    root, facts, out, page, done = built
    sec = _section(page, "ablation")
    rows = _rows(sec)
    names = set(facts["variants"])
    assert len(names) == 32 and names <= set(rows)  # 28 module variants + a seed control per family
    table = {r["variant"]: r for r in facts["ablation"]["rows"]}
    dam = table["ltchm-dam"]["bd_rate_psnr"]["value"]
    assert f"{dam:.2f}" in rows["ltchm-dam"] and "-4.233" in rows["ltchm-dam"]  # ours beside the paper's
    assert "baseline (anchor)" in rows["ltchm-baseline"]
    gap = facts["ablation"]["seed_gap"]["ltchm"]["value"]
    assert "seed control" in rows["ltchm-baseline_seed1"] and f"seed gap ±{gap:.2f} %" in sec
    assert "mgss: no seed gap" not in sec  # mgss has no ablation file in the fixture: its table says "not run"
    assert "BD refused" in rows["ltchm-full"] and "1 rate points" in rows["ltchm-full"]
    assert "not evaluated" in rows["ltchm-att_sam"]
    for name in names:
        if not name.startswith("ltchm-"):  # no results/ablation/{mgss,dmenet}.json in the fixture
            assert "not run" in rows[name], name
    assert "results/ablation/mgss.json" in sec and "results/ablation/dmenet.json" in sec
    assert set(PAPER_POINTS) <= {n for n, r in table.items() if r["rd_points"]}


def test_complexity_and_fidelity(built):
    root, facts, out, page, done = built
    sec = _section(page, "complexity")
    rows = _rows(sec)
    cx = json.loads((root / "results" / "complexity" / "bmshj2018-hyperprior.json").read_text())
    row = rows["bmshj2018-hyperprior"]
    for key in ("params.total", "flops", "timing.encode_s", "timing.decode_s", "timing.ru_maxrss_delta_kib"):
        assert key in row, key
    assert f"{cx['params']['total']:,}".replace(",", "\u202f") in row
    wam = facts["fidelity"][0]
    assert f"{wam['params']:,}".replace(",", "\u202f") in rows["LTCHM Table 5"]
    # architecture counts at the papers' configuration get a verdict at any profile
    assert ">reproduced<" in rows["LTCHM"] or ">reproduced<" in sec
    assert "not reproduced" in sec  # the WAM FLOPs: measured on a smaller input in the fixture


def test_downstream_oa_at_targets_and_confusions(built):
    root, facts, out, page, done = built
    sec = _section(page, "downstream")
    rows = _rows(sec)
    summ = facts["downstream"]
    assert set(facts["codecs"]) <= set(rows) and "original (no compression), whole test split" in rows
    clean = summ["clean"]  # the clean row on the codecs' own images, beside them
    coded = rows["original (no compression), the codecs' images"]
    assert f"{clean['oa_coded_images']:.2f}" in coded and f"{clean['n_coded_images']} images" in coded
    for codec, d in summ["codecs"].items():
        for t, at in d["at_target"].items():
            assert f"({at['method']})" in rows[codec], (codec, t)
    assert "(matched)" in rows["jpeg"] and "(interpolated)" in rows["ltchm"] and "(nearest)" in rows["mbt2018"]
    # one heatmap for the clean test set + one or two per codec (a point standing for both targets is shown once)
    n = sec.count('<table class="hm">')
    assert 1 + len(summ["codecs"]) <= n <= 1 + 2 * len(summ["codecs"]) and "jpeg</b> bpp0.81" in sec
    assert 'alt="OA vs bpp, ucmerced"' in sec and "data:image/png;base64," in sec
    train = json.loads((root / "results" / "classifier" / "ucmerced" / "train.json").read_text())
    assert "efficientnet_lite0" in sec and f"{train['clean_test_oa']:.2f}" in sec


def test_banner_and_verdicts_at_default_profile(built):
    page = built[3]
    assert 'id="profile-banner"' in page and "not comparable to the papers" in page
    claims = _section(page, "claims")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td><code>([^<]+)</code>.*?</tr>", claims, re.S)}
    for cid in ("t3_bd_ucm", "t3_bd_far", "t5_ablation_dam", "t4_params"):
        assert "not comparable at this profile" in rows[cid] and "profile default ≠ paper" in rows[cid], cid
    # no mapping to anything we measure: "—" for ours
    for cid in ("hyper_psi", "oa_gain_nwpu", "t6_params_minnen", "t3_bd_nwpu"):
        assert "<td>—</td>" in rows[cid] and "not measured" in rows[cid], cid
    # measured, but on another dataset than the paper's
    assert "paper on dota, ours on ucmerced-papers" in rows["table4_bdrate_dota_dam"]
    # architecture counts (results/fidelity.json) are profile-independent
    assert ">reproduced<" in rows["table5_params_wam"] and ">not reproduced<" in rows["table5_flops_wam"]


def test_verdicts_at_paper_profile(tree, tmp_path):
    root, facts = tree
    out = tmp_path / "index.html"
    _build(root, out, profile="paper")
    page = out.read_text(encoding="utf-8")
    assert 'id="profile-banner"' not in page
    claims = _section(page, "claims")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td><code>([^<]+)</code>.*?</tr>", claims, re.S)}
    assert ">reproduced<" in rows["t3_bd_ucm"]  # claimed = ours + 1.0 pp, tolerance 3 pp
    assert ">not reproduced<" in rows["t3_bd_far"]  # claimed = ours + 5 dB
    assert ">reproduced<" in rows["t4_params"]  # claimed = ours x 1.02, 5 % tolerance
    assert "not comparable at this profile" in rows["t3_bd_nwpu"] and "not measured" in rows["t3_bd_nwpu"]
    assert "computed by the report" in rows["t5_ablation_dam"]  # variant vs its baseline, from our RD means
    assert "not comparable at this profile" in rows["table4_bdrate_dota_dam"]  # other dataset, even at paper
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["claims"]["reproduced"] == claims.count(">reproduced<") >= 3 and metrics["profile"] == "paper"


def test_missing_inputs_say_not_produced(tmp_path):
    out = tmp_path / "report" / "index.html"
    done = _build(tmp_path, out)
    page = out.read_text(encoding="utf-8")
    assert [s.id for s in done if s.produced] == ["provenance"]
    sections = json.loads((out.parent / "metrics.json").read_text())["sections"]
    assert sections == {"produced": 1, "total": len(SECTION_IDS)}  # numbers: the CI gate sees a drop
    for sid in SECTION_IDS[:-1]:
        sec = _section(page, sid)
        assert "Not produced by this run" in sec, sid
        assert "<svg" not in sec and "data:image" not in sec, sid  # no plot
        if sid == "ablation":  # every configured variant still has its row, saying it has not run
            rows = _rows(sec)
            n_variants = len(settings("papers", "default")["variants"])  # 28 module variants + 4 seed controls
            assert len(rows) == n_variants == 32
            assert all("not run" in r and not re.search(r"<td>-?\d", r) for r in rows.values())
        else:
            assert "<td>" not in sec, sid  # no table of numbers
    assert (tmp_path / "report" / "rd_points.csv").read_text().strip().count("\n") == 0  # header only


def test_no_external_urls(built):
    page = built[3]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "url(http" not in page and "@import" not in page and "<script src" not in page


def test_deterministic_apart_from_timestamp(built, tmp_path):
    root, _, a, _, _ = built
    b = tmp_path / "b" / "index.html"
    _build(root, b)
    strip = lambda p: re.sub(r'<p id="built-at">[^<]*</p>', "", p.read_text(encoding="utf-8"))  # noqa: E731
    assert a.read_text(encoding="utf-8").count('<p id="built-at">') == 1
    assert strip(a) == strip(b)
    assert (a.parent / "rd_points.csv").read_bytes() == (b.parent / "rd_points.csv").read_bytes()
    assert (a.parent / "metrics.json").read_bytes() == (b.parent / "metrics.json").read_bytes()


def test_dvc_side_files(built):
    root, facts, out, page, done = built
    lines = (out.parent / "rd_points.csv").read_text().splitlines()
    assert lines[0] == "dataset,codec,qtag,n,bpp,psnr,msssim_db,lpips,vifp,roi_psnr"
    points = list((root / "results" / "rd").glob("*/*/*/per_image.csv"))
    assert len(lines) == 1 + len(points) and len(points) > 4 * len(facts["codecs"])
    jpeg_q10 = next(ln for ln in lines if ln.startswith("ucmerced,jpeg,q10,"))
    assert jpeg_q10.split(",")[3] == str(len(facts["test"]) - 1)  # the failed image is not counted
    m = json.loads((out.parent / "metrics.json").read_text())
    got = m["bd_vs_jpeg2000"]["ucmerced"]["ltchm"]["bd_rate_psnr"]
    assert got == pytest.approx(facts["bd"]["codecs"]["ltchm"]["bd_rate_psnr"]["value"], abs=1e-5)
    assert m["oa_at_target"]["ucmerced"]["jpeg"]["0.70"] == pytest.approx(
        facts["downstream"]["codecs"]["jpeg"]["at_target"]["0.70"]["oa"])
    assert m["ablation_bd_rate_psnr"]["ltchm"]["ltchm-dam"] == pytest.approx(
        next(r for r in facts["ablation"]["rows"] if r["variant"] == "ltchm-dam")["bd_rate_psnr"]["value"])
    assert out.stat().st_size < 1_500_000  # self-contained but not bloated


def test_bad_inputs_name_the_file(tmp_path):
    bad_csv = tmp_path / "results" / "rd" / "ucmerced" / "jpeg" / "q30" / "per_image.csv"
    bad_csv.parent.mkdir(parents=True)
    bad_csv.write_text("image,bpp\nx.png,0.5\n")
    with pytest.raises(ValueError, match=r"per_image\.csv: missing columns"):
        _build(tmp_path, tmp_path / "o.html")
    bad_csv.unlink()
    for rel, text, match in (
        ("ablation/ltchm.json", '{"paper": "ltchm"}', r"ltchm\.json: expected 'rows'"),
        ("downstream/ucmerced/jpeg/q30.json", '{"bpp": 0.5}', r"q30\.json: no 'oa'"),
        ("downstream/ucmerced/summary.json", '{"dataset": "ucmerced"}', r"summary\.json: expected a 'codecs' object"),
        ("fidelity.json", "[1, 2]", r"fidelity\.json: expected a JSON object"),
    ):
        bad = tmp_path / "results" / rel
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text(text)
        with pytest.raises(ValueError, match=match):
            _build(tmp_path, tmp_path / "o.html")
        bad.unlink()
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "x.yaml").write_text("paper: X\nclaims:\n  - id: a\n    ref: T1\n")
    with pytest.raises(ValueError, match=r"x\.yaml: claim #0 \(a\) lacks"):
        _build(tmp_path, tmp_path / "o.html")


def test_cli(tmp_path, capsys):
    """The command on an empty run (the full build is covered above): honest output, exit codes."""
    from rsicbench.reports.cli import main

    out = tmp_path / "r" / "index.html"
    args = ["--out", str(out), "--results", str(tmp_path / "results"), "--data", str(tmp_path / "data"),
            "--claims", str(tmp_path / "claims")]
    assert main(args + ["--no-timestamp"]) == 0
    assert out.is_file() and "built-at" not in out.read_text(encoding="utf-8")
    assert "1/11 sections with data" in capsys.readouterr().out
    assert main(args + ["--profile", "nope"]) == 1
    assert "unknown profile" in capsys.readouterr().err


def _learned_copy(root: Path, src: str, codec: str, psnr_shift, describe: dict) -> None:
    """A learned codec's RD points on ucmerced made from `src`'s (same images and bpp, PSNR shifted
    per rate point by psnr_shift(i)), with the `describe` reproduce/codecs/learned.py records."""
    from rsicbench import results
    from rsicbench.fsutil import read_json

    rd = root / "results" / "rd"
    pts = [d for _, q, d in results.point_dirs(rd, "ucmerced", src) if q.startswith("q")]
    for i, d in enumerate(sorted(pts, key=lambda d: read_json(d / results.SUMMARY)["mean"]["bpp"])):
        table = results.read_per_image(d / results.PER_IMAGE)
        rows = [{**r, "psnr": r["psnr"] + psnr_shift(i)} for r in table.rows]
        out = results.point_dir(rd, "ucmerced", codec, d.name)
        results.write_per_image(out / results.PER_IMAGE, rows)
        s = read_json(d / results.SUMMARY)
        s["describe"] = {**s["describe"], "codec": codec, **describe}
        results.write_summary(out, s)


def test_learned_rows_carry_budget_and_undertrained(tree, tmp_path):
    """Budgets in the RD, BD, ablation, OA and claims tables; a curve below JPEG at every rate is
    'undertrained' and the claims on it say so; one above JPEG at one point is not."""
    import shutil

    import yaml

    from rsicbench.fsutil import read_json, write_json

    src, _ = tree
    root = tmp_path / "t"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("report"))
    budget = {"source": "train", "arch": {"M": 48, "N": 32}, "step": 700,
              "train": {"steps": 700, "patch": 96, "batch": 8, "lr": 5e-4}}
    _learned_copy(root, "jpeg", "weak-net", lambda i: -2.0, budget)  # below JPEG everywhere
    _learned_copy(root, "jpeg", "fair-net", lambda i: 0.5 if i == 1 else -2.0, budget)  # above at one point
    # evaluated before describe recorded the run's config: steps from the run's log.csv
    _learned_copy(root, "jpeg", "old-net", lambda i: 0.0, {"source": "train", "arch": {"N": 32}})
    for s in (root / "results" / "rd" / "ucmerced" / "old-net").glob("*/summary.json"):
        log = root / "results" / "train" / "old-net" / f"r{read_json(s)['quality']}" / "log.csv"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("step,loss,bpp,mse,aux,val_loss,val_bpp,val_psnr,lr,seconds\n100,1,1,1,1,,,,0.001,1\n450,1,1,1,1,1,1,30,0.001,9\n")
    for s in sorted((root / "results" / "rd" / "ucmerced-papers").glob("*/*/summary.json")):  # paper variants
        js = read_json(s)
        js["describe"].update(source="train", arch={"N": 32, "ep_hidden": 64}, train={"steps": 6, "patch": 64, "batch": 2})
        write_json(s, js)
    claims = yaml.safe_load((root / "claims" / "ltchm.yaml").read_text())
    real = yaml.safe_load((ROOT / "claims" / "ltchm.yaml").read_text())["claims"]
    claims["claims"] += [c for c in real if c["quantity"] == "train_steps"]  # the paper's 200k iterations
    claims["claims"].append({"id": "weak_bd", "ref": "Table 3", "dataset": "ucmerced", "quantity": "bd_psnr",
                             "subject": "weak-net", "anchor": "jpeg", "value": -2.0, "unit": "dB"})
    (root / "claims" / "ltchm.yaml").write_text(yaml.safe_dump(claims, sort_keys=False))
    _build(root, root / "r.html", profile="paper")
    page = (root / "r.html").read_text(encoding="utf-8")

    want = "train: 700 steps; crop 96 px; batch 8; width M=48, N=32"
    rd = _section(page, "rd")
    for codec in ("weak-net", "fair-net"):
        assert all(want in r for r in re.findall(rf"<tr><td>{codec}.*?</tr>", rd, re.S)), codec
    assert re.search(r"<tr><td>weak-net.*?undertrained: PSNR below JPEG", rd, re.S)
    assert "above JPEG at some rate: at or above JPEG at 1 of" in rd
    old = re.findall(r"<tr><td>old-net.*?</tr>", rd, re.S)
    assert old and all("train: 450 steps; width N=32" in r and "last step of results/train log.csv" in r for r in old)
    assert all(r.endswith("<td>—</td></tr>") for r in re.findall(r"<tr><td>jpeg<.*?</tr>", rd, re.S))  # not learned
    bd = _rows(_section(page, "bd"))
    assert want in bd["weak-net"] and want in bd["fair-net"] and want not in bd["jpeg"]
    oa = _rows(_section(page, "downstream"))
    assert want in oa["weak-net"] and "undertrained" in oa["weak-net"]
    abl = _rows(_section(page, "ablation"))
    frac = "0.003% of the paper's 200\u202f000 steps (claims/ltchm.yaml sec32_train_steps, Sec. 3.2)"
    assert "6 steps; crop 64 px" in abl["ltchm-dam"] and frac in abl["ltchm-dam"]
    assert "no CI: 2 image(s)" in abl["ltchm-dam"]  # the fixture's paper set has 2 images
    assert "(JPEG: its means over the same 2 images in results/rd/ucmerced)" in abl["ltchm-dam"]
    assert "fraction of the paper's steps: no paper" in _section(page, "rd")  # a CompressAI baseline-like name
    cl = _rows(_section(page, "claims"))
    assert "our weak-net is undertrained" in cl["weak_bd"] and ">not comparable at this profile<" in cl["weak_bd"]
    assert want in cl["weak_bd"]
    assert "a training setting" in cl["sec32_train_steps"]


# ---------------------------------------------------------------- real browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def _chromium(page: Path, profile_dir: Path, *extra: str) -> tuple[str, list[str]]:
    """(stdout, console lines) of one headless Chromium run on a local file; `extra` must hold an
    action (--dump-dom / --screenshot), else headless Chromium keeps running."""
    import subprocess

    r = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *extra, page.as_uri()],
                       capture_output=True, text=True, timeout=90)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    return r.stdout, console


def _need_chromium():
    import os

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is absent (Debian package 'chromium'); the browser test needs it")


@pytest.mark.browser
def test_console_detection_catches_errors(tmp_path):
    """The console check below can fail: a page with a script error is caught."""
    _need_chromium()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head>'
                   "<body><script>undefinedFunction();</script></body></html>")
    _, console = _chromium(bad, tmp_path / "profile", "--dump-dom")
    assert any("undefinedFunction" in ln for ln in console), console


@pytest.mark.browser
def test_report_in_headless_chromium(built, tmp_path):
    _need_chromium()
    import os
    import shutil

    import numpy as np
    from PIL import Image

    out = built[2]
    dom, console = _chromium(out, tmp_path / "p1", "--dump-dom")
    assert console == [], console
    for sid in SECTION_IDS:
        assert f'<section id="{sid}"' in dom, sid
    assert dom.count("<svg") >= 2 and "Paper claims: claimed vs ours" in dom and 'id="profile-banner"' in dom

    shot = tmp_path / "screenshot.png"
    _, console = _chromium(out, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1280,2000")
    assert console == [], console
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (2000, 1280, 3)
    assert img.std() > 20  # text, banner and plots drawn, not a blank page
    if os.environ.get("RSICBENCH_REPORT_SCREENSHOT"):  # keep a copy to look at
        shutil.copy(shot, os.environ["RSICBENCH_REPORT_SCREENSHOT"])


def test_a_difference_within_the_seed_gap_reads_so_in_the_ablation_and_the_claims(tree, tmp_path):
    """The renderer's side of the seed rule (the producer's: tests/test_paired_bd.py): an ablation
    row the producer marked "within seed noise" says so with the gap, and so does the verdict of
    the paper's claim on that variant's BD-rate. The ablation file is the fixture's own, with
    ltchm-dam's interval and verdict replaced as reproduce/papers/ablation.py writes them."""
    import shutil

    from rsicbench.reproduce.papers.ablation import WITHIN_SEED_NOISE

    root = tmp_path / "tree"
    shutil.copytree(tree[0], root)
    path = root / "results" / "ablation" / "ltchm.json"
    table = json.loads(path.read_text())
    dam = next(r for r in table["rows"] if r["variant"] == "ltchm-dam")
    dam["bd_rate_psnr_ci"] = {"computable": True, "ci": 0.95, "ci_low": -9.5, "ci_high": -3.25, "n_images": 42,
                              "n_boot": 1000, "n_failed": 0, "difference": "test needs fewer bits"}
    dam["difference"], dam["seed_gap"] = WITHIN_SEED_NOISE, 4.75
    path.write_text(json.dumps(table))
    out = tmp_path / "index.html"
    _build(root, out)
    page = out.read_text(encoding="utf-8")
    row = _rows(_section(page, "ablation"))["ltchm-dam"]
    assert "within seed noise" in row and "±4.75 %, the seed gap" in row
    claims = _section(page, "claims")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr><td><code>([^<]+)</code>.*?</tr>", claims, re.S)}
    assert "ours: within seed noise (CI [-9.50, -3.25] % reaches within ±4.75 %" in rows["table4_bdrate_dota_dam"]
