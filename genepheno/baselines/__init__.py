"""Baseline predictors the GenePheno model is compared with (``genepheno baseline NAME``).

Each baseline is trained on the dataset's train split (val only for early stopping / tuning) and
returns a (genes x terms) score matrix in [0, 1] for the genes of one split, in the conventions of
:mod:`genepheno.metrics` (NaN = no prediction). :func:`run_baseline` max-propagates it over the
dataset's term hierarchy, so every result obeys the ontology.

* ``naive``:   each term's training frequency, the same for every gene (CAFA's naive baseline);
* ``blast``:   w-BLAST (``blast_mode="weighted"``, default) or max-BLAST (``"max"``) annotation
  transfer from training sequences with real blastp (:mod:`genepheno.baselines.blast`);
* ``kmer-lr``: the weight-free k-mer encoder + one-vs-rest L2 logistic regression
  (:mod:`genepheno.baselines.kmer_lr`; the paper's kmer2Vec+LR analogue);
* ``go-mlp``:  an MLP from the gene's GO annotations to phenotypes (:mod:`genepheno.baselines.go_mlp`;
  DeepPheno-like).
"""

import contextlib
import os

import numpy as np

from genepheno.errors import GenephenoError
from genepheno.log import logger

NAMES = ("naive", "blast", "kmer-lr", "go-mlp")


def _naive(ds, split, **kw):
    from genepheno.baselines.naive import naive_scores
    return naive_scores(ds, split)


def _blast(ds, split, threads=1, blast_mode="weighted", **kw):
    from genepheno.baselines.blast import dataset_blast_scores
    return dataset_blast_scores(ds, split, mode=blast_mode, threads=threads,
                                **{k: v for k, v in kw.items() if k in ("evalue", "workdir")})


def _kmer_lr(ds, split, seed=0, threads=1, **kw):
    from genepheno.baselines.kmer_lr import kmer_lr_scores
    return kmer_lr_scores(ds, split, seed=seed, **kw)


def _go_mlp(ds, split, seed=0, threads=1, **kw):
    from genepheno.baselines.go_mlp import go_mlp_scores
    return go_mlp_scores(ds, split, seed=seed, **kw)


REGISTRY = {"naive": _naive, "blast": _blast, "kmer-lr": _kmer_lr, "go-mlp": _go_mlp}


@contextlib.contextmanager
def torch_threads(n):
    """Run torch on ``n`` threads inside the block (None: leave as is)."""
    # OpenMP threads that spin while they wait make small ops ~30x slower when another process
    # holds a core (measured: 2.7 ms vs 85 ms per BCE step on a busy 2-core machine); passive
    # waiting costs nothing on an idle one. Read once, when OpenMP starts: a caller's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_baseline(name, dataset, split="test", seed=0, threads=1, **options):
    """Scores (genes of ``split`` x dataset terms) of baseline ``name``, max-propagated, in [0, 1].

    ``dataset`` is a :class:`~genepheno.data.dataset.Dataset` or a name/path. Options per baseline:
    blast: ``blast_mode`` ("weighted" | "max"), ``evalue``; kmer-lr: ``features`` (precomputed
    k-mer embeddings of all dataset genes, rows in dataset order), ``C`` (skip tuning);
    go-mlp: ``hidden``, ``max_epochs``, ``patience``. Unknown options are ignored by a baseline
    that does not use them. ``threads`` None: all CPUs (torch threads and blastp -num_threads).
    """
    from genepheno.data import load_dataset
    from genepheno.data.dataset import Dataset
    from genepheno.predictions import max_propagate
    if name not in REGISTRY:
        raise GenephenoError(f"unknown baseline {name!r}; choose one of {', '.join(NAMES)}")
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    ds.split_indices(split)  # validates the split name
    if not len(ds.split_indices("train")):
        raise GenephenoError(f"dataset {ds.name} has no training genes")
    threads = threads or os.cpu_count() or 1
    with torch_threads(threads):
        scores = REGISTRY[name](ds, split, seed=seed, threads=threads, **options)
    scores = np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0)  # NaN stays NaN
    return max_propagate(scores, ds.term_parents)


def write_baseline(path, dataset, split, scores, min_score=0.0):
    """Write ``run_baseline`` scores as a predictions file (NaN rows, i.e. genes without a
    prediction, are not written). Returns the number of rows written."""
    from genepheno.predictions import write_predictions
    idx = dataset.split_indices(split)
    n = write_predictions(path, [dataset.gene_ids[i] for i in idx], [dataset.symbols[i] for i in idx],
                          dataset.term_ids, dataset.term_names, scores, min_score=min_score)
    n_genes = int((~np.isnan(scores)).any(axis=1).sum())
    logger.info("wrote %d predictions for %d of %d %s genes to %s", n, n_genes, len(idx), split, path)
    return n
