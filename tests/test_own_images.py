"""A user's folder as a dataset of the whole pipeline (issue 15 part 4): the params entry
resolves to own-images@<name> stages, the folder chain with labels ends in downstream OA
rows, and 16-bit multi-band GeoTIFFs follow rsicbench/imageio.py's conversion rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from rsicbench.imageio import ImageError, read_rgb, write_png

REPO = Path(__file__).resolve().parents[1]
# GeoTIFF georeferencing: ModelPixelScale, ModelTiepoint, GeoKeyDirectory (UTM 20N)
GEO_TAGS = [(33550, "d", 3, (30.0, 30.0, 0.0), False), (33922, "d", 6, (0, 0, 0, 6e5, 2e6, 0), False),
            (34735, "H", 16, (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32620), False)]


def _rule(v: np.ndarray) -> np.ndarray:
    return np.round(v.astype(np.float64) * 255 / 65535).astype(np.uint8)


# ------------------------------------------------------------------ conversion rule
@pytest.fixture
def bands4(rng):
    return rng.integers(0, 65536, (24, 40, 4), dtype=np.uint16)  # R, G, B, NIR


def test_geotiff_16bit_4band_pixel_interleaved(tmp_path, bands4):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "scene.tif"
    tifffile.imwrite(p, bands4, photometric="minisblack", planarconfig="contig", extratags=GEO_TAGS)
    with tifffile.TiffFile(p) as t:
        assert t.is_geotiff and t.series[0].dtype == np.uint16
    assert np.array_equal(read_rgb(p), _rule(bands4[:, :, :3]))  # 4th band dropped like alpha


def test_geotiff_16bit_4band_band_interleaved_and_band_choice(tmp_path, bands4):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "planar.tif"
    bgrn = bands4[:, :, [2, 1, 0, 3]]
    tifffile.imwrite(p, np.moveaxis(bgrn, 2, 0), photometric="minisblack", planarconfig="separate", extratags=GEO_TAGS)
    assert np.array_equal(read_rgb(p), _rule(bgrn[:, :, :3]))  # planar read band-last, not as 4 rows
    assert np.array_equal(read_rgb(p, bands=[3, 2, 1]), _rule(bands4[:, :, :3]))
    assert np.array_equal(read_rgb(p, bands=[4]), np.repeat(_rule(bands4[:, :, 3:]), 3, axis=2))


def test_more_than_four_bands_needs_a_band_choice(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "ms7.tif"
    cube = rng.integers(0, 65536, (7, 16, 20), dtype=np.uint16)
    tifffile.imwrite(p, cube, photometric="minisblack", planarconfig="separate", extratags=GEO_TAGS)
    with pytest.raises(ImageError, match=r"ms7\.tif: 7 bands; name the three"):
        read_rgb(p)
    assert np.array_equal(read_rgb(p, bands=[4, 3, 2]), _rule(np.moveaxis(cube[[3, 2, 1]], 0, 2)))
    with pytest.raises(ImageError, match=r"ms7\.tif: bands \[8, 3, 2\]"):
        read_rgb(p, bands=[8, 3, 2])


def test_imagefolder_fetch_of_multiband_geotiffs_with_bands(tmp_path, rng, capsys):
    tifffile = pytest.importorskip("tifffile")
    from rsicbench.datasets import cli as data_cli
    from rsicbench.imageio import read_rgb as read_png

    cubes = {f"s{i}": rng.integers(0, 65536, (6, 20, 24), dtype=np.uint16) for i in range(3)}
    (tmp_path / "src").mkdir()
    for name, cube in cubes.items():
        tifffile.imwrite(tmp_path / "src" / f"{name}.tif", cube, photometric="minisblack", planarconfig="separate",
                         extratags=GEO_TAGS)
    argv = ["fetch", "imagefolder", "--source", str(tmp_path / "src"), "--name", "ms", "--data-root", str(tmp_path)]
    assert data_cli.main(argv) == 1  # 6 bands and no choice: refused, nothing written
    assert "s0.tif: 6 bands; name the three to use as R, G, B" in capsys.readouterr().err
    assert not (tmp_path / "ms" / "manifest.tsv").exists()
    assert data_cli.main([*argv, "--bands", "5", "4", "1"]) == 0
    for name, cube in cubes.items():
        assert np.array_equal(read_png(tmp_path / "ms/images" / f"{name}.png"), _rule(np.moveaxis(cube[[4, 3, 0]], 0, 2)))
    assert json.loads((tmp_path / "ms/aux/fetch.json").read_text())["bands"] == [5, 4, 1]


@pytest.mark.shared
def test_real_landsat_and_38cloud_geotiffs_follow_the_rule(shared):
    tifffile = pytest.importorskip("tifffile")
    files = [shared / "datasets/landsat8/LC08_L1TP_224078_20200518_20200518_01_RT_B4.TIF",
             shared / "datasets/samples/38cloud/red_patch_192_10_by_12_LC08_L1TP_002053_20160520_20170324_01_T1.TIF"]
    for f in files:
        raw = tifffile.imread(f)
        assert raw.dtype == np.uint16 and raw.ndim == 2
        rgb = read_rgb(f)
        assert rgb.shape == (*raw.shape, 3)
        assert np.array_equal(rgb, np.repeat(_rule(raw)[:, :, None], 3, axis=2))


# ------------------------------------------------------------------ the params entry -> DVC stages
def _stages(tmp_path: Path, own: dict) -> dict:
    """dvc's own resolution of this checkout's dvc.yaml with params.yaml `own_images` = own."""
    from dvc.repo import Repo

    root = tmp_path / "repo"
    root.mkdir(parents=True)
    Repo.init(str(root), no_scm=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "configs", root / "configs")  # dvc.yaml `vars` reads the stage lists there
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["own_images"] == {}, "the shipped entry is empty: no own-images stage by default"
    params["own_images"] = own
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with Repo(str(root)) as repo:
        stages = {s.name: s for s in repo.index.stages}
        graph = repo.index.graph
        return {name: {"cmd": s.cmd, "deps": [d.def_path for d in s.deps], "outs": [o.def_path for o in s.outs],
                       "before_report": name != "report" and any(
                           x.name == "report" for x in _dependents(graph, s))}
                for name, s in stages.items()}


def _dependents(graph, stage):
    """The stages that run after `stage` (dvc's edges point from a stage to its upstream)."""
    import networkx as nx

    return nx.ancestors(graph, stage)


def test_params_entry_resolves_to_own_images_stages(tmp_path):
    none = _stages(tmp_path / "a", {})
    assert not [n for n in none if n.startswith("own-images")] and "report" in none
    got = _stages(tmp_path / "b", {"mytiles": {"dir": "/data/tiles", "tile": 256, "bands": [4, 3, 2]},
                                   "plain": {"dir": "imgs"}})
    mine = sorted(n for n in got if n.startswith("own-images"))
    assert mine == ["own-images@mytiles", "own-images@plain"]
    st = got["own-images@mytiles"]
    assert st["cmd"].startswith("rsicbench folder --name mytiles ")
    assert all(opt in st["cmd"] for opt in ("--dir /data/tiles", "--tile 256", "--bands 4 3 2"))
    assert "--no-report" in st["cmd"] and "/data/tiles" in st["deps"]
    assert {"data/mytiles", "results/rd/mytiles", "results/bd/mytiles.json", "results/downstream/mytiles",
            "results/classifier/mytiles", "results/own/mytiles.json"} <= set(st["outs"])
    assert st["before_report"] and got["own-images@plain"]["before_report"]
    # the stage's command line parses: every key of the entry is an option of `rsicbench folder`
    from rsicbench.reproduce.commands import folder as cli_folder
    with pytest.raises(SystemExit) as e:
        cli_folder.main([*st["cmd"].split()[2:], "--help"])
    assert e.value.code == 0


# ------------------------------------------------------------------ the chain, end to end
def _textures(rng, kind: str, n: int) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        y, x = np.mgrid[0:64, 0:64]
        if kind == "stripes":
            base = 128 + 100 * np.sin(x / rng.uniform(2, 4) + rng.uniform(0, 6))
        else:
            base = 128 + 60 * np.cos((x + y) / rng.uniform(12, 20)) + rng.normal(0, 25, (64, 64))
        img = np.clip(base[:, :, None] + rng.normal(0, 4, (64, 64, 3)), 0, 255).astype(np.uint8)
        out.append(img)
    return out


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A ci-profile project root (this checkout's configs) with a tiny, fast classifier."""
    root = tmp_path / "proj"
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "profile": "ci", "threads": 1}))
    ds = yaml.safe_load((root / "configs/downstream.yaml").read_text())
    ds["ci"].update(input_size=64, epochs=1, per_class=None, batch_size=8)
    (root / "configs/downstream.yaml").write_text(yaml.safe_dump(ds))
    for var in ("RSICBENCH_PROFILE", "RSICBENCH_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RSICBENCH_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.mark.slow
def test_labelled_folder_chain_ends_in_downstream_oa_rows(project, tmp_path, rng):
    from rsicbench.reproduce.commands import folder as cli_folder
    src = tmp_path / "mine"
    for kind in ("stripes", "blobs"):
        for i, img in enumerate(_textures(rng, kind, 10)):
            write_png(src / kind / f"{kind}{i}.png", img)
    rc = cli_folder.main(["--dir", str(src), "--name", "mine", "--codecs", "jpeg", "jpeg2000", "--learned",
                          "--no-lpips", "--no-report", "--record", "results/own/mine.json"])
    assert rc == 0
    rec = json.loads((project / "results/own/mine.json").read_text())
    assert rec["exit"] == 0 and rec["downstream"] == "results/downstream/mine/summary.json"
    assert [s["step"] for s in rec["steps"]] == ["fetch", "split", "sweep jpeg", "sweep jpeg2000", "bd",
                                                 "classify-train", "classify-eval"]
    bd = json.loads((project / "results/bd/mine.json").read_text())
    assert "jpeg" in json.dumps(bd)
    summ = json.loads((project / "results/downstream/mine/summary.json").read_text())
    assert set(summ["codecs"]) == {"jpeg", "jpeg2000"}
    test_n = len((project / "data/mine/splits/test.txt").read_text().split())
    for codec in ("jpeg", "jpeg2000"):
        points = sorted((project / "results/downstream/mine" / codec).glob("*.json"))
        assert len(points) == 3  # the ci profile's three rate points, each scored
        for p in points:
            r = json.loads(p.read_text())
            assert 0.0 <= r["oa"] <= 100.0 and np.asarray(r["confusion"]).sum() == test_n
    train = json.loads((project / "results/classifier/mine/train.json").read_text())
    assert train["classes"] == ["blobs", "stripes"]
    assert not (project / "results/downstream/mine/skipped.json").exists()


def test_unlabelled_folder_records_why_downstream_did_not_run(project, tmp_path, rng):
    from rsicbench.reports import cli as report_cli
    from rsicbench.reproduce.commands import folder as cli_folder
    src = tmp_path / "flat"
    for i, img in enumerate(_textures(rng, "blobs", 6)):
        write_png(src / f"im{i}.png", img)
    rc = cli_folder.main(["--dir", str(src), "--name", "flat", "--codecs", "jpeg", "jpeg2000", "--learned",
                          "--no-lpips", "--no-report", "--record", "results/own/flat.json"])
    assert rc == 0
    rec = json.loads((project / "results/own/flat.json").read_text())
    assert rec["downstream"].startswith("skipped: no class labels")
    for sub in ("classifier", "downstream"):
        assert "no class labels" in json.loads((project / "results" / sub / "flat/skipped.json").read_text())["skipped"]
    assert report_cli.main(["--out", "report/index.html"]) == 0
    html = (project / "report/index.html").read_text()
    assert "Not run: no class labels" in html and "<h3>flat" in html


def test_reserved_names_are_refused(project, tmp_path, capsys):
    from rsicbench.reproduce.commands import folder as cli_folder
    (tmp_path / "x").mkdir()
    assert cli_folder.main(["--dir", str(tmp_path / "x"), "--name", "ucmerced"]) == 2
    assert "--name 'ucmerced': reserved" in capsys.readouterr().err
