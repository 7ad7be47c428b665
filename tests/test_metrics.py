"""Metrics on hand-computed cases (every expected number is worked out in the comments)."""

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from genepheno.metrics import BINS, THRESHOLDS, aupr_micro, evaluate, fmax, frequency_bin, information_accretion, smin, term_auc

N = np.nan
# genes x terms (a, b, c). g2 has truth but no prediction; g3 has predictions but no truth.
Y = np.array([[1, 1, 0],
              [0, 1, 1],
              [1, 0, 0],
              [0, 0, 0]], dtype=bool)
S = np.array([[0.5, 0.3, 0.5],
              [0.2, 0.5, N],
              [N, N, N],
              [0.9, 0.9, 0.9]])
# Per threshold t (genes g0..g2 only; g3 has no true term and is left out):
#   t <= 0.20  g0 {a,b,c} P 2/3 R 1 | g1 {a,b} P 1/2 R 1/2 | g2 R 0 -> P 7/12 R 1/2  F 7/13
#   t <= 0.30  g0 {a,b,c} P 2/3 R 1 | g1 {b}   P 1   R 1/2 | g2 R 0 -> P 5/6  R 1/2  F 5/8
#   t <= 0.50  g0 {a,c}   P 1/2 R 1/2 | g1 {b} P 1   R 1/2 | g2 R 0 -> P 3/4  R 1/3  F 6/13
#   t >  0.50  nothing predicted -> precision undefined, F 0


def test_fmax_hand_case_with_ties_and_genes_without_predictions():
    r = fmax(Y, S)
    assert r.fmax == pytest.approx(5 / 8)
    assert r.threshold == 0.21  # lowest threshold reaching the max
    assert (r.precision, r.recall, r.coverage) == pytest.approx((5 / 6, 1 / 2, 2 / 3))
    assert r.n_genes == 3
    i = {round(t, 2): k for k, t in enumerate(r.thresholds)}
    assert r.fscores[i[0.0]] == pytest.approx(7 / 13)
    assert r.fscores[i[0.2]] == pytest.approx(7 / 13)
    assert r.fscores[i[0.3]] == pytest.approx(5 / 8)  # score 0.3 >= 0.30 counts
    assert r.fscores[i[0.31]] == pytest.approx(6 / 13)
    assert (r.precisions[i[0.5]], r.recalls[i[0.5]]) == pytest.approx((3 / 4, 1 / 3))  # ties at 0.50
    assert np.isnan(r.precisions[i[0.51]]) and r.fscores[i[0.51]] == 0 and r.coverages[i[0.51]] == 0
    assert r.recalls[i[1.0]] == 0
    assert len(r.thresholds) == 101 and r.thresholds[0] == 0.0 and r.thresholds[-1] == 1.0


def test_fmax_zero_score_is_a_prediction_nan_is_not():
    r = fmax(np.array([[1, 0]]), np.array([[0.0, N]]))
    assert (r.fmax, r.threshold, r.precision, r.recall) == (1.0, 0.0, 1.0, 1.0)
    r = fmax(np.array([[1, 0]]), np.array([[N, N]]))
    assert r.fmax == 0.0 and r.coverage == 0.0 and np.all(np.isnan(r.precisions))


def test_fmax_without_annotated_genes_is_nan_and_custom_grid():
    assert math.isnan(fmax(np.zeros((2, 2), bool), np.ones((2, 2))).fmax)
    r = fmax(Y, S, thresholds=[0.25, 0.4])
    assert (r.fmax, r.threshold) == (pytest.approx(5 / 8), 0.25)
    with pytest.raises(ValueError):
        fmax(Y, S, thresholds=[0.5, 0.4])
    with pytest.raises(ValueError):
        fmax(Y, S[:, :2])


def test_term_auc_hand_case_ties_nan_and_single_class_terms():
    y = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=bool)
    s = np.array([[0.9, 0.1, 0.1, 0.5], [0.9, 0.2, 0.2, 0.5], [0.2, 0.3, 0.3, 0.5], [N, 0.4, 0.4, 0.5]])
    # term 0: pos {0.9, 0.2}, neg {0.9, 0 (NaN)}: pairs 1/2 + 1 + 0 + 1 = 2.5 of 4 -> 0.625
    # term 1: only positives -> NaN; term 2: the single positive scores highest -> 1; term 3: no positive
    r = term_auc(y, s)
    assert r.per_term[0] == pytest.approx(0.625) and r.per_term[2] == 1.0
    assert np.isnan(r.per_term[1]) and np.isnan(r.per_term[3])
    assert r.auc == pytest.approx(0.8125) and r.n_terms == 2
    assert math.isnan(term_auc(y[:, [1, 3]], s[:, [1, 3]]).auc)


def test_term_auc_matches_sklearn_on_tied_scores():
    rng = np.random.default_rng(1)
    y = rng.random((60, 25)) < 0.3
    s = np.round(rng.random((60, 25)), 1)  # many ties
    s[rng.random(s.shape) < 0.2] = N
    ref = [roc_auc_score(y[:, j], np.nan_to_num(s[:, j])) for j in range(25)]
    assert term_auc(y, s).per_term == pytest.approx(ref, abs=1e-12)


def test_aupr_micro_hand_case():
    # pairs sorted by score: 0.8 pos (P 1, R 1/2), 0.6 neg, 0.4 pos (P 2/3, R 1): AP = 1/2 + 1/2 * 2/3
    y = np.array([[1, 0], [1, 0]], dtype=bool)
    assert aupr_micro(y, np.array([[0.8, 0.6], [0.4, N]])) == pytest.approx(5 / 6)
    assert math.isnan(aupr_micro(np.zeros((2, 2), bool), np.ones((2, 2))))


def test_smin_hand_case():
    ia = np.array([1.0, 2.0, 0.5])
    # t <= 0.20: ru (0 + 0.5 + 1)/3 = 1/2, mi (0.5 + 1 + 0)/3 = 1/2 -> S = sqrt(1/2)
    # t <= 0.30: ru 1/2, mi (0.5 + 0 + 0)/3 = 1/6            -> S = sqrt(10)/6 (the minimum)
    # t <= 0.50: ru (2 + 0.5 + 1)/3 = 7/6, mi 1/6             -> S = sqrt(50)/6
    # t >  0.50: no prediction: not eligible
    r = smin(Y, S, ia)
    assert r.smin == pytest.approx(math.sqrt(10) / 6) and r.threshold == 0.21
    assert (r.ru, r.mi) == pytest.approx((1 / 2, 1 / 6))
    i = {round(t, 2): k for k, t in enumerate(r.thresholds)}
    assert r.s[i[0.0]] == pytest.approx(math.sqrt(0.5))
    assert r.s[i[0.5]] == pytest.approx(math.sqrt(50) / 6)
    assert np.isnan(r.s[i[0.51]])


def test_information_accretion_on_a_tiny_dag():
    # 0 root; 1, 2 children of 0; 3 child of 1 and 2; 4 child of 3 (never seen); 5 child of 4
    parents = [[], [0], [0], [1, 2], [3], [4]]
    y = np.array([[1, 1, 1, 1, 0, 0],
                  [1, 1, 1, 0, 0, 0],
                  [1, 1, 0, 0, 0, 0],
                  [1, 1, 0, 0, 0, 0],
                  [1, 0, 0, 0, 0, 0],
                  [1, 0, 0, 0, 0, 0],
                  [1, 0, 0, 0, 0, 0],
                  [1, 0, 0, 0, 0, 0],
                  [0, 0, 0, 0, 0, 0]], dtype=bool)  # the last gene is unannotated: not in P(root)
    # root 8/8 -> 0; term 1: 4/8 -> 1; term 2: 2/8 -> 2; term 3: 1 of the 2 genes with 1 and 2 -> 1;
    # term 4: parent seen once, term never -> 0 (documented); term 5: parent never seen -> 0
    assert information_accretion(y, parents) == pytest.approx([0, 1, 2, 1, 0, 0])
    # pseudocount 1 (the CAFA IA script's dummy gene): 9/9, 5/9, 3/9, 2/3, 1/2, 1/1
    assert information_accretion(y, parents, pseudocount=1) == pytest.approx(
        [0, math.log2(9 / 5), math.log2(3), math.log2(3 / 2), 1, 0])
    with pytest.raises(ValueError):
        information_accretion(y, parents[:-1])


def test_frequency_bin_edges():
    assert [frequency_bin(n) for n in (0, 10, 11, 30, 31, 100, 101, 300, 301, 5000)] == [
        None, None, "11-30", "11-30", "31-100", "31-100", "101-300", "101-300", ">=301", ">=301"]
    assert frequency_bin(np.int64(31)) == "31-100"


def test_evaluate_bins_exclusion_and_empty_bins():
    # root column 0 (true for every gene, in >=301, excluded) + terms a, b (11-30) and c (31-100)
    y = np.hstack([np.ones((4, 1), bool), Y])
    s = np.hstack([np.full((4, 1), 0.95), S])
    rows = evaluate(y, s, [">=301", "11-30", "11-30", "31-100"], ia=[0.0, 1.0, 2.0, 0.5], exclude=[0])
    by = {r["bin"]: r for r in rows}
    assert [r["bin"] for r in rows] == ["all", *BINS]

    a = by["all"]  # the hand case above
    assert (a["fmax"], a["threshold"], a["coverage"]) == (pytest.approx(5 / 8), 0.21, pytest.approx(2 / 3))
    assert (a["n_genes"], a["n_terms"], a["auc_terms"]) == (3, 3, 3)
    # AUC over all 4 genes, NaN as 0: a 1/4, b 1/2, c 1/6 (its positive scores 0, tied with g2)
    assert a["auc"] == pytest.approx((1 / 4 + 1 / 2 + 1 / 6) / 3)
    assert a["aupr"] == pytest.approx(average_precision_score(Y.ravel(), np.nan_to_num(S).ravel()))
    assert (a["smin"], a["smin_threshold"]) == (pytest.approx(math.sqrt(10) / 6), 0.21)

    # terms a, b; genes g0..g2: t<=0.20 P 3/4 R 2/3; t<=0.30 P 1 R 2/3 -> F 4/5; t<=0.50 P 1 R 1/2
    b = by["11-30"]
    assert (b["fmax"], b["threshold"], b["precision"], b["recall"]) == (
        pytest.approx(0.8), 0.21, 1.0, pytest.approx(2 / 3))
    assert (b["n_genes"], b["n_terms"], b["auc"]) == (3, 2, pytest.approx(0.375))

    # term c: its only gene (g1) has no prediction for it -> F 0 everywhere, coverage 0
    c = by["31-100"]
    assert (c["fmax"], c["threshold"], c["coverage"], c["n_genes"], c["n_terms"]) == (0.0, 0.0, 0.0, 1, 1)
    assert c["aupr"] == pytest.approx(0.25)  # the positive ties with 2 negatives at 0, below 2 others
    assert math.isnan(c["smin"])  # no threshold with a prediction

    for empty in ("101-300", ">=301"):  # no term / only the excluded root
        e = by[empty]
        assert (e["n_genes"], e["n_terms"], e["auc_terms"]) == (0, 0, 0)
        assert all(math.isnan(e[k]) for k in ("fmax", "threshold", "auc", "aupr", "smin", "coverage"))

    no_ia = evaluate(y, s, [None, "11-30", "11-30", "31-100"], exclude=np.array([True, False, False, False]))
    assert math.isnan(no_ia[0]["smin"]) and no_ia[0]["fmax"] == pytest.approx(5 / 8)
    with pytest.raises(ValueError):
        evaluate(y, s, ["1-10", None, None, None])


def test_vectorised_counts_match_a_direct_loop():
    rng = np.random.default_rng(7)
    y = rng.random((80, 40)) < 0.1
    s = np.round(rng.random((80, 40)), 2)
    s[rng.random(s.shape) < 0.4] = N
    ia = rng.random(40) * 3
    best_f, best_s = 0.0, np.inf
    for t in THRESHOLDS:
        p_list, r_list, ru, mi = [], [], [], []
        for g in np.nonzero(y.any(axis=1))[0]:
            pred = np.nan_to_num(s[g], nan=-1) >= t
            tp = (pred & y[g]).sum()
            r_list.append(tp / y[g].sum())
            if pred.any():
                p_list.append(tp / pred.sum())
            ru.append(ia[y[g] & ~pred].sum())
            mi.append(ia[pred & ~y[g]].sum())
        p = np.mean(p_list) if p_list else 0.0
        r = np.mean(r_list)
        best_f = max(best_f, 2 * p * r / (p + r) if p + r else 0.0)
        if p_list:
            best_s = min(best_s, math.hypot(np.mean(ru), np.mean(mi)))
    assert fmax(y, s).fmax == pytest.approx(best_f, abs=1e-12)
    assert smin(y, s, ia).smin == pytest.approx(best_s, abs=1e-12)
