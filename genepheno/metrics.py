"""Evaluation metrics for phenotype predictions: pure functions on arrays, no file I/O.

Conventions shared by every function:

* ``y_true`` is a boolean matrix (genes x terms); ``y_score`` a float matrix of the same shape where
  NaN means "no prediction" (it never counts as ``>= t``, so a row of NaN is a gene without
  predictions; a score of 0.0 *is* a prediction at threshold 0.00).
* Both are expected to be consistent with the ontology (labels propagated to ancestors, scores
  max-propagated) -- that is the caller's job, as in CAFA.
* Thresholds default to the CAFA grid 0.00, 0.01, ..., 1.00; a score ``s`` is predicted at ``t`` when
  ``s >= t`` (so ties at a threshold count as predicted).

Gene-centric metrics (Fmax, Smin, coverage) follow CAFA / CAFA-evaluator "cafa" normalisation:
a gene takes part only when it has at least one true term among the evaluated terms; precision is
averaged over those genes with at least one prediction at ``t``, recall (and remaining
uncertainty / misinformation) over all of them. Term-centric metrics (AUC) and micro AUPR use every
row given.
"""

from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

THRESHOLDS = np.arange(101) / 100  # 0.00 ... 1.00, each exactly k/100
BINS = ("11-30", "31-100", "101-300", ">=301")


class FmaxResult(NamedTuple):
    fmax: float          # NaN when no gene has a true term
    threshold: float     # the lowest threshold reaching fmax
    precision: float
    recall: float
    coverage: float      # fraction of evaluated genes with >= 1 prediction at that threshold
    thresholds: np.ndarray
    precisions: np.ndarray  # NaN where no gene has a prediction (coverage 0)
    recalls: np.ndarray
    coverages: np.ndarray
    fscores: np.ndarray     # 0 where coverage is 0
    n_genes: int         # genes with >= 1 true term (the recall denominator)


class TermAUC(NamedTuple):
    auc: float             # mean over terms with both classes; NaN when there is none
    per_term: np.ndarray   # ROC-AUC per term, NaN for a term with a single class
    n_terms: int           # how many terms entered the mean


class SminResult(NamedTuple):
    smin: float
    threshold: float
    ru: float              # remaining uncertainty at that threshold
    mi: float              # misinformation at that threshold
    thresholds: np.ndarray
    s: np.ndarray          # NaN where coverage is 0 (such thresholds are not eligible)


# ----------------------------------------------------------------------------- helpers
def _check(y_true, y_score):
    y_true = np.asarray(y_true, dtype=bool)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must be 2-D and of the same shape")
    return y_true, y_score


def _grid(thresholds):
    t = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float)
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0):
        raise ValueError("thresholds must be a non-empty, strictly increasing 1-D array")
    return t


def _counts_at_thresholds(y_true, y_score, thresholds, weights=None, chunk=4_000_000):
    """Per gene and threshold: (weighted) number of predicted terms and of true positives.

    Each score is binned once by ``searchsorted`` (how many thresholds it reaches) and the per-gene
    histograms are summed from the top, so the cost is one pass over the matrix, not one per threshold.
    Returns two arrays (genes x thresholds).
    """
    n_genes, n_terms = y_score.shape
    n_t = len(thresholds)
    pred = np.zeros((n_genes, n_t))
    tp = np.zeros((n_genes, n_t))
    rows_per_chunk = max(1, chunk // max(n_terms, 1))
    for start in range(0, n_genes, rows_per_chunk):
        s = y_score[start:start + rows_per_chunk]
        g, j = np.nonzero(~np.isnan(s))
        # level = number of thresholds <= score; the score is predicted at thresholds[:level]
        level = np.searchsorted(thresholds, s[g, j], side="right")
        w = np.ones(len(g)) if weights is None else weights[j]
        idx = g * (n_t + 1) + level
        size = len(s) * (n_t + 1)
        hist_pred = np.bincount(idx, weights=w, minlength=size).reshape(len(s), n_t + 1)
        is_tp = y_true[start:start + rows_per_chunk][g, j]
        hist_tp = np.bincount(idx[is_tp], weights=w[is_tp], minlength=size).reshape(len(s), n_t + 1)
        # predicted at threshold k  <=>  level > k: suffix sums over levels k+1..n_t
        pred[start:start + len(s)] = np.cumsum(hist_pred[:, ::-1], axis=1)[:, ::-1][:, 1:]
        tp[start:start + len(s)] = np.cumsum(hist_tp[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return pred, tp


# ----------------------------------------------------------------------------- Fmax
def fmax(y_true, y_score, thresholds=None):
    """Gene-centric CAFA Fmax.

    For each threshold t: precision = mean over genes with >= 1 score >= t of TP/(TP+FP); recall =
    mean over all genes with >= 1 true term of TP/(TP+FN); F = 2PR/(P+R) (0 when no gene has a
    prediction). Genes without any true term are left out entirely (CAFA; CAFA-evaluator counts only
    ground-truth targets). Fmax is the maximum F, at the lowest threshold reaching it (as
    CAFA-evaluator's idxmax).
    """
    y_true, y_score = _check(y_true, y_score)
    thr = _grid(thresholds)
    keep = y_true.any(axis=1)
    y_true, y_score = y_true[keep], y_score[keep]
    n = int(keep.sum())
    nan = np.full(len(thr), np.nan)
    if n == 0:
        return FmaxResult(np.nan, np.nan, np.nan, np.nan, np.nan, thr, nan, nan, nan, nan.copy(), 0)
    pred, tp = _counts_at_thresholds(y_true, y_score, thr)
    covered = pred > 0
    n_cov = covered.sum(axis=0)
    prec_sum = np.divide(tp, pred, out=np.zeros_like(tp), where=covered).sum(axis=0)
    precision = np.divide(prec_sum, n_cov, out=np.full(len(thr), np.nan), where=n_cov > 0)
    recall = (tp / y_true.sum(axis=1, keepdims=True)).sum(axis=0) / n
    coverage = n_cov / n
    p0 = np.nan_to_num(precision)
    denom = p0 + recall
    f = np.divide(2 * p0 * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    k = int(np.argmax(f))
    return FmaxResult(float(f[k]), float(thr[k]), float(p0[k]), float(recall[k]), float(coverage[k]),
                      thr, precision, recall, coverage, f, n)


# ----------------------------------------------------------------------------- AUC / AUPR
def term_auc(y_true, y_score):
    """Phenotype-centric ROC-AUC: one AUC per term (column) over all rows, NaN scored as 0.

    Computed with average ranks (Mann-Whitney U), identical to sklearn's ``roc_auc_score`` including
    ties (a tied positive/negative pair counts 1/2). Terms with only positives or only negatives get
    NaN and are left out of the mean.
    """
    y_true, y_score = _check(y_true, y_score)
    n_pos = y_true.sum(axis=0)
    n_neg = y_true.shape[0] - n_pos
    both = (n_pos > 0) & (n_neg > 0)
    per_term = np.full(y_true.shape[1], np.nan)
    if both.any():
        ranks = rankdata(np.nan_to_num(y_score[:, both], nan=0.0), axis=0, method="average")
        p, q = n_pos[both], n_neg[both]
        u = (ranks * y_true[:, both]).sum(axis=0) - p * (p + 1) / 2
        per_term[both] = u / (p * q)
    n = int(both.sum())
    return TermAUC(float(np.mean(per_term[both])) if n else np.nan, per_term, n)


def aupr_micro(y_true, y_score):
    """Micro-averaged area under the precision-recall curve over all (gene, term) pairs, NaN scored
    as 0. Uses average precision (step-wise, no interpolation; sklearn). NaN when there is no
    positive pair."""
    y_true, y_score = _check(y_true, y_score)
    if not y_true.any():
        return np.nan
    return float(average_precision_score(y_true.ravel(), np.nan_to_num(y_score, nan=0.0).ravel()))


# ----------------------------------------------------------------------------- Smin / IA
def smin(y_true, y_score, ia, thresholds=None):
    """Minimum semantic distance (CAFA Smin), weighting each term by its information accretion.

    At threshold t, over genes with >= 1 true term: ru(t) = mean of the IA summed over true terms not
    predicted (remaining uncertainty), mi(t) = mean of the IA summed over predicted terms that are
    not true (misinformation); S(t) = sqrt(ru^2 + mi^2). Smin = min over thresholds where at least
    one gene has a prediction (CAFA-evaluator drops zero-coverage thresholds), at the lowest such
    threshold. NaN when no gene has a true term or no threshold has a prediction.
    """
    y_true, y_score = _check(y_true, y_score)
    ia = np.asarray(ia, dtype=float)
    if ia.shape != (y_true.shape[1],):
        raise ValueError(f"ia has shape {ia.shape}, expected ({y_true.shape[1]},)")
    thr = _grid(thresholds)
    keep = y_true.any(axis=1)
    y_true, y_score = y_true[keep], y_score[keep]
    s = np.full(len(thr), np.nan)
    if not keep.any():
        return SminResult(np.nan, np.nan, np.nan, np.nan, thr, s)
    ia = np.nan_to_num(ia, nan=0.0, posinf=0.0, neginf=0.0)
    pred_w, tp_w = _counts_at_thresholds(y_true, y_score, thr, weights=ia)
    top = np.where(np.isnan(y_score), -np.inf, y_score).max(axis=1)
    true_w = (y_true * ia).sum(axis=1, keepdims=True)
    ru = (true_w - tp_w).mean(axis=0)
    mi = (pred_w - tp_w).mean(axis=0)
    ok = top.max() >= thr  # thresholds where some gene has a prediction
    s[ok] = np.sqrt(ru[ok] ** 2 + mi[ok] ** 2)
    if not ok.any():
        return SminResult(np.nan, np.nan, np.nan, np.nan, thr, s)
    k = int(np.nanargmin(s))
    return SminResult(float(s[k]), float(thr[k]), float(ru[k]), float(mi[k]), thr, s)


def information_accretion(train_labels, parents, pseudocount=0.0):
    """Information accretion per term, IA(t) = -log2 P(t | all parents of t), from training labels.

    ``train_labels``: bool (genes x terms), normally propagated to ancestors; ``parents[j]``: the
    column indices of the direct parents of term j. P is estimated as
    (n(t and all parents) + c) / (n(all parents) + c) with c = ``pseudocount``.

    Cases without the data to estimate P:

    * a term without parents (a root) is conditioned on the annotated genes (rows with >= 1 label),
      so the root of a propagated matrix gets IA 0;
    * no training gene has all the parents (0/0): IA = 0, nothing is known about the term;
    * parents seen but the term never (P = 0, IA would be infinite): IA = 0, as CAFA-evaluator does
      with infinite values; pass ``pseudocount=1`` for the CAFA IA script's convention (a dummy gene
      carrying every term), which gives such a term log2(n(parents) + 1) instead.
    """
    y = np.asarray(train_labels, dtype=bool)
    if y.ndim != 2 or len(parents) != y.shape[1]:
        raise ValueError(f"parents has {len(parents)} entries for {y.shape[-1]} label columns")
    annotated = y.any(axis=1)
    ia = np.zeros(y.shape[1])
    for j, pa in enumerate(parents):
        pa = list(pa)
        have_pa = y[:, pa].all(axis=1) if pa else annotated
        n_pa = have_pa.sum() + pseudocount
        n_t = (have_pa & y[:, j]).sum() + pseudocount
        if n_pa > 0 and n_t > 0 and n_t < n_pa:
            ia[j] = -np.log2(n_t / n_pa)
    return ia


# ----------------------------------------------------------------------------- bins / evaluate
def frequency_bin(n_genes):
    """The paper's term-frequency bin for a term annotated to ``n_genes`` genes in the whole
    dataset: "11-30", "31-100", "101-300", ">=301", or None below 11."""
    n = int(n_genes)
    if n < 11:
        return None
    return "11-30" if n <= 30 else "31-100" if n <= 100 else "101-300" if n <= 300 else ">=301"


def evaluate(y_true, y_score, term_bins, ia=None, exclude=None, thresholds=None):
    """All metrics overall and per frequency bin, as a list of dicts (one per "all" + each of BINS).

    ``term_bins``: one bin label (from BINS, or None) per term column; ``ia``: optional information
    accretion per term (Smin is NaN without it); ``exclude``: term columns to drop first (indices or
    a bool mask), e.g. the root of the evaluated subtree. "all" uses every remaining term, including
    terms without a bin. For each group, Fmax / Smin / coverage use that group's terms and the genes
    with >= 1 true term among them (``n_genes``); AUC and AUPR use that group's terms over all rows.
    A group without terms or genes gives NaN values, not an error.

    Keys: bin, fmax, threshold, precision, recall, coverage, auc, auc_terms, aupr, smin,
    smin_threshold, n_genes, n_terms.
    """
    y_true, y_score = _check(y_true, y_score)
    n_terms = y_true.shape[1]
    bins = np.array([b if b is not None else "" for b in term_bins], dtype=object)
    if bins.shape != (n_terms,):
        raise ValueError(f"term_bins has {bins.size} entries for {n_terms} terms")
    unknown = set(bins) - set(BINS) - {""}
    if unknown:
        raise ValueError(f"unknown frequency bins {sorted(unknown)}; expected {BINS}")
    keep = np.ones(n_terms, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude)
        keep[ex if ex.dtype != bool else np.nonzero(ex)[0]] = False
    if ia is not None:
        ia = np.asarray(ia, dtype=float)
    rows = []
    for name in ("all",) + BINS:
        cols = keep & ((bins == name) | (name == "all"))
        yt, ys = y_true[:, cols], y_score[:, cols]
        genes = yt.any(axis=1)
        row = dict(bin=name, fmax=np.nan, threshold=np.nan, precision=np.nan, recall=np.nan,
                   coverage=np.nan, auc=np.nan, auc_terms=0, aupr=np.nan, smin=np.nan,
                   smin_threshold=np.nan, n_genes=int(genes.sum()), n_terms=int(cols.sum()))
        if row["n_terms"] and row["n_genes"]:
            f = fmax(yt, ys, thresholds)
            a = term_auc(yt, ys)
            row.update(fmax=f.fmax, threshold=f.threshold, precision=f.precision, recall=f.recall,
                       coverage=f.coverage, auc=a.auc, auc_terms=a.n_terms, aupr=aupr_micro(yt, ys))
            if ia is not None:
                s = smin(yt, ys, ia[cols], thresholds)
                row.update(smin=s.smin, smin_threshold=s.threshold)
        rows.append(row)
    return rows
