"""Dataset base class (torchgeo pattern), manifests, downloads and safe archive extraction.

Each dataset class names its official URL(s) and the checksums it knows, finds its source
(local mirror first, download second), checks it (`_verify`), and writes lossless PNGs plus
`data/<ds>/manifest.tsv` (columns: relpath, class, width, height, sha256_rgb; a dataset may
append extra columns, readers go by header name). Errors name the file and the problem.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from rsicbench import fsutil
from rsicbench.paths import cache_dir, project_root

MANIFEST_COLUMNS = ("relpath", "class", "width", "height", "sha256_rgb")
IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".bmp")


class DatasetError(RuntimeError):
    """A dataset source or output that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Entry:
    """One row of data/<ds>/manifest.tsv."""

    relpath: str
    label: str | None
    width: int
    height: int
    sha256_rgb: str
    extra: tuple[tuple[str, str], ...] = ()


def progress(iterable: Iterable, total: int | None = None, desc: str = "") -> Iterable:
    """A tqdm bar on a terminal, silent otherwise (DVC logs stay readable)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)


# ---------------------------------------------------------------- manifests
def write_manifest(path: str | os.PathLike, entries: Iterable[Entry]) -> None:
    entries = sorted(entries, key=lambda e: e.relpath)
    extra_cols = sorted({k for e in entries for k, _ in e.extra})
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow([*MANIFEST_COLUMNS, *extra_cols])
    for e in entries:
        ex = dict(e.extra)
        w.writerow([e.relpath, e.label or "", e.width, e.height, e.sha256_rgb, *(ex.get(c, "") for c in extra_cols)])
    fsutil.write_text(path, buf.getvalue())


def read_manifest(path: str | os.PathLike) -> list[Entry]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found (run `rsicbench data fetch` first)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            extra = tuple((k, v) for k, v in r.items() if k not in MANIFEST_COLUMNS)
            out.append(Entry(r["relpath"], r["class"] or None, int(r["width"]), int(r["height"]), r["sha256_rgb"], extra))
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetError(f"{path}:{i}: malformed manifest row ({e})") from None
    return out


# ---------------------------------------------------------------- downloads
def download_url(url: str, filename: str, sha256: str | None = None, dest: Path | None = None,
                 timeout: float = 10.0, md5: str | None = None) -> Path:
    """Download `url` to `<cache>/<filename>` (atomic), checking sha256 (or md5) when known.

    `timeout` bounds the connect and every read, so an unreachable host fails in seconds.
    An existing file with the right checksum is reused (resumable across runs).
    """
    dest = Path(dest) if dest else cache_dir() / filename
    if dest.is_file() and _digest_ok(dest, sha256, md5):
        return dest
    try:
        with fsutil.atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=filename,
                                            disable=not sys.stderr.isatty()) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    f.write(block)
                    bar.update(len(block))
            if sha256 is not None:
                got = fsutil.sha256_file(tmp)
                if got != sha256:
                    raise DatasetError(f"{url}: downloaded file has sha256 {got}, expected {sha256}")
            elif md5 is not None:
                got = _md5_file(tmp)
                if got != md5:
                    raise DatasetError(f"{url}: downloaded file has md5 {got}, expected {md5}")
    except DatasetError:
        raise
    except (OSError, ValueError) as e:  # ValueError: a malformed URL
        raise DatasetError(f"{url}: download failed ({e}); put a local copy in place instead") from None
    return dest


def _md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)  # only to match a publisher's md5; sha256 where we choose
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest_ok(path: Path, sha256: str | None, md5: str | None) -> bool:
    if sha256 is not None:
        return fsutil.sha256_file(path) == sha256
    if md5 is not None:
        return _md5_file(path) == md5
    return True


# ---------------------------------------------------------------- safe extraction
def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in p.parts:
        raise DatasetError(f"{archive}: member {name!r} escapes the target folder; refusing to extract")
    return p


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, max_files: int = 50_000,
                 max_bytes: int = 20 * 1024**3) -> Path:
    """Extract a zip or tar archive into `dest`, refusing anything unsafe.

    Refused before anything is written: absolute member paths, `..` components, links
    (symlinks and hard links: a dataset archive never needs them and they can point outside
    `dest`), device files, more than `max_files` members or `max_bytes` uncompressed (archive
    bombs), a name that is both a file and a folder (in the archive, or against what `dest`
    already holds), a file listed twice, a folder of `dest` that is a symlink.
    Extraction goes to a temporary sibling `.<dest>.partial/`. Any failure while reading (a
    bad CRC, a truncated or corrupt member) removes it and raises DatasetError naming the
    member. A new `dest` is then renamed into place in one step; into an existing folder the
    files are moved in one by one, so what was there and is not in the archive is kept.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"{dest}: extraction target exists and is not a folder")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                _check_budget(archive, len(infos), sum(i.file_size for i in infos), max_files, max_bytes)
                for i in infos:
                    _check_member_name(i.filename, archive)
                    if (i.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DatasetError(f"{archive}: member {i.filename!r} is a symlink; refusing to extract")
                plan = [(_check_member_name(i.filename, archive), i.is_dir(), i.file_size, i.filename,
                         (lambda i=i: zf.open(i))) for i in infos]
                _extract_plan(plan, archive, dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                _check_budget(archive, len(members), sum(m.size for m in members), max_files, max_bytes)
                for m in members:
                    _check_member_name(m.name, archive)
                    if m.issym() or m.islnk():
                        raise DatasetError(f"{archive}: member {m.name!r} is a link; refusing to extract")
                    if not (m.isfile() or m.isdir()):
                        raise DatasetError(f"{archive}: member {m.name!r} is not a regular file; refusing to extract")
                plan = [(_check_member_name(m.name, archive), m.isdir(), m.size, m.name,
                         (lambda m=m: tf.extractfile(m))) for m in members]
                _extract_plan(plan, archive, dest)
        else:
            raise DatasetError(f"{archive}: not a zip or tar archive")
    except _ARCHIVE_ERRORS as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{archive}: corrupt archive ({type(e).__name__}: {e})") from None
    return dest


# What reading a damaged archive raises (zipfile: BadZipFile on a bad CRC, zlib.error;
# tarfile: ReadError, EOFError on truncation; NotImplementedError/RuntimeError: unsupported
# compression or encryption).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, NotImplementedError,
                   RuntimeError)


def _check_clashes(plan: list, archive: Path, dest: Path) -> None:
    files: set[PurePosixPath] = set()
    dirs: set[PurePosixPath] = set()
    for rel, is_dir, *_ in plan:
        if not rel.parts:
            continue  # "./"
        dirs.update(PurePosixPath(*rel.parts[:k]) for k in range(1, len(rel.parts)))
        if is_dir:
            dirs.add(rel)
        elif rel in files:
            raise DatasetError(f"{archive}: member {str(rel)!r} appears twice; refusing to extract")
        else:
            files.add(rel)
    both = sorted(str(p) for p in files & dirs)
    if both:
        raise DatasetError(f"{archive}: {both[0]!r} is both a file and a folder in the archive; refusing to extract")
    if dest.is_dir():
        for rel in sorted(dirs):
            t = dest / rel
            if t.is_symlink() or (t.exists() and not t.is_dir()):
                raise DatasetError(f"{t}: is a file or link where {archive} has a folder; refusing to extract")
        for rel in sorted(files):
            if (dest / rel).is_dir() and not (dest / rel).is_symlink():
                raise DatasetError(f"{dest / rel}: is a folder where {archive} has a file; refusing to extract")


def _extract_plan(plan: list, archive: Path, dest: Path) -> None:
    """plan: (relpath, is_dir, declared size, member name, opener) per member."""
    _check_clashes(plan, archive, dest)
    tmp = _fresh_tmp(dest)
    name = ""
    try:
        for rel, is_dir, size, name, opener in plan:
            if not rel.parts:
                continue
            target = tmp / rel
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with opener() as src, open(target, "wb") as out:
                _copy_limited(src, out, size, archive, name)
        name = ""
        _move_into(tmp, dest)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, _ARCHIVE_ERRORS) and not isinstance(e, DatasetError):
            what = f"member {name!r}" if name else f"moving into {dest}"
            raise DatasetError(f"{archive}: {what} cannot be extracted ({type(e).__name__}: {e})") from None
        raise


def _move_into(tmp: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    for d, _subdirs, names in os.walk(tmp):
        rel = Path(d).relative_to(tmp)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for n in names:
            os.replace(Path(d) / n, dest / rel / n)
    shutil.rmtree(tmp)


def _check_budget(archive: Path, n: int, size: int, max_files: int, max_bytes: int) -> None:
    if n > max_files:
        raise DatasetError(f"{archive}: {n} members exceed the limit of {max_files}; refusing to extract")
    if size > max_bytes:
        raise DatasetError(f"{archive}: {size} bytes uncompressed exceed the limit of {max_bytes}; refusing to extract")


def _fresh_tmp(dest: Path) -> Path:
    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _copy_limited(src, out, declared: int, archive: Path, name: str) -> None:
    # Headers can lie about sizes; count what is really written.
    written = 0
    for block in iter(lambda: src.read(1 << 20), b""):
        written += len(block)
        if written > declared:
            raise DatasetError(f"{archive}: member {name!r} is larger than its header says; refusing to extract")
        out.write(block)


# ---------------------------------------------------------------- checksums shipped in the project
def shipped_checksums(dataset: str) -> dict[str, str]:
    """sha256 of known source files, from datasets/source_checksums.tsv."""
    path = Path(__file__).with_name("source_checksums.tsv")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        ds, name, digest = line.split()
        if ds == dataset:
            out[name] = digest
    return out


def verify_file(path: Path, sha256: str) -> None:
    got = fsutil.sha256_file(path)
    if got != sha256:
        raise DatasetError(f"{path}: sha256 {got} does not match the known {sha256} (corrupt or different file)")


# ---------------------------------------------------------------- the base class
class Dataset:
    """Base of every dataset class.

    Subclasses set `name`, `urls` (official sources), `checksums` (file -> sha256, may be
    empty when the publisher gives none), `has_classes`, and implement `_verify()`
    (find and check the source) and `build()` (write images + manifest).
    """

    name: str = ""
    urls: tuple[str, ...] = ()
    checksums: dict[str, str] = {}
    has_classes: bool = False
    env_var: str | None = None
    layout: str = ""

    def __init__(self, data_root: str | os.PathLike | None = None, settings: dict[str, Any] | None = None):
        self.data_root = Path(data_root) if data_root else project_root() / "data"
        self.settings = settings or {}

    @property
    def root(self) -> Path:
        return self.data_root / self.name

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.tsv"

    @property
    def splits_dir(self) -> Path:
        return self.root / "splits"

    def option(self, key: str, default: Any = None) -> Any:
        return (self.settings.get(self.name) or {}).get(key, default)

    def source_dir(self, shared_parts: tuple[str, ...]) -> Path | None:
        """Local source: $<env_var>, then configs/data.yaml `<ds>.path`, then the mirror."""
        from rsicbench.paths import shared_path

        for cand in (os.environ.get(self.env_var) if self.env_var else None, self.option("path")):
            if cand:
                p = Path(cand).expanduser()
                if not p.is_absolute():
                    p = project_root() / p
                if not p.is_dir():
                    raise DatasetError(f"{p}: {self.name} source folder does not exist")
                return p
        return shared_path(*shared_parts)

    def _verify(self) -> Path:
        raise NotImplementedError

    def build(self, workers: int = 1) -> list[Entry]:
        raise NotImplementedError

    def sources(self) -> list:
        """Where `build` gets its raw files, in the order tried (datasets/sources.py `Source`)."""
        raise NotImplementedError

    def entries(self) -> list[Entry]:
        return read_manifest(self.manifest_path)

    def verify_outputs(self, workers: int = 1) -> int:
        """Decode every output PNG and compare its pixel hash with the manifest."""
        entries = self.entries()
        _parallel_map(lambda e: check_png(self.images_dir / e.relpath, e), entries, workers, f"verify {self.name}")
        return len(entries)

    @property
    def aux_dir(self) -> Path:
        """Side outputs of the fetch (a DVC output of its own): fetch.json, masks, extra bands."""
        return self.root / "aux"

    def write_info(self, info: dict[str, Any]) -> None:
        """aux/fetch.json: what was built and from which kind of source (no absolute paths,
        so the file is the same on every machine)."""
        fsutil.write_json(self.aux_dir / "fetch.json", {"dataset": self.name, **info})

    def prune(self, keep: set[str]) -> None:
        """Remove output PNGs that are not in `keep` (a changed subset), so folder == manifest."""
        if not self.images_dir.is_dir():
            return
        for p in sorted(self.images_dir.rglob("*.png")):
            if p.relative_to(self.images_dir).as_posix() not in keep:
                p.unlink()


def check_png(path: Path, entry: Entry) -> None:
    from rsicbench.imageio import pixel_sha256, read_rgb

    rgb = read_rgb(path)
    if (rgb.shape[1], rgb.shape[0]) != (entry.width, entry.height):
        raise DatasetError(f"{path}: size {rgb.shape[1]}x{rgb.shape[0]}, manifest says {entry.width}x{entry.height}")
    got = pixel_sha256(rgb)
    if got != entry.sha256_rgb:
        raise DatasetError(f"{path}: pixel sha256 {got} does not match the manifest ({entry.sha256_rgb})")


def png_is_current(path: Path, sha256: str) -> bool:
    """True when `path` exists and decodes to pixels with `sha256` (lets a fetch resume)."""
    from rsicbench.imageio import ImageError, pixel_sha256, read_rgb

    if not path.is_file():
        return False
    try:
        return pixel_sha256(read_rgb(path)) == sha256
    except ImageError:
        return False


def _parallel_map(fn, items: list, workers: int, desc: str) -> list:
    """Map with a thread pool (PNG/zlib and hashing release the GIL); order preserved."""
    if workers <= 1:
        return [fn(x) for x in progress(items, len(items), desc)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(progress(ex.map(fn, items), len(items), desc))


def rank(names: Iterable[str], seed: int = 0, salt: str = "split") -> list[str]:
    """Names in a seeded pseudo-random order that depends only on (names, seed, salt):
    sha256(f"{salt}/{seed}/{name}") sorted, ties by name. Used for splits and subsets."""
    names = sorted(set(names))
    return sorted(names, key=lambda n: (hashlib.sha256(f"{salt}/{seed}/{n}".encode()).hexdigest(), n))
