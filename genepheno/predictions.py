"""The predictions file, shared by `predict`, every baseline and `evaluate`.

``predictions.tsv`` (``.gz`` honoured, ``-`` is stdout): a header line, then one row per scored
(gene, term), sorted by gene then descending score (ties by term ID)::

    gene_id  term_id  score  gene_symbol  term_name  concepts

``score`` is in [0, 1] with 4 decimals and obeys the ontology (an ancestor never scores below a
descendant). ``concepts`` (GenePheno only, else empty) lists the top GO concepts behind the
score as ``GO:…|name|contribution;…``. The first three columns are what CAFA-evaluator reads, so
the file can be scored by it unchanged (the header line is skipped there as an unknown term).
"""

import numpy as np

from genepheno.errors import InputError
from genepheno.io import atomic_write, open_text
from genepheno.log import logger

COLUMNS = ("gene_id", "term_id", "score", "gene_symbol", "term_name", "concepts")


def topological_order(parents):
    """Term indices ordered so that every term comes after all of its descendants."""
    n = len(parents)
    children_left = [0] * n
    for ps in parents:
        for p in ps:
            children_left[p] += 1
    order = [j for j in range(n) if children_left[j] == 0]
    for j in order:  # the list grows while we walk it
        for p in parents[j]:
            children_left[p] -= 1
            if children_left[p] == 0:
                order.append(p)
    return order


def max_propagate(scores, parents):
    """Raise every ancestor's score to the max over its descendants (NaN = no score, ignored).
    ``parents[j]`` lists the column indices of term j's direct parents. Returns a new array."""
    s = np.array(scores, dtype=np.result_type(np.asarray(scores).dtype, np.float32), copy=True)
    for j in topological_order(parents):
        for p in parents[j]:
            s[:, p] = np.fmax(s[:, p], s[:, j])
    return s


def write_predictions(path, gene_ids, gene_symbols, term_ids, term_names, scores, concepts=None,
                      min_score=0.0, top_k=None):
    """Write a predictions file. ``scores`` is (genes x terms) with NaN for "not scored";
    ``concepts(i, j)`` returns the concepts text for gene i and term j (only called for rows
    that are written)."""
    n = 0
    with atomic_write(path) as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for i, gene in enumerate(gene_ids):
            row = scores[i]
            keep = np.flatnonzero(~np.isnan(row) & (row >= min_score))
            # descending score, then term ID for a stable order
            keep = keep[np.lexsort((np.array(term_ids, dtype=object)[keep].astype(str), -row[keep]))]
            if top_k:
                keep = keep[:top_k]
            for j in keep:
                extra = concepts(i, j) if concepts else ""
                fh.write(f"{gene}\t{term_ids[j]}\t{row[j]:.4f}\t{gene_symbols[i]}\t{term_names[j]}\t{extra}\n")
                n += 1
    return n


def read_predictions(path, gene_index, term_index):
    """Scores of a predictions file (or any ``gene term score`` TSV) as a (genes x terms) float
    array aligned to the given indices; NaN where the file has no row. Rows for genes or terms
    outside the indices are counted and skipped; a repeated pair keeps its max. float64, so a
    written 0.4500 equals the threshold 45/100 exactly."""
    S = np.full((len(gene_index), len(term_index)), np.nan, dtype=np.float64)
    skipped_genes, skipped_terms, rows = set(), set(), 0
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            f = line.rstrip("\r\n").split("\t")
            if not f[0] or f[0].startswith("#") or (lineno == 1 and f[:3] == list(COLUMNS[:3])):
                continue
            if len(f) < 3:
                raise InputError(f"{path}:{lineno}", f"has {len(f)} column(s); need gene_id, term_id, score")
            try:
                score = float(f[2])
            except ValueError:
                raise InputError(f"{path}:{lineno}", f"score {f[2]!r} is not a number") from None
            if not 0.0 <= score <= 1.0:
                raise InputError(f"{path}:{lineno}", f"score {score} is outside [0, 1]")
            i, j = gene_index.get(f[0]), term_index.get(f[1])
            if i is None:
                skipped_genes.add(f[0])
                continue
            if j is None:
                skipped_terms.add(f[1])
                continue
            S[i, j] = score if np.isnan(S[i, j]) else max(S[i, j], score)
            rows += 1
    if rows == 0:
        raise InputError(path, "has no predictions for the evaluated genes and terms",
                         "check that gene IDs match the dataset's genes.tsv (e.g. NCBIGene:7157)")
    if skipped_genes or skipped_terms:
        logger.info("%s: skipped rows for %d genes and %d terms outside the evaluation set", path,
                    len(skipped_genes), len(skipped_terms))
    return S
