"""The embedding store: one SQLite file mapping record ID and sequence SHA-256 to a vector.

Format (``format_version`` 1)::

    PRAGMA application_id = 1195723845   -- 'GPHE'; user_version = 1
    meta(key TEXT PRIMARY KEY, value TEXT)            -- values are JSON
    vectors(sha256 TEXT PRIMARY KEY,                  -- SHA-256 of the cleaned sequence (hex)
            length INTEGER,                           -- residues
            vector BLOB)                              -- dim little-endian float32 (4*dim bytes)
    records(id TEXT PRIMARY KEY,                      -- FASTA record ID, e.g. NCBIGene:7157
            sha256 TEXT REFERENCES vectors(sha256))

``meta`` holds ``format``, ``format_version``, ``spec`` (the encoder's full description), its
``model``, ``layer``, ``pooling``, ``dtype`` (the compute dtype; vectors are always stored as
float32) and ``dim`` as separate keys, ``shards`` (null for a full run, else the list of
``K/N`` slices embedded into it) and ``genepheno`` (the version that created it).

Identical sequences are stored once (``vectors`` is keyed by hash); a record points to its
sequence's vector. A writer commits one transaction per batch (rollback journal, synchronous=FULL),
so a run killed at any moment, SIGKILL included, loses at most the batch in flight and leaves a
readable file: SQLite rolls an interrupted transaction back the next time the file is opened.
Any SQLite client reads it: ``SELECT r.id, v.vector FROM records r JOIN vectors v USING (sha256)``
and ``numpy.frombuffer(vector, '<f4')``.
"""

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np

from genepheno import __version__
from genepheno.errors import GenephenoError, InputError

FORMAT = "genepheno-embeddings"
FORMAT_VERSION = 1
APPLICATION_ID = 0x47504845  # 'GPHE'
# spec keys that must agree before vectors from two runs may be mixed or compared
IDENTITY_KEYS = ("encoder", "model", "version", "layer", "pooling", "dim", "dtype", "weights", "window",
                 "min_overlap")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (sha256 TEXT PRIMARY KEY, length INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL REFERENCES vectors(sha256));
"""
_CHUNK = 500  # SQL parameters per query


def spec_mismatch(a, b, ignore=()):
    """None when specs ``a`` and ``b`` describe the same vectors, else 'key: a-value vs b-value; ...'."""
    diffs = [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in IDENTITY_KEYS
             if k not in ignore and a.get(k) != b.get(k)]
    return "; ".join(diffs) or None


def _connect(path, readonly=False):
    path = Path(path)
    if readonly:
        # mode=rw when we may write: SQLite can then roll back a transaction a killed writer left behind
        mode = "ro" if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK) else "rw"
        uri = f"{path.resolve().as_uri()}?mode={mode}"
        con = sqlite3.connect(uri, uri=True, timeout=60)
    else:
        con = sqlite3.connect(path, timeout=60)
    try:
        con.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as e:
        con.close()
        raise InputError(path, f"is not a genepheno embedding store ({e})", "create one with genepheno embed") from None
    return con


def _check_format(con, path):
    try:
        app = con.execute("PRAGMA application_id").fetchone()[0]
        if app != APPLICATION_ID:
            raise InputError(path, "is not a genepheno embedding store", "create one with genepheno embed")
        meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
    except sqlite3.DatabaseError as e:
        raise InputError(path, f"is not a genepheno embedding store ({e})", "create one with genepheno embed") \
            from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(path, f"store format {meta.get('format_version')} is newer than this genepheno "
                               f"understands ({FORMAT_VERSION})", "upgrade genepheno")
    return meta


class EmbeddingStore:
    """Read-only view: ``meta``, ``ids`` (in the order they were added), ``get(ids)``,
    ``get_sha(hashes)``, ``len()``, ``in``."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "embedding store not found", "create it with genepheno embed")
        self._con = _connect(self.path, readonly=True)
        self.meta = _check_format(self._con, self.path)
        self._sha = dict(self._con.execute("SELECT id, sha256 FROM records ORDER BY rowid"))

    @property
    def ids(self):
        return list(self._sha)

    @property
    def spec(self):
        return self.meta["spec"]

    @property
    def dim(self):
        return self.meta["dim"]

    def __len__(self):
        return len(self._sha)

    def __contains__(self, rid):
        return rid in self._sha

    def sha256(self, rid):
        return self._sha[rid]

    def get_sha(self, hashes):
        """Vectors for sequence hashes (float32, (n, dim)); KeyError lists the missing ones."""
        hashes = list(hashes)
        found = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), _CHUNK):
            part = unique[i:i + _CHUNK]
            rows = self._con.execute(f"SELECT sha256, vector FROM vectors WHERE sha256 IN ({','.join('?' * len(part))})",
                                     part)
            found.update(rows)
        missing = [h for h in unique if h not in found]
        if missing:
            raise KeyError(missing)
        out = np.empty((len(hashes), self.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = np.frombuffer(found[h], dtype="<f4")
        return out

    def get(self, ids):
        """Vectors for record IDs, in the order given (float32, (len(ids), dim))."""
        ids = list(ids)
        missing = [i for i in ids if i not in self._sha]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(self.path, f"{len(missing)} of {len(ids)} record ID(s) have no embedding: {shown}",
                             "embed the sequences for these IDs with genepheno embed")
        return self.get_sha([self._sha[i] for i in ids])

    def close(self):
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(path):
    """Open an existing store read-only."""
    return EmbeddingStore(path)


class StoreWriter:
    """Create or extend a store made with ``spec``; one ``add`` = one committed transaction."""

    def __init__(self, path, spec, shard=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._con = _connect(self.path)
            if new:
                with self._con:
                    self._con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self._con.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
                    self._con.executescript(_SCHEMA)
                    meta = dict(format=FORMAT, format_version=FORMAT_VERSION, spec=spec, genepheno=__version__,
                                shards=None if shard is None else [shard_label(shard)],
                                **{k: spec.get(k) for k in ("model", "layer", "pooling", "dtype", "dim")})
                    self._con.executemany("INSERT INTO meta VALUES (?, ?)",
                                          [(k, json.dumps(v)) for k, v in meta.items()])
        except sqlite3.DatabaseError as e:
            raise InputError(self.path, f"cannot be written as an embedding store ({e})") from None
        self.meta = _check_format(self._con, self.path)
        diff = spec_mismatch(self.meta["spec"], spec)
        if diff:
            raise InputError(self.path, f"was made with different settings ({diff})",
                             "write to another store (-o) or use the same --model/--layer/--dtype/--weights")
        if not new:
            self._add_shard(shard)

    def _add_shard(self, shard):
        shards = self.meta.get("shards")
        if shards is None:
            return  # already a full run
        updated = None if shard is None else sorted(set(shards) | {shard_label(shard)})
        if updated != shards:
            with self._con:
                self._con.execute("UPDATE meta SET value = ? WHERE key = 'shards'", (json.dumps(updated),))
            self.meta["shards"] = updated

    def done_hashes(self):
        return {h for (h,) in self._con.execute("SELECT sha256 FROM vectors")}

    def record_hashes(self):
        return dict(self._con.execute("SELECT id, sha256 FROM records"))

    def add(self, vectors=(), records=()):
        """Commit ``vectors`` [(sha, length, float32 array)] and ``records`` [(id, sha)] together."""
        with self._con:
            self._con.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)",
                                  [(h, int(n), np.asarray(v, dtype="<f4").tobytes()) for h, n, v in vectors])
            self._con.executemany("INSERT OR REPLACE INTO records VALUES (?, ?)", list(records))

    def close(self):
        self._con.close()


# ---------------------------------------------------------------- shards

def parse_shard(text):
    """'K/N' (1 <= K <= N) -> (K, N)."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise GenephenoError(f"--shard {text}: expected K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise GenephenoError(f"--shard {text}: K must be between 1 and N")
    return k, n


def shard_label(shard):
    return f"{shard[0]}/{shard[1]}"


def in_shard(sha_hex, shard):
    """Deterministic slice by sequence hash: shard K of N holds hashes with int(hash) % N == K - 1."""
    return shard is None or int(sha_hex[:16], 16) % shard[1] == shard[0] - 1


# ---------------------------------------------------------------- merge

def merge_stores(out, inputs):
    """Join stores made with the same spec into ``out`` (written atomically). Returns a summary."""
    out, inputs = Path(out), [Path(p) for p in inputs]
    if not inputs:
        raise GenephenoError("embed merge: give at least one input store")
    if out.exists() and not any(out.resolve() == p.resolve() for p in inputs if p.exists()):
        raise InputError(out, "already exists", "choose another -o, or list it among the inputs to extend it")
    views = [open_store(p) for p in inputs]
    try:
        first = views[0]
        for v in views[1:]:
            diff = spec_mismatch(first.spec, v.spec)
            if diff:
                raise InputError(v.path, f"was made with different settings than {first.path} ({diff})",
                                 "only stores from the same model, layer, pooling and dimension can be merged")
        shard_sets = [v.meta.get("shards") for v in views]
        shards = None if any(s is None for s in shard_sets) else sorted({s for ss in shard_sets for s in ss})
        if shards:
            ns = {int(s.split("/")[1]) for s in shards}
            if len(ns) == 1 and len(shards) == next(iter(ns)):
                shards = None  # every slice of one split is present: a full run
        owner = {}
        for v in views:
            for rid, h in v._sha.items():
                if owner.setdefault(rid, (h, v.path))[0] != h:
                    raise InputError(v.path, f"record {rid!r} has a different sequence than in {owner[rid][1]}",
                                     "merge stores made from the same FASTA")
    finally:
        for v in views:
            v.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        w = StoreWriter(tmp, first.spec)
        con = w._con
        with con:
            con.execute("UPDATE meta SET value = ? WHERE key = 'shards'", (json.dumps(shards),))
        for p in inputs:
            con.execute("ATTACH DATABASE ? AS src", (str(p),))
            with con:
                con.execute("INSERT OR IGNORE INTO vectors SELECT * FROM src.vectors")
                con.execute("INSERT OR IGNORE INTO records SELECT id, sha256 FROM src.records ORDER BY rowid")
            con.execute("DETACH DATABASE src")
        n_rec = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        n_vec = con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
        w.close()
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dict(records=n_rec, vectors=n_vec, inputs=len(inputs), shards=shards)
