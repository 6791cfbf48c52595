"""CI drift gate: an unchanged rerun passes, injected drift beyond tolerance fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from rsicbench.reproduce.evaluation.gate import compare, flatten, main

TOL = """
gate:
  tolerances:
    - {match: "*.bpp", rel: 0.01}
    - {match: "*psnr*", abs: 0.05}
  ignore: ["*enc_s*"]
"""


@pytest.fixture
def files(tmp_path):
    curve = [
        {"qtag": "q20", "mean": {"bpp": 0.5, "psnr": 30.0, "enc_s": 0.1}},
        {"qtag": "q80", "mean": {"bpp": 1.5, "psnr": 36.0, "enc_s": 0.2}},
    ]
    cur = tmp_path / "jpeg.json"
    cur.write_text(json.dumps(curve))
    tol = tmp_path / "tol.yaml"
    tol.write_text(TOL)
    base = tmp_path / "baseline.json"
    assert main(["--baseline", str(base), "--current", str(cur), "--update"]) == 0
    return cur, base, tol, curve


def _run(cur, base, tol, *extra):
    return main(["--baseline", str(base), "--current", str(cur), "--tolerances", str(tol), *extra])


def test_unchanged_passes(files, capsys):
    cur, base, tol, _ = files
    assert _run(cur, base, tol) == 0
    assert "PASS" in capsys.readouterr().out


def test_drift_beyond_tolerance_fails(files, capsys):
    cur, base, tol, curve = files
    curve[1]["mean"]["psnr"] = 35.9  # 0.1 dB > 0.05
    curve[0]["mean"]["enc_s"] = 99.0  # ignored: machine-dependent
    cur.write_text(json.dumps(curve))
    assert _run(cur, base, tol) == 1
    out = capsys.readouterr().out
    assert "DRIFT" in out and "[q80].mean.psnr" in out and "enc_s" not in out and "FAIL" in out


def test_drift_within_tolerance_passes(files):
    cur, base, tol, curve = files
    curve[0]["mean"]["bpp"] = 0.504  # 0.8 % < 1 %
    curve[0]["mean"]["psnr"] = 30.04
    cur.write_text(json.dumps(curve))
    assert _run(cur, base, tol) == 0


def test_missing_and_new_keys(files, capsys):
    cur, base, tol, curve = files
    cur.write_text(json.dumps([curve[0], {"qtag": "q90", "mean": {"bpp": 2.0}}]))
    assert _run(cur, base, tol) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and "NEW" in out
    cur.write_text(json.dumps(curve + [{"qtag": "q90", "mean": {"bpp": 2.0}}]))
    assert _run(cur, base, tol) == 0  # new keys are reported, not fatal...
    assert _run(cur, base, tol, "--strict") == 1  # ...unless --strict


def test_nan_and_flatten():
    assert flatten({"a": [{"qtag": "x", "v": 1}, 2], "s": "text", "b": True}) == {"a[x].v": 1.0, "a[1]": 2.0}
    # ablation rows by name: a row added in front renames no other row
    assert flatten({"rows": [{"variant": "m-new", "v": 3}, {"variant": "m-a", "v": 1}]}) == {
        "rows[m-new].v": 3.0, "rows[m-a].v": 1.0}
    rows, ok = compare({"k": float("nan")}, {"k": float("nan")}, [])
    assert ok and not rows
    rows, ok = compare({"k": 1.0}, {"k": float("nan")}, [])
    assert not ok and rows[0]["status"] == "DRIFT"


def test_bad_baseline(tmp_path, files):
    cur, _, tol, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert _run(cur, bad, tol) == 2
    with pytest.raises(FileNotFoundError, match="missing.json"):
        _run(cur, tmp_path / "missing.json", tol)


# --------------------------------------------------------------------------------------------
# Drift of each kind, against the tolerances CI uses (configs/eval.yaml `gate:`), on a small
# results/ tree written by the real producers (engine sweep, per-image writer, rate audit,
# downstream scores) or, where training would take minutes, with numbers measured in a ci run.

REPO = Path(__file__).resolve().parents[1]
LEARNED = "results/rd/toy/bmshj2018-hyperprior/q0"  # learned: the codec name says so
# bmshj2018-hyperprior r0 at the ci profile (scripts/ci_pipeline.sh's train + evaluate), per
# image: (bytes, bpp, psnr, msssim); DRIFTED = the same run with λ_ca doubled (an injected
# λ-conversion change: lambdas.CONVENTIONS["compressai"] x2) -> +37% bytes, PSNR +0.003 dB.
MEASURED = {"c0/img0.png": (1242, 0.151611328125, 6.5881713190742905, 0.22756271064281464),
            "c1/img1.png": (1074, 0.131103515625, 6.65024897677977, 0.13457466661930084)}
DRIFTED = {"c0/img0.png": (1702, 0.207763671875, 6.591567613514155, 0.23240350186824799),
           "c1/img1.png": (1494, 0.182373046875, 6.653547355028869, 0.13783524930477142)}
CLASSES = ["agricultural", "beach", "forest"]
TRUE = [0, 0, 1, 1, 2, 2]
PRED = [0, 0, 1, 2, 2, 2]


class _RateModel:
    """The one method the rate audit calls: the model's estimate of an image's bits
    (measured in the same ci run: 0.1562 bpp mean)."""

    def estimate_bits(self, img):
        return 0.15622 * img.shape[0] * img.shape[1]


def _learned_rows(values):
    return [{"image": k, "width": 256, "height": 256, "bytes": b, "bpp": bpp, "psnr": p, "msssim": m,
             "enc_s": 0.5, "dec_s": 0.4, "error": ""} for k, (b, bpp, p, m) in values.items()]


def _sweep(images):
    from rsicbench.reproduce.evaluation.engine import SweepSpec, run_sweep, samples_from_folder
    from rsicbench.results import RatePoint

    spec = SweepSpec(codec="jpeg", dataset="toy", split="test", points=[RatePoint(quality=20), RatePoint(quality=80)],
                     out_root=Path("results/rd"), metrics={"device": "cpu", "lpips": False}, workers=1)
    shutil.rmtree("results/rd/toy/jpeg", ignore_errors=True)
    Path("results/rd/toy/jpeg.json").unlink(missing_ok=True)
    run_sweep(spec, samples_from_folder(images))


def _downstream(pred):
    from rsicbench.downstream.scores import confusion, scores
    from rsicbench.fsutil import write_json

    write_json("results/downstream/toy/jpeg/q20.json", scores(confusion(TRUE, pred, len(CLASSES)), CLASSES))


@pytest.fixture
def ci(tmp_path, monkeypatch, smooth_image):
    """A results/ tree, its baseline, and CI's gate settings; cwd = tmp_path (keys are
    results/... as in CI's ci-profile pipeline)."""
    from rsicbench.config import settings
    from rsicbench.fsutil import write_json
    from rsicbench.imageio import write_png
    from rsicbench.reproduce.evaluation.rate_audit import rate_check
    from rsicbench.results import Sample, write_per_image

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RSICBENCH_ROOT", str(REPO))  # the codec names (classical vs learned) come from its configs
    tol = tmp_path / "gate.yaml"
    tol.write_text(yaml.safe_dump({"gate": settings("eval", "ci", root=REPO)["gate"]}))
    images = tmp_path / "images"
    for i in range(3):
        write_png(images / f"c{i % 2}" / f"img{i}.png", np.roll(smooth_image, 9 * i, axis=0))
    _sweep(images)
    write_per_image(f"{LEARNED}/per_image.csv", _learned_rows(MEASURED))
    big = np.tile(smooth_image, (4, 4, 1))  # 256 x 256, the learned images' size
    for rel in MEASURED:
        write_png(tmp_path / "learned_images" / rel, big)
    rate_check(_RateModel(), [Sample(tmp_path / "learned_images" / r, r) for r in MEASURED], Path(LEARNED))
    _downstream(PRED)
    # rsicbench complexity of ltchm-full at the ci widths (measured); timings are not gated
    write_json("results/complexity/ltchm-full.json",
               {"params": {"total": 227879, "per_module": {"g_a": 49744, "g_s": 54579}}, "flops": 753354240,
                "timing": {"encode_s": 9.24, "peak_python_heap_bytes": 399591}})
    files = lambda: sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*")  # noqa: E731
                           if p.name.endswith((".json", "per_image.csv")))
    assert main(["--baseline", "baseline.json", "--current", *files(), "--update"]) == 0
    return SimpleNamespace(tol=str(tol), images=images, files=files,
                           base=json.loads((tmp_path / "baseline.json").read_text())["values"])


def _gate(ci, capsys, *extra):
    capsys.readouterr()
    rc = main(["--baseline", "baseline.json", "--current", *ci.files(), "--tolerances", ci.tol, *extra])
    return rc, capsys.readouterr().out


def _named(out, status, key, baseline, current):
    """The gate's table has a `status key baseline current` row for this key with both values."""
    lines = [ln.split() for ln in out.splitlines()]
    row = next((ln for ln in lines if len(ln) > 1 and ln[1] == key), None)
    assert row is not None, f"{key} not in the gate's table:\n{out}"
    fmt = lambda v: "-" if v is None else f"{v:.6g}"  # noqa: E731
    assert row[:4] == [status, key, fmt(baseline), fmt(current)], row


def test_ci_rerun_of_the_producers_passes(ci, capsys):
    _sweep(ci.images)  # from scratch: same streams, same metrics; only timings differ
    rc, out = _gate(ci, capsys, "--strict")
    assert rc == 0 and "0 drifted, 0 missing, 0 new" in out, out
    kinds = out.split("values by kind: ")[1]
    for kind in ("classical bytes/bpp (exact)", "classical quality", "learned bytes/bpp", "learned quality",
                 "learned rate audit", "downstream OA/confusion", "param/FLOP counts"):
        assert kind in kinds


def test_changed_quality_mapping_fails(ci, capsys, monkeypatch):
    from rsicbench.reproduce.codecs.classical import JpegCodec
    from rsicbench.results import read_per_image

    encode = JpegCodec.encode
    monkeypatch.setattr(JpegCodec, "encode", lambda self, img: encode(SimpleNamespace(
        check_image=self.check_image, name=self.name, quality=self.quality + 5, settings=self.settings), img))
    _sweep(ci.images)
    rc, out = _gate(ci, capsys)
    assert rc == 1 and "FAIL" in out
    cur = json.loads(Path("results/rd/toy/jpeg.json").read_text())
    for tag, summary in (("q20", cur[0]), ("q80", cur[1])):
        key = f"results/rd/toy/jpeg.json:[{tag}].mean.bytes"
        _named(out, "DRIFT", key, ci.base[key], summary["mean"]["bytes"])
    f = "results/rd/toy/jpeg/q20/per_image.csv"
    key = f"{f}:[c0/img0.png].bytes"
    _named(out, "DRIFT", key, ci.base[key], read_per_image(f).by_image()["c0/img0.png"]["bytes"])


def test_changed_lambda_conversion_fails(ci, capsys):
    from rsicbench.results import write_per_image

    write_per_image(f"{LEARNED}/per_image.csv", _learned_rows(DRIFTED))
    rc, out = _gate(ci, capsys)
    assert rc == 1
    for img, (b, bpp, psnr, _) in DRIFTED.items():
        _named(out, "DRIFT", f"{LEARNED}/per_image.csv:[{img}].bytes", MEASURED[img][0], b)
        _named(out, "DRIFT", f"{LEARNED}/per_image.csv:[{img}].bpp", MEASURED[img][1], bpp)
        assert f"[{img}].psnr" not in out  # +0.003 dB: within the learned quality tolerance


@pytest.mark.parametrize("delta, fails", [(0.06, True), (0.04, False)])
def test_learned_metric_against_its_tolerance(ci, capsys, delta, fails):
    from rsicbench.results import write_per_image

    moved = {**MEASURED, "c0/img0.png": (*MEASURED["c0/img0.png"][:2], MEASURED["c0/img0.png"][2] + delta,
                                          MEASURED["c0/img0.png"][3])}
    write_per_image(f"{LEARNED}/per_image.csv", _learned_rows(moved))
    rc, out = _gate(ci, capsys)  # learned PSNR: abs 0.05 dB
    assert rc == (1 if fails else 0)
    key = f"{LEARNED}/per_image.csv:[c0/img0.png].psnr"
    if fails:
        _named(out, "DRIFT", key, MEASURED["c0/img0.png"][2], moved["c0/img0.png"][2])
    else:
        assert key not in out and "PASS" in out


def test_changed_classifier_prediction_fails(ci, capsys):
    _downstream([0, 0, 1, 1, 2, 2])  # the one wrong prediction (true 1 -> 2) is now right
    rc, out = _gate(ci, capsys)
    assert rc == 1
    f = "results/downstream/toy/jpeg/q20.json"
    _named(out, "DRIFT", f"{f}:oa", 500 / 6, 100.0)
    _named(out, "DRIFT", f"{f}:confusion[1][1]", 1, 2)
    _named(out, "DRIFT", f"{f}:confusion[1][2]", 1, 0)
    _named(out, "DRIFT", f"{f}:per_class_accuracy.beach", 50.0, 100.0)


def test_param_count_exact_timing_ignored(ci, capsys):
    from rsicbench.fsutil import write_json

    f = "results/complexity/ltchm-full.json"
    write_json(f, {"params": {"total": 227879, "per_module": {"g_a": 49744, "g_s": 54579}}, "flops": 753354240,
                   "timing": {"encode_s": 1.0, "peak_python_heap_bytes": 1}})
    assert _gate(ci, capsys)[0] == 0  # machine-dependent timing and memory: never compared
    write_json(f, {"params": {"total": 227880, "per_module": {"g_a": 49745, "g_s": 54579}}, "flops": 753354240,
                   "timing": {"encode_s": 1.0}})
    rc, out = _gate(ci, capsys)
    assert rc == 1
    _named(out, "DRIFT", f"{f}:params.total", 227879, 227880)  # one parameter more: no tolerance
    _named(out, "DRIFT", f"{f}:params.per_module.g_a", 49744, 49745)


def test_missing_and_new_key_fail(ci, capsys):
    from rsicbench.results import write_per_image

    rows = _learned_rows(MEASURED)
    write_per_image(f"{LEARNED}/per_image.csv", rows[:1])  # an image no longer evaluated
    rc, out = _gate(ci, capsys)
    assert rc == 1
    _named(out, "MISSING", f"{LEARNED}/per_image.csv:[c1/img1.png].bytes", MEASURED["c1/img1.png"][0], None)
    write_per_image(f"{LEARNED}/per_image.csv", [*rows, {**rows[0], "image": "c2/new.png"}])
    rc, out = _gate(ci, capsys)
    assert rc == 0 and "NEW" in out  # reported; fatal only with --strict, as CI runs it
    rc, out = _gate(ci, capsys, "--strict")
    assert rc == 1
    _named(out, "NEW", f"{LEARNED}/per_image.csv:[c2/new.png].bytes", None, MEASURED["c0/img0.png"][0])


def test_rules_by_codec_class():
    from rsicbench.reproduce.evaluation.gate import CodecNames, tolerance_for

    names = CodecNames(frozenset({"jpeg", "jpeg2000"}), frozenset({"mbt2018", "ltchm-full", "ltchm"}))
    rules = [{"match": "*psnr*", "codecs": "learned", "abs": 0.05}, {"match": "*psnr*", "abs": 0.02}]
    assert tolerance_for("results/rd/u/mbt2018/q1/per_image.csv:[a.png].psnr", rules, names)["abs"] == 0.05
    assert tolerance_for("report/metrics.json:bd_vs_jpeg2000.u.ltchm-full.bd_psnr", rules, names)["abs"] == 0.05
    assert tolerance_for("results/ablation/ltchm.json:rows[0].rd_points[q2].psnr", rules, names)["abs"] == 0.05
    # a classical codec, and an anchor named only inside a longer token, get the classical rule
    assert tolerance_for("results/rd/u/jpeg2000.json:[q20].mean.psnr", rules, names)["abs"] == 0.02
    assert tolerance_for("report/metrics.json:bd_vs_jpeg2000.u.jpeg.bd_psnr", rules, names)["abs"] == 0.02
    assert names.kind_of("results/roi/masks_u.json:states.full") is None


def test_files_come_from_the_settings(tmp_path, monkeypatch, capsys):
    from rsicbench.fsutil import write_json

    monkeypatch.chdir(tmp_path)
    write_json("results/a/x.json", {"v": 1.0})
    write_json("results/b/y.json", {"w": 2.0})
    tol = tmp_path / "gate.yaml"
    tol.write_text(yaml.safe_dump({"gate": {"files": ["results/*/x.json", "results/b/*.json"]}}))
    monkeypatch.setenv("RSICBENCH_ROOT", str(REPO))
    assert main(["--baseline", "base.json", "--tolerances", str(tol), "--update"]) == 0
    assert json.loads((tmp_path / "base.json").read_text())["files"] == ["results/a/x.json", "results/b/y.json"]
    assert main(["--baseline", "base.json", "--tolerances", str(tol), "--strict"]) == 0
    # a producer that did not run: its glob matches nothing -> an error naming the glob
    tol.write_text(yaml.safe_dump({"gate": {"files": ["results/*/x.json", "results/roi/*.json"]}}))
    with pytest.raises(FileNotFoundError, match=r"'results/roi/\*.json' matched no file"):
        main(["--baseline", "base.json", "--tolerances", str(tol)])


def test_bd_overlap_flip_across_cpus_passes_but_bd_value_does_not(monkeypatch):
    """Measured ci-profile points of ltchm-baseline (2 training steps): on the AMD EPYC that made
    the baseline its q2 and q5 streams had equal bytes (anchor curve undefined, overlap NaN);
    on an Intel Xeon q5 came out one byte shorter (curve defined, overlap 0). The BD stays
    undefined both times and every point stays within its tolerance, so the gate passes; a BD
    value that appears, or a point that moves beyond its tolerance, still fails."""
    from rsicbench.config import settings
    from rsicbench.reproduce.evaluation.gate import codec_names
    from rsicbench.reproduce.papers.ablation import _bd

    monkeypatch.setenv("RSICBENCH_ROOT", str(REPO))
    gate = settings("eval", "ci")["gate"]
    names = codec_names(list(settings("eval", "ci").get("codecs", [])))
    test = [{"bpp": 0.0462646484375, "psnr": 9.442244556430708}, {"bpp": 0.047607421875, "psnr": 9.442067294830572}]
    amd = [{"bpp": 0.0230712890625, "psnr": 6.8214695496404545}, {"bpp": 0.0230712890625, "psnr": 6.821442067628984}]
    intel = [{"bpp": 0.0230712890625, "psnr": 6.821466325776963}, {"bpp": 0.02294921875, "psnr": 6.821442067628984}]

    def values(anchor, test_pts):
        row = {"rd_points": anchor, "bd_psnr": _bd("quality", anchor, test_pts), "bd_rate_psnr": _bd("rate", anchor, test_pts)}
        flat = flatten(json.loads(json.dumps({"rows": [row]})))
        return {f"results/ablation/ltchm.json:{k}": v for k, v in flat.items()}

    base, cur = values(amd, test), values(intel, test)
    assert any(k.endswith("overlap") for k in cur) and not any(k.endswith("overlap") for k in base)
    assert compare(base, cur, gate["tolerances"], gate["ignore"], strict=True, names=names)[1]
    # a BD value defined now but not in the baseline is NEW, which --strict fails
    overlapping = [{"bpp": 0.04, "psnr": 9.0}, {"bpp": 0.05, "psnr": 9.5}]
    rows, ok = compare(base, values(overlapping, test), gate["tolerances"], gate["ignore"], strict=True, names=names)
    assert not ok and any(r["key"].endswith("bd_psnr.value") and r["status"] == "NEW" for r in rows)
    # one byte is ~0.5 % of these tiny streams; ten are beyond the learned 1 %
    far = [intel[0], {"bpp": 0.0230712890625 - 10 * 8 / 65536, "psnr": intel[1]["psnr"]}]
    rows, ok = compare(base, values(far, test), gate["tolerances"], gate["ignore"], strict=True, names=names)
    assert not ok and any(r["key"].endswith("rd_points[1].bpp") and r["status"] == "DRIFT" for r in rows)
