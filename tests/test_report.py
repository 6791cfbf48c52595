"""The HTML report: sections from a fixture tree, honest 'not produced' text, no external URLs,
determinism, verdicts, bad-input errors, the CLI and the DVC side files."""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path

import pytest

from rsicbench.config import settings
from rsicbench.reports.build import build_report
from test_report_fixtures import make_tree

ROOT = Path(__file__).resolve().parents[1]
SECTION_IDS = ["datasets", "rd", "bd", "ablation", "complexity", "downstream", "roi", "claims", "viewer", "provenance"]


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


def test_every_section_renders_from_fixture(built):
    root, facts, out, page, done = built
    assert [s.id for s in done] == SECTION_IDS
    assert all(s.produced for s in done), [s.id for s in done if not s.produced]
    assert "Not produced by this run" not in _section(page, "rd")
    rd = _section(page, "rd")
    assert rd.count("<svg") == 1 and all(c in rd for c in facts["codecs"])
    # the failed image is reported, and excluded from the point's count
    assert "decoder crashed" not in rd and "agricultural/agricultural00.png" in rd
    bd = _section(page, "bd")
    ltchm = next(r for r in facts["bd"] if r["codec"] == "ltchm")
    assert f"{ltchm['bd_rate_psnr']:.2f}" in bd and f"{ltchm['bd_rate_psnr'] - 2:.2f}" in bd  # value and CI from the file
    assert "data:image/png;base64," in _section(page, "viewer")
    assert _section(page, "downstream").count("<svg") == 1  # the one confusion matrix
    roi = _section(page, "roi")
    assert "ROI-PSNR" in roi and "33.750" in roi and "38cloud.iou" in roi and "0.812" in roi
    assert "<td>12</td>" in _section(page, "datasets")
    assert "profile: default" in rd


def test_banner_and_verdicts_at_default_profile(built):
    page = built[3]
    assert 'id="profile-banner"' in page and "not comparable to the papers" in page
    claims = _section(page, "claims")
    assert claims.count("not comparable at this profile</span>") == 5
    assert ">reproduced<" not in claims


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
    assert ">reproduced<" in rows["t4_params"]  # 12.346 M vs 12.3 M, 5 % tolerance
    assert "not comparable at this profile" in rows["t3_bd_nwpu"] and "not measured" in rows["t3_bd_nwpu"]
    assert "computed by the report" in rows["t5_ablation_dam"]  # variant vs its baseline, from our RD means
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["claims"]["reproduced"] == claims.count(">reproduced<") >= 2 and metrics["profile"] == "paper"


def test_missing_inputs_say_not_produced(tmp_path):
    out = tmp_path / "report" / "index.html"
    done = _build(tmp_path, out)
    page = out.read_text(encoding="utf-8")
    assert [s.id for s in done if s.produced] == ["provenance"]
    for sid in SECTION_IDS[:-1]:
        sec = _section(page, sid)
        assert "Not produced by this run" in sec, sid
        assert "<svg" not in sec and "<td>" not in sec, sid  # no table of numbers, no plot
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
    assert len(lines) == 1 + 4 * len(facts["codecs"])
    jpeg_q10 = next(ln for ln in lines if ln.startswith("ucmerced,jpeg,q10,"))
    assert jpeg_q10.split(",")[3] == str(len(facts["test"]) - 1)  # the failed image is not counted
    m = json.loads((out.parent / "metrics.json").read_text())
    got = m["bd_vs_jpeg2000"]["ucmerced"]["ltchm"]["bd_rate_psnr"]
    want = next(r for r in facts["bd"] if r["codec"] == "ltchm")["bd_rate_psnr"]
    assert got == pytest.approx(want, abs=1e-5)


def test_bad_inputs_name_the_file(tmp_path):
    bad_csv = tmp_path / "results" / "rd" / "ucmerced" / "jpeg" / "q30" / "per_image.csv"
    bad_csv.parent.mkdir(parents=True)
    bad_csv.write_text("image,bpp\nx.png,0.5\n")
    with pytest.raises(ValueError, match=r"per_image\.csv: missing columns"):
        _build(tmp_path, tmp_path / "o.html")
    bad_csv.unlink()
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
    assert "1/10 sections with data" in capsys.readouterr().out
    assert main(args + ["--profile", "nope"]) == 1
    assert "unknown profile" in capsys.readouterr().err


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
