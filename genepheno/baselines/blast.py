"""BLAST baselines: transfer the phenotype annotations of similar training sequences (NCBI BLAST+).

Two scores, as the GenePheno paper's max-BLAST and w-BLAST (CAFA's BLAST baseline and
DeepGOPlus's DiamondScore respectively). For a query q with hits H(q) (training sequences, e-value
<= ``evalue``, q itself excluded), y_h,t = 1 when hit h is annotated with term t:

* ``max``:       score(q, t) = max over h in H(q) with y_h,t of pident(q, h) / 100
  (the best alignment identity among hits carrying t; 0 when no hit carries it);
* ``weighted``:  score(q, t) = sum_h bitscore(q, h) * y_h,t / sum_h bitscore(q, h).

One alignment per (query, subject) pair counts: the best-scoring HSP (``-max_hsps 1``; the highest
bitscore is kept if several appear). A query without any hit gets a row of NaN (no prediction).
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import sparse

from genepheno.errors import GenephenoError

OUTFMT = "6 qseqid sseqid evalue bitscore pident nident length"
COLUMNS = OUTFMT.split()[1:]
MODES = ("max", "weighted")
INSTALL_HINT = ("install NCBI BLAST+ (Debian/Ubuntu: apt-get install ncbi-blast+; "
                "conda: conda install -c bioconda blast)")


def blast_binaries():
    """Paths of makeblastdb and blastp, or GenephenoError saying how to install them."""
    found = {name: shutil.which(name) for name in ("makeblastdb", "blastp")}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise GenephenoError(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")
    return found


def parse_blast_tab(lines, source="blastp output"):
    """Parse ``-outfmt '6 qseqid sseqid evalue bitscore pident nident length'`` lines into a list of
    (qseqid, sseqid, evalue, bitscore, pident, nident, length) tuples."""
    hits = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.rstrip("\r\n").split("\t")
        if len(f) != len(COLUMNS):
            raise GenephenoError(f"{source}:{lineno}: expected {len(COLUMNS)} columns ({', '.join(COLUMNS)}), "
                                 f"got {len(f)}")
        try:
            hits.append((f[0], f[1], float(f[2]), float(f[3]), float(f[4]), int(f[5]), int(f[6])))
        except ValueError:
            raise GenephenoError(f"{source}:{lineno}: non-numeric value in {line.strip()!r}") from None
    return hits


def _write_fasta(path, prefix, seqs):
    with open(path, "w") as fh:
        for i, (sid, seq) in enumerate(seqs.items()):
            if not seq:
                raise GenephenoError(f"sequence {sid!r} is empty")
            fh.write(f">{prefix}{i}\n{seq}\n")


def _run(cmd):
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        last = (e.stderr or e.stdout or "").strip().splitlines()
        raise GenephenoError(f"{Path(cmd[0]).name} failed (exit {e.returncode}): "
                             f"{last[-1] if last else 'no message'}") from None


def run_blastp(query_seqs, train_seqs, evalue=1e-3, threads=1, max_target_seqs=500, workdir=None):
    """BLAST every query against a database of the training sequences.

    Sequences are renamed internally (BLAST rewrites IDs that look like database accessions) and
    mapped back. Returns hits as (query_id, train_id, evalue, bitscore, pident, nident, length).
    """
    bins = blast_binaries()
    if not query_seqs or not train_seqs:
        return []
    qids, sids = list(query_seqs), list(train_seqs)
    with tempfile.TemporaryDirectory(prefix="genepheno-blast-", dir=workdir) as tmp:
        tmp = Path(tmp)
        _write_fasta(tmp / "train.fa", "s", train_seqs)
        _write_fasta(tmp / "query.fa", "q", query_seqs)
        _run([bins["makeblastdb"], "-in", str(tmp / "train.fa"), "-dbtype", "prot", "-out", str(tmp / "train")])
        _run([bins["blastp"], "-query", str(tmp / "query.fa"), "-db", str(tmp / "train"),
              "-outfmt", OUTFMT, "-evalue", str(evalue), "-max_target_seqs", str(max_target_seqs),
              "-max_hsps", "1", "-num_threads", str(threads), "-out", str(tmp / "hits.tsv")])
        with open(tmp / "hits.tsv") as fh:
            raw = parse_blast_tab(fh, "blastp output")
    return [(qids[int(q[1:])], sids[int(s[1:])], *rest) for q, s, *rest in raw]


def transfer_annotations(hits, query_ids, train_ids, train_labels, mode="max"):
    """Scores (queries x terms) from BLAST hits and training labels; see the module docstring.

    ``hits``: (query_id, train_id, evalue, bitscore, pident, ...) tuples; hits of a query on its own
    ID and hits to unknown IDs are ignored.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    labels = np.asarray(train_labels, dtype=bool)
    q_index = {q: i for i, q in enumerate(query_ids)}
    s_index = {s: j for j, s in enumerate(train_ids)}
    if labels.shape[0] != len(s_index):
        raise ValueError(f"train_labels has {labels.shape[0]} rows for {len(s_index)} training sequences")
    best = {}  # (query row, train row) -> (bitscore, pident): best HSP per pair
    for q, s, _evalue, bits, pident, *_ in hits:
        if q == s or q not in q_index or s not in s_index:
            continue
        key = (q_index[q], s_index[s])
        if key not in best or bits > best[key][0]:
            best[key] = (bits, pident)
    out = np.full((len(q_index), labels.shape[1]), np.nan)
    if not best:
        return out
    pairs = np.array(list(best), dtype=int)
    vals = np.array(list(best.values()), dtype=float)
    qi, si = pairs[:, 0], pairs[:, 1]
    has_hit = np.unique(qi)
    if mode == "weighted":
        w = sparse.csr_matrix((vals[:, 0], (qi, si)), shape=(len(q_index), labels.shape[0]))
        num = np.asarray(w @ labels.astype(float))
        out[has_hit] = num[has_hit] / np.asarray(w.sum(axis=1))[has_hit]
    else:
        order = np.argsort(qi, kind="stable")
        qi, si, ident = qi[order], si[order], vals[order, 1] / 100
        starts = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(qi)]):
            out[qi[a]] = (labels[si[a:b]] * ident[a:b, None]).max(axis=0)
    return out


def blast_scores(query_seqs, train_seqs, train_labels, mode="max", evalue=1e-3, threads=1,
                 max_target_seqs=500, workdir=None):
    """max-BLAST / w-BLAST scores for ``query_seqs`` (dict id -> protein sequence).

    ``train_labels``: bool (n_train x n_terms), rows in the order of ``train_seqs`` (dict id ->
    sequence). Returns float (n_query x n_terms), rows in the order of ``query_seqs``: NaN rows for
    queries without hits. A query whose ID is also a training ID never receives its own annotations.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    hits = run_blastp(query_seqs, train_seqs, evalue=evalue, threads=threads,
                      max_target_seqs=max_target_seqs, workdir=workdir)
    return transfer_annotations(hits, list(query_seqs), list(train_seqs), train_labels, mode)


def dataset_blast_scores(dataset, split="test", mode="weighted", evalue=1e-3, threads=1, workdir=None):
    """max-/w-BLAST scores for the genes of a dataset split (rows in split order), transferring
    the labels of the dataset's training genes. Genes without a hit get NaN rows."""
    from genepheno.log import logger
    blast_binaries()  # fail before reading anything when BLAST+ is missing
    seqs = dataset.sequences()
    train = [dataset.gene_ids[i] for i in dataset.split_indices("train")]
    query = [dataset.gene_ids[i] for i in dataset.split_indices(split)]
    scores = blast_scores({g: seqs[g] for g in query}, {g: seqs[g] for g in train},
                          dataset.labels[dataset.split_indices("train")], mode=mode, evalue=evalue,
                          threads=threads, workdir=workdir)
    logger.info("blastp: %d of %d %s genes have a hit (e-value <= %g) in %d training genes",
                int((~np.isnan(scores)).any(axis=1).sum()), len(query), split, evalue, len(train))
    return scores
