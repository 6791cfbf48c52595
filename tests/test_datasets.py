"""Dataset classes on generated fixtures, safe extraction, tiling, and the mirror when present."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from rsicbench.datasets import DATASETS, ImageFolder, get_dataset, list_datasets, load_split
from rsicbench.datasets import cli as data_cli
from rsicbench.datasets import ucmerced as ucm
from rsicbench.datasets.base import DatasetError, read_manifest, safe_extract
from rsicbench.datasets.external import DOTA, NWPURESISC45
from rsicbench.datasets.landsat8 import Landsat8, scene_to_rgb8
from rsicbench.datasets.tiler import tile_image
from rsicbench.imageio import ImageError, pixel_sha256, read_rgb


# ------------------------------------------------------------------ UC Merced on a fake source
@pytest.fixture
def fake_ucmerced(tmp_path, monkeypatch, rng):
    """A 2-class source folder (one odd-size image) + a shipped manifest of its hashes."""
    src = tmp_path / "src"
    rows = ["class\tname\twidth\theight\tsha256_rgb\tsha256_tif"]
    for c in ("beach", "forest"):
        for i in range(10):
            h, w = (256, 253) if (c, i) == ("beach", 3) else (256, 256)
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            (src / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(src / c / f"{c}{i:02d}.tif")
            rows.append(f"{c}\t{c}{i:02d}\t{w}\t{h}\t{pixel_sha256(img)}\t-")
    manifest = tmp_path / "shipped.tsv"
    manifest.write_text("# test\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(ucm, "SHIPPED_MANIFEST", manifest)
    monkeypatch.setenv("RSICBENCH_UCMERCED", str(src))
    return src


def test_ucmerced_builds_verified_pngs_native_size(fake_ucmerced, tmp_path):
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    entries = ds.build(workers=2)
    assert len(entries) == 20
    odd = read_rgb(ds.images_dir / "beach/beach03.png")
    assert odd.shape == (256, 253, 3)  # kept at native size, not resized or padded
    assert ds.verify_outputs() == 20
    assert [e.relpath for e in read_manifest(ds.manifest_path)][:2] == ["beach/beach00.png", "beach/beach01.png"]
    # resumable: a second build rewrites nothing
    mtime = (ds.images_dir / "forest/forest05.png").stat().st_mtime_ns
    ds.build()
    assert (ds.images_dir / "forest/forest05.png").stat().st_mtime_ns == mtime


def test_ucmerced_one_changed_pixel_is_refused_naming_the_file(fake_ucmerced, tmp_path):
    p = fake_ucmerced / "forest" / "forest07.tif"
    a = np.array(Image.open(p))
    a[10, 20, 1] ^= 1
    Image.fromarray(a).save(p)
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    with pytest.raises(DatasetError, match=r"forest07\.tif: pixel sha256 .* does not match"):
        ds.build()


def test_ucmerced_corrupt_and_truncated_sources(fake_ucmerced, tmp_path):
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    p = fake_ucmerced / "beach" / "beach05.tif"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(ImageError, match="beach05.tif"):
        ds.build()
    p.write_bytes(b"garbage")
    with pytest.raises(ImageError, match="beach05.tif"):
        ds.build()


def test_ucmerced_subset_per_class(fake_ucmerced, tmp_path):
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0, "ucmerced": {"per_class": 3}})
    labels = [e.label for e in ds.build()]
    assert labels.count("beach") == 3 and labels.count("forest") == 3


def test_verify_outputs_catches_a_changed_png(fake_ucmerced, tmp_path):
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    ds.build()
    p = ds.images_dir / "beach/beach01.png"
    a = read_rgb(p)
    a[0, 0, 0] ^= 255
    Image.fromarray(a).save(p)
    with pytest.raises(DatasetError, match="beach01.png: pixel sha256"):
        ds.verify_outputs()


def test_ucmerced_missing_source_path_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RSICBENCH_UCMERCED", str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match="absent: ucmerced source folder does not exist"):
        ucm.UCMerced(data_root=tmp_path, settings={})._verify()


def test_shipped_manifest_is_complete():
    rows = ucm.shipped_manifest()
    assert len(rows) == 2100 and len({r["class"] for r in rows}) == 21
    assert sum((r["width"], r["height"]) != ("256", "256") for r in rows) == 44


# ------------------------------------------------------------------ safe extraction
def _zip(path, members: dict[str, bytes], symlink: str | None = None):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt"])
def test_zip_path_traversal_refused(tmp_path, name):
    arc = _zip(tmp_path / "x.zip", {"ok.txt": b"1", name: b"2"})
    with pytest.raises(DatasetError, match="refusing to extract"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_symlink_and_bombs_refused(tmp_path):
    with pytest.raises(DatasetError, match="symlink"):
        safe_extract(_zip(tmp_path / "s.zip", {"a": b"1"}, symlink="link"), tmp_path / "o1")
    with pytest.raises(DatasetError, match="members exceed"):
        safe_extract(_zip(tmp_path / "m.zip", {f"f{i}": b"" for i in range(11)}), tmp_path / "o2", max_files=10)
    with pytest.raises(DatasetError, match="bytes uncompressed exceed"):
        safe_extract(_zip(tmp_path / "b.zip", {"big": b"\0" * 10_000}), tmp_path / "o3", max_bytes=1000)


def _tar(path, add):
    with tarfile.open(path, "w:gz") as tf:
        add(tf)
    return path


def test_tar_traversal_and_links_refused(tmp_path):
    def member(tf, name, data=b"x", kind=tarfile.REGTYPE, link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.size = kind, link, (len(data) if kind == tarfile.REGTYPE else 0)
        tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    with pytest.raises(DatasetError, match="escapes"):
        safe_extract(_tar(tmp_path / "t1.tgz", lambda tf: member(tf, "../../x")), tmp_path / "o")
    with pytest.raises(DatasetError, match="is a link"):
        safe_extract(_tar(tmp_path / "t2.tgz", lambda tf: member(tf, "l", kind=tarfile.SYMTYPE, link="/etc")), tmp_path / "o")
    with pytest.raises(DatasetError, match="is a link"):
        safe_extract(_tar(tmp_path / "t3.tgz", lambda tf: member(tf, "h", kind=tarfile.LNKTYPE, link="../x")), tmp_path / "o")
    out = safe_extract(_tar(tmp_path / "ok.tgz", lambda tf: member(tf, "d/a.txt", b"hello")), tmp_path / "o")
    assert (out / "d" / "a.txt").read_bytes() == b"hello"

    def clash(tf):
        member(tf, "c/x", b"1")
        member(tf, "c", b"a file named like the folder")

    with pytest.raises(DatasetError, match="'c' is both a file and a folder"):
        safe_extract(_tar(tmp_path / "t4.tgz", clash), tmp_path / "o4")
    assert not (tmp_path / "o4").exists() and not (tmp_path / ".o4.partial").exists()


def test_good_zip_extracts_and_non_archive_refused(tmp_path):
    out = safe_extract(_zip(tmp_path / "g.zip", {"UCMerced_LandUse/Images/a/a00.tif": b"abc"}), tmp_path / "ex")
    assert (out / "UCMerced_LandUse/Images/a/a00.tif").read_bytes() == b"abc"
    (tmp_path / "n.zip").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="n.zip: not a zip or tar"):
        safe_extract(tmp_path / "n.zip", tmp_path / "ex2")


def _no_partial(tmp_path):
    return not [p for p in tmp_path.rglob(".*.partial")]


def test_zip_bad_crc_raises_dataset_error_and_leaves_nothing(tmp_path):
    arc = tmp_path / "crc.zip"
    with zipfile.ZipFile(arc, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr("bad.txt", b"A" * 100)
    raw = bytearray(arc.read_bytes())
    raw[raw.index(b"A" * 100) + 50] ^= 0xFF  # one flipped payload byte, headers intact
    arc.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"crc.zip: member 'bad.txt' cannot be extracted \(BadZipFile"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _no_partial(tmp_path)


def test_truncated_tar_raises_dataset_error(tmp_path):
    arc = tmp_path / "t.tgz"
    with tarfile.open(arc, "w:gz") as tf:
        data = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    arc.write_bytes(arc.read_bytes()[:100_000])
    with pytest.raises(DatasetError, match="t.tgz"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and _no_partial(tmp_path)


@pytest.mark.parametrize("members, msg", [
    ({"a": b"file", "a/b": b"child"}, "'a' is both a file and a folder"),
    ({"d/x": b"1", "d": b"file after folder"}, "'d' is both a file and a folder"),
])
def test_zip_file_folder_clash_refused_before_writing(tmp_path, members, msg):
    with pytest.raises(DatasetError, match=msg):
        safe_extract(_zip(tmp_path / "c.zip", members), tmp_path / "out")
    assert not (tmp_path / "out").exists() and _no_partial(tmp_path)


def test_zip_duplicate_member_refused(tmp_path):
    arc = tmp_path / "dup.zip"
    with zipfile.ZipFile(arc, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("x.txt", b"1")
        zf.writestr("x.txt", b"2")
    with pytest.raises(DatasetError, match="'x.txt' appears twice"):
        safe_extract(arc, tmp_path / "out")


def test_extract_into_existing_folder_keeps_its_files(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "keep.txt").write_bytes(b"mine")
    (out / "sub" / "keep2.txt").write_bytes(b"mine too")
    safe_extract(_zip(tmp_path / "a.zip", {"new.txt": b"new", "sub/n.txt": b"n"}), out)
    assert (out / "keep.txt").read_bytes() == b"mine" and (out / "sub" / "keep2.txt").read_bytes() == b"mine too"
    assert (out / "new.txt").read_bytes() == b"new" and (out / "sub" / "n.txt").read_bytes() == b"n"
    assert _no_partial(tmp_path)
    # what the folder holds clashes with the archive: refused, nothing changed
    (out / "blocker").write_bytes(b"a file")
    with pytest.raises(DatasetError, match="blocker: is a file or link where"):
        safe_extract(_zip(tmp_path / "b.zip", {"blocker/inner.txt": b"x", "new.txt": b"changed"}), out)
    assert (out / "new.txt").read_bytes() == b"new" and (out / "blocker").read_bytes() == b"a file"
    assert _no_partial(tmp_path)
    with pytest.raises(DatasetError, match="keep.txt: extraction target exists and is not a folder"):
        safe_extract(_zip(tmp_path / "c.zip", {"x": b"1"}), out / "keep.txt")
    assert (out / "keep.txt").read_bytes() == b"mine"


# ------------------------------------------------------------------ tiler
def test_tiler_grid_remainder_and_invalid_tiles(rng):
    img = rng.integers(1, 256, (600, 530, 3), dtype=np.uint8)
    img[0:5, 300:310] = 0  # a black bar in tile (0, 1)
    img[256:512, 0:256] = 77  # a constant tile (1, 0)
    tiles = tile_image(img, 256)
    assert [(t.row, t.col) for t in tiles] == [(0, 0), (1, 1)]
    assert tiles[1].name("s") == "s_r001_c001"
    assert np.array_equal(tiles[1].rgb, img[256:512, 256:512])
    assert len(tile_image(img, 256, max_nodata_frac=0.01)) == 3


def test_image_smaller_than_a_tile_is_skipped_with_warning(rng):
    with pytest.warns(UserWarning, match="small.png: 200x300 is smaller than one 256x256 tile"):
        assert tile_image(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8), 256, source="small.png") == []


# ------------------------------------------------------------------ Landsat-8 on generated bands
def _landsat_scene(folder, rng, h=600, w=530):
    bands = {}
    for b in ("B2", "B3", "B4"):
        a = rng.integers(6000, 9000, (h, w)).astype(np.uint16)
        a[:, :40] = 0  # nodata wedge on the left edge
        bands[b] = a
    bands["B3"][400:410, 300:310] = 0  # a nodata hole in one band only
    for b, a in bands.items():
        tifffile.imwrite(folder / f"LC08_TEST_{b}.TIF", a)
    return bands


def test_landsat8_rule_and_tiling(tmp_path, rng, monkeypatch):
    src = tmp_path / "ls"
    src.mkdir()
    bands = _landsat_scene(src, rng)
    rgb, valid, bounds = scene_to_rgb8({b: src / f"LC08_TEST_{b}.TIF" for b in ("B4", "B3", "B2")})
    lo, hi = np.percentile(bands["B4"][valid], [2, 98])
    assert bounds["B4"] == [lo, hi]
    assert rgb[..., 0][valid].min() == 0 and rgb[..., 0][valid].max() == 255
    expect = np.clip(np.round((bands["B4"][5, 100] - lo) * 255 / (hi - lo)), 0, 255)
    assert rgb[5, 100, 0] == expect
    monkeypatch.setenv("RSICBENCH_LANDSAT8", str(src))
    ds = Landsat8(data_root=tmp_path / "data", settings={})
    names = sorted(e.relpath for e in ds.build())
    # tiles (0,0),(1,0) touch the wedge; (1,1) holds the B3 hole -> only (0,1) survives
    assert names == ["LC08_TEST_r000_c001.png"]


def test_landsat8_missing_band_named(tmp_path, rng, monkeypatch):
    src = tmp_path / "ls"
    src.mkdir()
    _landsat_scene(src, rng, 300, 300)
    (src / "LC08_TEST_B2.TIF").unlink()
    monkeypatch.setenv("RSICBENCH_LANDSAT8", str(src))
    with pytest.raises(DatasetError, match="LC08_TEST: scene lacks band"):
        Landsat8(data_root=tmp_path / "d", settings={}).build()


# ------------------------------------------------------------------ image folders and external loaders
def _folder(root, layout: dict[str, tuple[int, int]], rng, mode="RGB"):
    for rel, (h, w) in layout.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        a = rng.integers(1, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(a).convert(mode).save(p)


def test_imagefolder_layouts(tmp_path, rng):
    _folder(tmp_path / "cls", {"a/x.png": (20, 30), "b/y.jpg": (16, 16)}, rng)
    ds = ImageFolder(tmp_path / "cls", name="mine", data_root=tmp_path / "d")
    assert [(e.relpath, e.label, e.width) for e in ds.build()] == [("a/x.png", "a", 30), ("b/y.png", "b", 16)]
    _folder(tmp_path / "flat", {"x.png": (8, 8), "y.png": (9, 9)}, rng, mode="L")
    ents = ImageFolder(tmp_path / "flat", name="flat", data_root=tmp_path / "d").build()
    assert [e.label for e in ents] == [None, None]
    _folder(tmp_path / "mixed", {"x.png": (8, 8), "c/y.png": (8, 8)}, rng)
    with pytest.raises(DatasetError, match="mixed layout"):
        ImageFolder(tmp_path / "mixed", name="m", data_root=tmp_path / "d").build()


def test_imagefolder_tiled_skips_small_images(tmp_path, rng):
    _folder(tmp_path / "big", {"s.png": (100, 100), "l.png": (300, 520)}, rng)
    ds = ImageFolder(tmp_path / "big", name="big", tile=256, data_root=tmp_path / "d")
    with pytest.warns(UserWarning, match="s.png"):
        ents = ds.build()
    assert [e.relpath for e in ents] == ["l_r000_c000.png", "l_r000_c001.png"]


def test_nwpu_subset_and_missing_source(tmp_path, rng, monkeypatch):
    root = tmp_path / "NWPU-RESISC45"
    _folder(root, {f"{c}/{c}_{i:03d}.jpg": (16, 16) for c in ("airport", "beach") for i in range(1, 8)}, rng)
    monkeypatch.setenv("RSICBENCH_NWPU_RESISC45", str(tmp_path))
    ds = NWPURESISC45(data_root=tmp_path / "d", settings={"seed": 0, "nwpu_resisc45": {"per_class": 5}})
    ents = ds.build()
    assert len(ents) == 10 and {e.label for e in ents} == {"airport", "beach"}
    monkeypatch.delenv("RSICBENCH_NWPU_RESISC45")
    with pytest.raises(DatasetError, match="gcheng-nwpu"):
        NWPURESISC45(data_root=tmp_path / "d", settings={})._verify()


def test_dota_loader_tiles(tmp_path, rng, monkeypatch):
    _folder(tmp_path / "dota" / "images", {"P0001.png": (520, 300)}, rng)
    monkeypatch.setenv("RSICBENCH_DOTA", str(tmp_path / "dota"))
    ents = DOTA(data_root=tmp_path / "d", settings={}).build()
    assert [e.relpath for e in ents] == ["P0001_r000_c000.png", "P0001_r001_c000.png"]


def test_registry_cli_and_load_split(tmp_path, rng):
    assert {"ucmerced", "landsat8", "samples", "nwpu_resisc45", "aid", "dota", "gaofen"} <= set(list_datasets())
    assert set(DATASETS) == set(list_datasets())
    with pytest.raises(DatasetError, match="unknown dataset"):
        get_dataset("nope", settings={})
    _folder(tmp_path / "src", {f"{c}/{c}{i}.png": (8, 8) for c in "ab" for i in range(10)}, rng)
    common = ["--data-root", str(tmp_path / "d"), "--name", "user", "--profile", "ci"]
    assert data_cli.main(["fetch", "imagefolder", "--source", str(tmp_path / "src"), *common]) == 0
    assert data_cli.main(["split", "imagefolder", *common]) == 0
    test = load_split("user", "test", root=tmp_path / "d")
    assert [s.label for s in test] == ["a", "b"] and all(s.path.is_file() for s in test)
    assert len(load_split("user", "all", root=tmp_path / "d")) == 20
    assert data_cli.main(["verify", "nope", "--profile", "ci"]) == 1


# ------------------------------------------------------------------ the real mirror
def test_mirror_ucmerced_few_images(shared, tmp_path, monkeypatch):
    rows = ucm.shipped_manifest()
    pick = [r for r in rows if r["name"] in ("airplane55", "beach00", "tenniscourt99")]
    monkeypatch.setattr(ucm.UCMerced, "selected", lambda self: pick)
    monkeypatch.delenv("RSICBENCH_UCMERCED", raising=False)
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    ents = ds.build()
    assert {(e.relpath, e.width, e.height) for e in ents} >= {("airplane/airplane55.png", 253, 256)}
    assert ds.verify_outputs() == 3


def test_mirror_landsat8_tiling(shared, tmp_path, monkeypatch):
    monkeypatch.delenv("RSICBENCH_LANDSAT8", raising=False)
    ds = Landsat8(data_root=tmp_path / "data", settings={})
    ents = ds.build()
    assert 0 < len(ents) < (1860 // 256) * (2041 // 256)  # the nodata wedges drop some tiles
    raw = np.stack([tifffile.imread(p) for p in sorted((shared / "datasets" / "landsat8").glob("*_B[234].TIF"))])
    assert (raw == 0).any()  # the scene really has nodata
    for e in ents:  # no kept tile touches a raw nodata pixel
        y, x = (int(v.split("=")[1]) for v in dict(e.extra)["source"].split("@")[1].split(","))
        assert (raw[:, y:y + 256, x:x + 256] != 0).all(), e.relpath
    info = (ds.aux_dir / "fetch.json").read_text()
    assert '"B4"' in info and '"tiles_kept": %d' % len(ents) in info


# ------------------------------------------------------------------ downloads and the official-zip path
def test_download_url_checks_sha256(tmp_path):
    from rsicbench.datasets.base import download_url
    from rsicbench.fsutil import sha256_file

    src = tmp_path / "remote.bin"
    src.write_bytes(b"payload" * 100)
    digest = sha256_file(src)
    got = download_url(src.as_uri(), "x.bin", digest, dest=tmp_path / "cache" / "x.bin")
    assert got.read_bytes() == src.read_bytes()
    with pytest.raises(DatasetError, match="expected 0000"):
        download_url(src.as_uri(), "y.bin", "0" * 64, dest=tmp_path / "cache" / "y.bin")
    assert not (tmp_path / "cache" / "y.bin").exists()  # atomic: nothing half-written stays
    with pytest.raises(DatasetError, match="download failed"):
        download_url((tmp_path / "absent").as_uri(), "z.bin", dest=tmp_path / "cache" / "z.bin")


def test_ucmerced_from_official_zip_layout(fake_ucmerced, tmp_path, monkeypatch):
    """No mirror: the zip is 'downloaded', extracted safely and checked image by image."""
    arc = tmp_path / "UCMerced_LandUse.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        for p in sorted(fake_ucmerced.rglob("*.tif")):
            zf.write(p, f"UCMerced_LandUse/Images/{p.parent.name}/{p.name}")
    from rsicbench.datasets import sources

    calls = []
    monkeypatch.setattr(sources, "download_url", lambda url, name, *a, **k: calls.append(url) or arc)
    monkeypatch.delenv("RSICBENCH_UCMERCED")
    monkeypatch.delenv("RSICBENCH_OFFLINE")  # download_url is replaced: nothing leaves the machine
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp_path / "no_mirror_here"))
    monkeypatch.setenv("RSICBENCH_CACHE", str(tmp_path / "cache"))
    ds = ucm.UCMerced(data_root=tmp_path / "data", settings={"seed": 0})
    assert len(ds.build()) == 20 and calls == [ucm.UCMerced.urls[0]]
    info = json.loads((ds.aux_dir / "fetch.json").read_text())
    assert info["source"] == {"kind": "url", "location": ucm.UCMerced.urls[0], "pin": "",
                              "checksum": "none published; pixel sha256 of every image (datasets/ucmerced_manifest.tsv)"}


def test_mirror_samples_cloud_mask(shared, tmp_path, monkeypatch):
    from rsicbench.datasets.samples import Samples

    monkeypatch.delenv("RSICBENCH_SAMPLES", raising=False)
    ds = Samples(data_root=tmp_path / "data", settings={})
    ents = {e.relpath: e for e in ds.build()}
    cloud = next(e for r, e in ents.items() if r.startswith("38cloud/"))
    mask = np.asarray(Image.open(ds.root / dict(cloud.extra)["mask"]))
    assert mask.shape == (384, 384) and set(np.unique(mask).tolist()) == {0, 255}
    assert 0.2 < (mask == 255).mean() < 0.4  # ~31% cloud, as documented for the patch
    assert sum(r.startswith("dota/") for r in ents) > 0


def test_aid_and_gaofen_layouts(tmp_path, rng, monkeypatch):
    from rsicbench.datasets.external import AID, Gaofen

    _folder(tmp_path / "aid_dl" / "AID", {f"Airport/airport_{i}.jpg": (30, 30) for i in range(1, 4)}, rng)
    monkeypatch.setenv("RSICBENCH_AID", str(tmp_path / "aid_dl"))
    assert [e.label for e in AID(data_root=tmp_path / "d", settings={}).build()] == ["Airport"] * 3
    gid = tmp_path / "GID" / "image_RGB"
    _folder(gid, {"GF2_PMS1_x.tif": (300, 600), "GF2_small.tif": (100, 100)}, rng)
    monkeypatch.setenv("RSICBENCH_GAOFEN", str(tmp_path / "GID"))
    with pytest.warns(UserWarning, match="GF2_small.tif"):
        ents = Gaofen(data_root=tmp_path / "d", settings={}).build()
    assert [e.relpath for e in ents] == ["GF2_PMS1_x_r000_c000.png", "GF2_PMS1_x_r000_c001.png"]
