"""File helpers shared by every command: gzip detected by content, atomic writes, checksums."""

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

from genepheno.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path):
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


class _CheckedText(io.TextIOWrapper):
    """Text reader that turns gzip/decoding failures into an InputError naming the file."""

    def __init__(self, raw, path):
        super().__init__(raw, encoding="utf-8", errors="strict", newline=None)
        self._path = path

    def _wrap(self, fn, *a):
        try:
            return fn(*a)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise InputError(self._path, f"unreadable compressed data ({e})", "re-download the file") from None
        except UnicodeDecodeError as e:
            raise InputError(self._path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None

    def readline(self, *a):
        return self._wrap(super().readline, *a)

    def read(self, *a):
        return self._wrap(super().read, *a)

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def open_text(path):
    """Open a plain or gzip-compressed text file for reading; gzip is detected by its magic bytes."""
    path = Path(path)
    if str(path) == "-":
        return sys.stdin
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")
    return _CheckedText(raw, path)


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_write(path, mode="w", compress=None):
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    ``path == "-"`` writes to stdout. ``compress`` defaults to True when the name ends in .gz.
    """
    if str(path) == "-":
        yield sys.stdout.buffer if "b" in mode else sys.stdout
        sys.stdout.flush()
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress is None:
        compress = path.name.endswith(".gz")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if compress:
            # mtime=0 keeps the bytes reproducible
            raw = gzip.GzipFile(tmp, "wb", mtime=0)
            fh = raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        else:
            fh = open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}))
        with fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path, overwrite=False):
    """Build a folder under a temporary name beside ``path``; rename it into place on success."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(path, "already exists", "choose another output folder or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_tsv(path, required=(), comment="#"):
    """Read a headed TSV into a list of dicts, checking that ``required`` columns exist.

    Lines starting with ``comment`` before the header are skipped.
    """
    rows = []
    with open_text(path) as fh:
        header = None
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if header is None:
                if not line or line.startswith(comment):
                    continue
                header = line.split("\t")
                missing = [c for c in required if c not in header]
                if missing:
                    raise InputError(f"{path}:{lineno}", f"header lacks column(s) {', '.join(missing)}",
                                     f"expected tab-separated columns {', '.join(required)}")
                continue
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) < len(header):
                fields += [""] * (len(header) - len(fields))
            rows.append(dict(zip(header, fields)))
    if header is None:
        raise InputError(path, "is empty (no header line)")
    return rows


def write_tsv(path, header, rows):
    """Write rows (sequences of values) under ``header`` atomically; .gz honoured; '-' is stdout."""
    with atomic_write(path) as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join("" if v is None else str(v) for v in row) + "\n")
