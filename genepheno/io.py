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

# mkstemp/mkdtemp create private (0600/0700) entries; give finished outputs the usual mode.
_UMASK = os.umask(0)
os.umask(_UMASK)

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path):
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


class _TextReader:
    """Context manager over a text stream that turns gzip/decoding failures raised inside the
    ``with`` block into an InputError naming the file. ``__enter__`` returns the raw stream, so
    iteration runs at full speed."""

    def __init__(self, stream, path):
        self.stream, self.path = stream, path

    def __enter__(self):
        return self.stream

    # Plain use without ``with`` (no error translation then).
    def __iter__(self):
        return iter(self.stream)

    def readline(self, *a):
        return self.stream.readline(*a)

    def read(self, *a):
        return self.stream.read(*a)

    def close(self):
        if self.stream is not sys.stdin:
            self.stream.close()

    def __exit__(self, kind, exc, tb):
        self.close()
        if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
            raise InputError(self.path, f"unreadable compressed data ({exc})", "re-download the file") from None
        if isinstance(exc, UnicodeDecodeError):
            raise InputError(self.path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        return False


def open_text(path):
    """Open a plain or gzip-compressed text file for reading (gzip detected by its magic bytes).
    Use as ``with open_text(p) as fh:``; '-' reads stdin."""
    if str(path) == "-":
        return _TextReader(sys.stdin, "<stdin>")
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")
    return _TextReader(io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline=None), path)


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
            # The final name and mtime=0 in the gzip header keep the bytes reproducible.
            with open(tmp, "wb") as sink, gzip.GzipFile(path.name, "wb", 6, sink, mtime=0) as raw:
                fh = raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
                with fh:
                    yield fh
        else:
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as fh:
                yield fh
        os.chmod(tmp, 0o666 & ~_UMASK)
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
        os.chmod(tmp, 0o777 & ~_UMASK)
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
