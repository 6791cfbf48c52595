"""Bad input to the commands: one clear line, a non-zero exit, no traceback, nothing lost.

One test per item of issue 16 ("82 kinds of bad input", items 1-6 and 8). Commands run
in-process through `rsicbench.cli.main` (the one error handler); subprocesses only where
the case needs one (another working directory, kill -9).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rsicbench.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    for var in ("RSICBENCH_DEBUG", "RSICBENCH_PROFILE", "RSICBENCH_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(REPO)


def run(argv, capsys) -> tuple[int, str, str]:
    """rsicbench <argv> in this process: (exit status, stdout, stderr)."""
    try:
        rc = cli_main(list(map(str, argv)))
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def error_line(rc: int, err: str, *needles: str, code: int = 2) -> str:
    """The command failed with `code`, printed no traceback, and its last line names every needle."""
    assert rc == code, err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    for n in needles:
        assert n in line, (n, line)
    return line


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _save(path: Path, arr: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


def _smooth(seed: int, size: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    noise = np.random.default_rng(seed).normal(0, 6, (size, size, 3))
    return np.clip(np.stack([x * 3, y * 3, (x + y) * 1.5], 2) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def images(tmp_path) -> Path:
    """imgs/{a,b}/...: three PNGs and one .jpeg."""
    root = tmp_path / "imgs"
    for i, rel in enumerate(["a/i0.png", "a/i1.png", "b/i2.png"]):
        _save(root / rel, _smooth(i))
    _save(root / "b/photo.jpeg", _smooth(9), quality=95)
    return root


SWEEP = ["sweep", "--codec", "jpeg", "--profile", "ci", "--no-lpips", "--workers", "1", "--per-class", "10"]


# --------------------------------------------------------------------------- item 1
def test_images_dir_never_overwrites_a_dataset_s_results(tmp_path, images, capsys):
    out = tmp_path / "rd"
    (out / "ucmerced" / "jpeg" / "q50").mkdir(parents=True)
    (out / "ucmerced" / "jpeg" / "q50" / "summary.json").write_text('{"precious": 1}\n')
    (out / "ucmerced" / "jpeg.json").write_text('[{"precious": 2}]\n')
    before = snapshot(out)

    # without --dataset the results are named after the folder ...
    rc, stdout, err = run(SWEEP + ["--images-dir", images, "--out-root", out, "--qualities", "50", "--matched-bpp"], capsys)
    assert rc == 0, err
    rows = (out / "imgs" / "jpeg" / "q50" / "per_image.csv").read_text().splitlines()[1:]
    # ... and .jpeg files are images too (item 4)
    assert sorted(r.split(",")[0] for r in rows) == ["a/i0.png", "a/i1.png", "b/i2.png", "b/photo.jpeg"]
    # ... and a folder named like a registered dataset must be named explicitly
    named_like = tmp_path / "ucmerced"
    shutil.copytree(images, named_like)
    rc, _, err = run(SWEEP + ["--images-dir", named_like, "--out-root", out, "--qualities", "50"], capsys)
    error_line(rc, err, str(named_like), "--dataset")
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k.startswith("ucmerced")} == before


# --------------------------------------------------------------------------- item 2
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 1-step training run whose --set overrides differ from the ci profile in arch, seed,
    threads and batch; its output folder (latest.pt, best.pt, log.csv)."""
    import torch

    base = tmp_path_factory.mktemp("train")
    imgs = base / "imgs"
    for i in range(2):
        _save(imgs / f"c/i{i}.png", _smooth(i))
    out = base / "run"
    threads = torch.get_num_threads()
    try:
        rc = cli_main(["train", "--profile", "ci", "--model", "bmshj2018-hyperprior", "--rate", "r0",
                       "--train-dir", str(imgs), "--val-dir", str(imgs), "--out", str(out), "--quiet",
                       "--set", 'arch={"N": 8, "M": 8}', "--set", "seed=5", "--set", "threads=1",
                       "--set", "batch=1", "--set", "val_images=1", "--steps", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return out


def test_train_set_overrides_reach_the_checkpoint(trained):
    import torch

    ck = torch.load(trained / "latest.pt", map_location="cpu", weights_only=True)
    assert ck["arch"] == {"N": 8, "M": 8}  # the ci profile says {N: 16, M: 24}
    assert ck["model"]["g_a.0.weight"].shape[0] == 8
    cfg = ck["config"]
    assert (cfg["seed"], cfg["threads"], cfg["batch"], cfg["steps"]) == (5, 1, 1, 1)


@pytest.mark.parametrize("args, needles", [
    (["--set", "bacth=2"], ["bacth", "unknown key", "batch"]),
    (["--set", "batch=abc"], ["batch=abc", "not valid JSON"]),
    (["--set", "batch=2.5"], ["batch", "expected an integer"]),
    (["--set", "steps=-3"], ["steps", "expected an integer >= 1"]),
    (["--set", "arch=[8]"], ["arch", "expected a mapping"]),
    (["--steps", "-3"], ["--steps", "expected an integer >= 1", "'-3'"]),
    # a misspelt width: the CompressAI builders once swallowed any key and trained the profile's
    (["--set", 'arch={"n": 64}'], ["bmshj2018-hyperprior", "takes no setting 'n'", "it takes: M, N"]),
    (["--model", "cheng2020-anchor", "--set", 'arch={"N": 8, "m": 8}'], ["cheng2020-anchor", "'m'", "it takes: N"]),
    (["--model", "ltchm-baseline", "--set", 'arch={"hidden": 8}'], ["ltchm-baseline", "'hidden'", "ep_hidden"]),
])
def test_train_bad_overrides_are_refused(tmp_path, args, needles, capsys):
    out = tmp_path / "run"
    model = [] if "--model" in args else ["--model", "bmshj2018-hyperprior"]
    rc, _, err = run(["train", "--profile", "ci", *model, "--rate", "r0",
                      "--train-dir", tmp_path, "--out", out, *args], capsys)
    error_line(rc, err, *needles)
    assert not out.exists()


# --------------------------------------------------------------------------- item 3
def _pairs(tmp_path, n=3):
    ref, rec = tmp_path / "ref", tmp_path / "rec"
    for i in range(n):
        a = _smooth(i, 32)
        _save(ref / f"i{i}.png", a)
        _save(rec / f"i{i}.png", np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8))
    return ref, rec


def _csv_rows(path: Path) -> dict[str, dict]:
    import csv

    with open(path, newline="") as f:
        return {r["image"]: r for r in csv.DictReader(f)}


def test_metrics_one_wrong_size_mask_fails_only_its_image(tmp_path, capsys):
    ref, rec = _pairs(tmp_path)
    for i, side in enumerate((32, 16, 32)):
        m = np.zeros((side, side), np.uint8)
        m[: side // 2] = 255
        _save(tmp_path / "roi" / f"i{i}.png", m)
    csv_path = tmp_path / "o.csv"
    rc, _, err = run(["metrics", ref, rec, "--roi-dir", tmp_path / "roi", "--out-csv", csv_path,
                      "--out-json", tmp_path / "o.json", "--no-lpips"], capsys)
    assert rc == 1 and "Traceback" not in err
    rows = _csv_rows(csv_path)
    assert rows["i0"]["error"] == "" and rows["i2"]["error"] == "" and float(rows["i0"]["roi_psnr"]) > 0
    assert "i1.png" in rows["i1"]["error"] and "16x16" in rows["i1"]["error"] and "pair 0" not in rows["i1"]["error"]


def test_metrics_pixel_bomb_fails_only_its_image(tmp_path, capsys):
    ref, rec = _pairs(tmp_path)
    png = bytearray((rec / "i1.png").read_bytes())
    png[16:24] = struct.pack(">II", 60000, 60000)  # IHDR width, height; CRC recomputed: a valid header that lies
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (rec / "i1.png").write_bytes(bytes(png))
    rc, _, err = run(["metrics", ref, rec, "--out-csv", tmp_path / "o.csv", "--out-json", tmp_path / "o.json",
                      "--no-lpips"], capsys)
    assert rc == 1 and "Traceback" not in err
    rows = _csv_rows(tmp_path / "o.csv")
    assert "i1.png" in rows["i1"]["error"] and "exceeds limit" in rows["i1"]["error"]
    assert rows["i0"]["error"] == rows["i2"]["error"] == ""
    assert json.loads((tmp_path / "o.json").read_text())["n_errors"] == 1


def test_metrics_unwritable_output_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    import rsicbench.metrics.cli as metrics_cli

    ref, rec = _pairs(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me\n")

    def no_work(*a, **k):
        raise AssertionError("the metrics ran before the output was checked")

    monkeypatch.setattr(metrics_cli, "MetricSuite", no_work)
    rc, _, err = run(["metrics", ref, rec, "--out-csv", blocker / "o.csv", "--out-json", tmp_path / "o.json"], capsys)
    error_line(rc, err, "--out-csv", str(blocker), "is a file, not a folder")
    rc, _, err = run(["metrics", ref, rec, "--out-csv", tmp_path, "--out-json", tmp_path / "o.json"], capsys)
    error_line(rc, err, "--out-csv", "is a folder")
    assert blocker.read_text() == "keep me\n" and not (tmp_path / "o.json").exists()


def test_metrics_batch_size_zero_is_refused(tmp_path, capsys):
    ref, rec = _pairs(tmp_path, 1)
    rc, _, err = run(["metrics", ref, rec, "--out-csv", tmp_path / "o.csv", "--out-json", tmp_path / "o.json",
                      "--batch-size", "0"], capsys)
    error_line(rc, err, "--batch-size", "expected an integer >= 1")
    assert not (tmp_path / "o.csv").exists()


def test_standalone_commands_work_outside_the_project(tmp_path):
    """metrics, gate and codecs need no params.yaml in the working directory."""
    ref, rec = _pairs(tmp_path, 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSICBENCH_") or k == "RSICBENCH_OFFLINE"}
    env["OMP_NUM_THREADS"] = "1"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rsicbench.cli", *map(str, args)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    r = cli("metrics", ref, rec, "--out-csv", "o.csv", "--out-json", "o.json", "--no-lpips")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert json.loads((tmp_path / "o.json").read_text())["n_errors"] == 0
    assert cli("gate", "--baseline", "b.json", "--current", "o.json", "--update").returncode == 0
    r = cli("gate", "--baseline", "b.json", "--current", "o.json")
    assert r.returncode == 0 and "gate: PASS" in r.stdout, r.stderr
    r = cli("codecs", "--json")
    assert r.returncode == 0, r.stderr
    assert {"jpeg", "jpeg2000"} <= {c["codec"] for c in json.loads(r.stdout)}


# --------------------------------------------------------------------------- item 4
@pytest.mark.parametrize("args, needles", [
    (["--qualities", "inf"], ["--qualities", "not a finite number", "'inf'"]),
    (["--qualities", "nan"], ["--qualities", "not a finite number"]),
    (["--matched-bpp", "1000"], ["--matched-bpp", "'1000'", "(0, 24]"]),
    (["--matched-bpp", "0"], ["--matched-bpp", "(0, 24]"]),
    (["--qualities", "50", "--workers", "-1"], ["--workers", "expected an integer >= 1", "'-1'"]),
    (["--qualities", "50", "--max-images", "-1"], ["--max-images", "expected an integer >= 1"]),
])
def test_sweep_bad_numbers_are_refused(tmp_path, images, args, needles, capsys):
    out = tmp_path / "rd"
    rc, _, err = run(SWEEP + ["--images-dir", images, "--dataset", "toy", "--out-root", out, *args], capsys)
    error_line(rc, err, *needles)
    assert not out.exists()


def test_sweep_out_root_that_is_a_file(tmp_path, images, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder\n")
    rc, _, err = run(SWEEP + ["--images-dir", images, "--dataset", "toy", "--out-root", blocker, "--qualities", "50"],
                     capsys)
    error_line(rc, err, "--out-root", str(blocker), "is a file, not a folder")
    assert blocker.read_text() == "not a folder\n"


def test_sweep_unreached_target_is_not_a_success(tmp_path, images, capsys):
    out = tmp_path / "rd"
    rc, _, err = run(SWEEP + ["--images-dir", images, "--dataset", "toy", "--out-root", out, "--matched-bpp", "20",
                              "--max-images", "2"], capsys)
    error_line(rc, err, "bpp20.00", "target 20 bpp not reached for 2/2 images", "highest-rate setting", code=1)
    summary = json.loads((out / "toy" / "jpeg" / "bpp20.00" / "summary.json").read_text())
    assert summary["mean"]["bpp"] < 20 * 0.95  # what the codec reached is kept, as measured


# --------------------------------------------------------------------------- item 5
class _Payload:
    """Unpickling this would run code: weights_only loading must refuse it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def _damage(kind: str, latest: Path, marker: Path) -> None:
    import torch

    data = latest.read_bytes()
    if kind == "truncated":
        latest.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        latest.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif kind == "malicious":
        torch.save({"model": _Payload(str(marker))}, latest)
    elif kind == "foreign":  # loads, but is not a training checkpoint
        torch.save({"weights": torch.zeros(2)}, latest)


@pytest.mark.parametrize("kind, problem", [
    ("truncated", "truncated or corrupt"),
    ("corrupt", "truncated or corrupt"),
    ("malicious", "refused, nothing run"),
    ("foreign", "not a training checkpoint"),
])
def test_resume_from_a_damaged_latest_pt(tmp_path, trained, kind, problem, capsys):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    marker = tmp_path / "payload-ran"
    _damage(kind, out / "latest.pt", marker)
    before = snapshot(out)
    imgs = trained.parent / "imgs"
    rc, _, err = run(["train", "--profile", "ci", "--model", "bmshj2018-hyperprior", "--rate", "r0",
                      "--train-dir", imgs, "--val-dir", imgs, "--out", out, "--quiet",
                      "--set", 'arch={"N": 8, "M": 8}', "--set", "threads=1", "--set", "batch=1",
                      "--set", "val_images=1", "--steps", "2"], capsys)
    error_line(rc, err, str(out / "latest.pt"), "cannot resume", problem)
    assert snapshot(out) == before and not marker.exists()


# --------------------------------------------------------------------------- item 6
def _project(tmp_path: Path, params: str | None) -> Path:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    if params is not None:
        (root / "params.yaml").write_text(params)
    (root / "r").mkdir()
    (root / "b.json").write_text('{"values": {}}\n')
    (root / "c.json").write_text("{}\n")
    return root


# commands that read params.yaml, with arguments that get them that far
COMMANDS = [
    ["data", "verify", "ucmerced"],
    ["sweep", "--codec", "jpeg"],
    ["bd"],
    ["train", "--model", "bmshj2018-hyperprior", "--rate", "r0"],
    ["evaluate", "--model", "bmshj2018-hyperprior", "--rate", "r0"],
    ["complexity", "--model", "bmshj2018-hyperprior"],
    ["fidelity"],
    ["ablation", "evalset"],
    ["classify", "train"],
    ["roi", "train", "--model", "mroi-cfhpm", "--rate", "r0"],
    ["report"],
    ["metrics", "r", "r", "--out-csv", "o.csv", "--out-json", "o.json"],
    ["gate", "--baseline", "b.json", "--current", "c.json"],
]
STANDALONE = ("metrics", "gate")  # without a params.yaml these run (test above)


@pytest.mark.parametrize("params, needles", [
    ("profile: huge\nseed: 0\nthreads: 2\n", ["params.yaml", "unknown profile 'huge'"]),
    ("profile: [ci\nseed: 0\n", ["params.yaml", "not valid YAML"]),
    ("- ci\n", ["params.yaml", "expected a mapping"]),
    ("profile: ci\nseed: 0\nthreads: two\n", ["params.yaml", "threads", "'two'"]),
    (None, ["params.yaml", "not found"]),
])
def test_bad_params_yaml_in_every_command(tmp_path, monkeypatch, params, needles, capsys):
    root = _project(tmp_path, params)
    monkeypatch.setenv("RSICBENCH_ROOT", str(root))
    monkeypatch.chdir(root)
    before = snapshot(root)
    for argv in COMMANDS:
        if params is None and argv[0] in STANDALONE:
            continue
        rc, _, err = run(argv, capsys)
        assert rc != 0 and "Traceback" not in err, (argv, err)  # downstream/cli.py exits 1 on bad input
        line = err.strip().splitlines()[-1]
        assert all(n in line for n in needles), (argv, line)
    assert snapshot(root) == before


def test_gate_missing_baseline(tmp_path, capsys):
    cur = tmp_path / "c.json"
    cur.write_text('{"a": 1}\n')
    rc, _, err = run(["gate", "--baseline", tmp_path / "nope.json", "--current", cur], capsys)
    error_line(rc, err, "--baseline", "nope.json", "file not found", "--update")


def test_unexpected_errors_are_one_line_unless_debug(monkeypatch, capsys):
    import rsicbench.reproduce.evaluation.gate as gate

    def boom(argv):
        raise KeyError("surprise")

    monkeypatch.setattr(gate, "main", boom)
    rc, _, err = run(["gate"], capsys)
    error_line(rc, err, "KeyError", "surprise", "(run with --debug for the traceback)", code=1)
    with pytest.raises(KeyError):
        cli_main(["--debug", "gate"])
    monkeypatch.setenv("RSICBENCH_DEBUG", "1")
    with pytest.raises(KeyError):
        cli_main(["gate"])


# --------------------------------------------------------------------------- item 8
def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_with_a_killed_sweep(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        _save(tmp_path / "imgs" / "c" / f"i{i:02d}.png", rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
    out = tmp_path / "rd"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "stderr.txt", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rsicbench.cli", *SWEEP[:-4], "--workers", "2", "--per-class", "40",
             "--max-images", "40", "--images-dir", str(tmp_path / "imgs"), "--dataset", "toy",
             "--out-root", str(out), "--qualities", "50", "--matched-bpp"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log)
    workers: list[int] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not any(out.rglob("parts/**/*.json")):
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
        workers = _children(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.time() + 2  # the kernel kills them at once; unfixed, they finished their image first
        while time.time() < deadline and any(map(_alive, workers)):
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)], "pool workers outlived the killed sweep"
        time.sleep(0.5)
        log_text = (tmp_path / "stderr.txt").read_text()
        assert "Traceback" not in log_text and "BrokenPipeError" not in log_text, log_text[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
