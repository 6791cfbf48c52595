"""The results contract (rsicbench.results, rsicbench.claims): one point written by the engine
read back through the API, rate tags, the one averaging rule, the claims loader."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rsicbench import results
from rsicbench.claims import load_claims, read_claims
from rsicbench.imageio import write_png
from rsicbench.metrics.aggregate import summarize
from rsicbench.reproduce.evaluation.engine import SweepSpec, run_sweep
from rsicbench.results import RatePoint, Sample

METRICS = {"device": "cpu", "lpips": False}


@pytest.fixture
def point(tmp_path, smooth_image):
    """jpeg q100 on 2 generated images: a flat one (decoded exactly: PSNR +inf) and a textured one."""
    imgs = {"a/flat.png": np.full((48, 64, 3), 128, np.uint8), "b/texture.png": smooth_image[:48]}
    samples = []
    for rel, img in imgs.items():
        write_png(tmp_path / "img" / rel, img)
        samples.append(Sample(str(tmp_path / "img" / rel), rel, rel.split("/")[0]))
    spec = SweepSpec(codec="jpeg", dataset="toy", split="test", points=[RatePoint(quality=100)],
                     out_root=tmp_path / "rd", metrics=METRICS)
    res = run_sweep(spec, samples)
    assert not res.failed
    return tmp_path / "rd", res.summaries[0]


def test_point_written_by_the_engine_reads_back_through_the_api(point):
    rd, summary = point
    [(codec, tag, folder)] = results.point_dirs(rd, "toy")
    assert (codec, tag, folder) == ("jpeg", "q100", results.point_dir(rd, "toy", "jpeg", "q100"))
    assert results.codecs(rd, "toy") == ["jpeg"]
    assert results.read_summary(folder) == summary == json.loads((folder / results.SUMMARY).read_text())
    table = results.read_per_image(folder / results.PER_IMAGE)
    assert table.images == ["a/flat.png", "b/texture.png"] and table.failed == {}
    with open(folder / results.PER_IMAGE, encoding="utf-8") as f:
        assert tuple(f.readline().strip().split(",")) == results.CSV_COLUMNS
    rows = table.by_image()
    assert rows["a/flat.png"]["psnr"] == math.inf and math.isfinite(rows["b/texture.png"]["psnr"])
    assert math.isnan(rows["a/flat.png"]["roi_psnr"])  # no ROI: empty cell -> nan
    assert results.curve(rd, "toy", "jpeg") == [summary]
    assert json.loads(results.curve_path(rd, "toy", "jpeg").read_text()) == [summary]
    # written again by the API's writer: the same bytes
    before = (folder / results.PER_IMAGE).read_bytes()
    parts = [json.loads((folder / "parts" / f"{results.stem(r)}.json").read_text()) for r in table.images]
    results.write_per_image(folder / results.PER_IMAGE, parts)
    assert (folder / results.PER_IMAGE).read_bytes() == before


def test_one_averaging_rule_engine_summary_equals_metrics_aggregate(point):
    rd, summary = point
    rows = results.read_per_image(results.point_dir(rd, "toy", "jpeg", "q100") / results.PER_IMAGE).rows
    finite = next(r["psnr"] for r in rows if math.isfinite(r["psnr"]))
    agg = summarize(rows, ["psnr", "msssim_db", "bpp"])
    # +inf capped at 100 dB, in the engine's summary.json and in `rsicbench metrics`' aggregate alike
    assert summary["mean"]["psnr"] == agg["psnr"] == np.mean([finite, results.PSNR_CAP_DB])
    assert summary["std"]["psnr"] == agg["psnr_std"]
    assert summary["mean"]["msssim_db"] == agg["msssim_db"]
    assert summary["mean"]["bpp"] == agg["bpp"]
    assert summary["n_inf"]["psnr"] == agg["psnr_n_inf"] == 1
    from rsicbench.reports.loaders import load_rd

    [shown] = load_rd(rd.parent, "toy")["jpeg"]  # the report's mean: the same rule
    assert shown.mean("psnr") == summary["mean"]["psnr"] and shown.mean("bpp") == summary["mean"]["bpp"]
    avg = results.average([30.0, math.inf, None, "", math.nan], "psnr")
    assert (avg.mean, avg.n, avg.n_inf) == (65.0, 2, 1)
    assert results.average([1.0, 3.0], "lpips") == results.Average(2.0, 1.0, 2, 0)
    assert math.isnan(results.average([None], "vifp").mean)


def test_finite_values_average_as_the_plain_mean():
    vals = [31.25, 28.5, 40.125]
    assert results.average(vals, "psnr").mean == float(np.mean(vals))
    assert results.average(vals, "psnr").std == float(np.std(vals))


def test_rate_tags_format_and_parse():
    for tag, point in [("q50", RatePoint(quality=50)), ("q0.5", RatePoint(quality=0.5)),
                       ("bpp0.70", RatePoint(target_bpp=0.7)), ("bpp12.00", RatePoint(target_bpp=12))]:
        assert point.qtag == tag and RatePoint.parse(tag) == RatePoint.parse(point.qtag)
        assert RatePoint.parse(tag).qtag == tag
    assert results.qtag(quality=3) == "q3" and results.qtag(target_bpp=0.81) == "bpp0.81"
    for bad in ("50", "r1", "q", "qx", "bpp0.7", "bpp.70", "q50.0", "Q50", ""):
        with pytest.raises(ValueError, match=f"rate tag {bad!r}"):
            RatePoint.parse(bad)
    with pytest.raises(ValueError, match="exactly one"):
        RatePoint(quality=1, target_bpp=1.0)


def test_per_image_reader_names_the_file(tmp_path):
    p = tmp_path / "per_image.csv"
    p.write_text("image,bpp\nx.png,0.5\n")
    with pytest.raises(ValueError, match=r"per_image\.csv: missing columns"):
        results.read_per_image(p)
    results.write_per_image(p, [{"image": "x.png", "bpp": "abc"}])
    with pytest.raises(ValueError, match=r"per_image\.csv: row 2, column 'bpp': not a number"):
        results.read_per_image(p)
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        results.read_per_image(tmp_path / "nothere.csv")
    (tmp_path / "summary.json").write_text('{"mean": 3}')
    with pytest.raises(ValueError, match=r"summary\.json: not a point summary"):
        results.read_summary(tmp_path)


def test_run_dir_is_under_results_train(tmp_path):
    assert results.run_dir("mbt2018", "r2", tmp_path) == tmp_path / "results" / "train" / "mbt2018" / "r2"


def test_claims_loader(tmp_path):
    d = tmp_path / "claims"
    d.mkdir()
    (d / "good.yaml").write_text("paper: P\nclaims:\n  - {id: a, ref: T1, quantity: params, subject: m, value: 1.5}\n")
    f = load_claims("good", tmp_path)
    assert f.paper == "P" and f.stem == "good" and f.by_id()["a"]["value"] == 1.5
    broken = d / "broken.yaml"
    broken.write_text("paper: P\nclaims: [\n  - {id: a\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        read_claims(broken)
    broken.write_text("paper: P\nclaims:\n  - {id: a, ref: T1}\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: claim #0 \(a\) lacks \['quantity', 'subject', 'value'\]"):
        read_claims(broken)
    broken.write_text("claims: []\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: expected keys 'paper' and a list 'claims'"):
        read_claims(broken)
    with pytest.raises(FileNotFoundError, match=r"absent\.yaml: claims file not found"):
        load_claims("absent", tmp_path)


def test_every_claims_file_of_the_project_loads():
    from pathlib import Path

    from rsicbench.claims import all_claims

    files = all_claims(Path(__file__).resolve().parents[1] / "claims")
    assert files and all(f.claims for f in files.values())
