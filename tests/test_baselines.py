"""Baselines: naive = training frequencies, kmer-lr's joint L-BFGS fit = sklearn per term, go-mlp
beats naive where GO decides the phenotype, and the `genepheno baseline` command end to end on a
dataset built from the real fixtures (tests/fixtures/real)."""

import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import FIXTURES, write_dataset
from genepheno.baselines import run_baseline
from genepheno.baselines.go_mlp import go_mlp_scores
from genepheno.baselines.kmer_lr import fit_ovr_logistic, predict_proba
from genepheno.cli import main
from genepheno.data import load_dataset
from genepheno.metrics import fmax, term_auc
from genepheno.predictions import max_propagate, read_predictions

B = FIXTURES / "real"
needs_blast = pytest.mark.skipif(shutil.which("blastp") is None or shutil.which("makeblastdb") is None,
                                 reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """37 genes / 26 HPO terms / 7 GO concepts built from the real fixture files (30/3/4 split)."""
    out = tmp_path_factory.mktemp("ds") / "small"
    res = run("-q", "datasets", "build", "--ontology", B / "hp_small.obo", "--annotations", B / "genes_to_phenotype.txt",
              "--sequences", B / "human.fasta", "--id-map", B / "entrez_uniprot.tsv", "--go-ontology", B / "go_small.obo",
              "--go-annotations", B / "goa_human_small.gaf", "--min-genes", 3, "--min-concept-genes", 2, "-o", out)
    assert res.exit_code == 0, res.output
    return load_dataset(out)


# ----------------------------------------------------------------------------- naive
def test_naive_is_training_frequency(small, tmp_path):
    test = small.split_indices("test")
    freq = small.labels[small.split_indices("train")].mean(axis=0)
    s = run_baseline("naive", small, "test", threads=None)  # None: all CPUs
    assert s.shape == (len(test), len(small.term_ids))
    np.testing.assert_allclose(s, np.tile(freq, (len(test), 1)), atol=1e-7)
    # a frequency hand-counted from the labels file: HP:0000707 among the 30 training genes
    j = small.term_index["HP:0000707"]
    n = sum(small.labels[i, j] for i in range(len(small.gene_ids)) if small.splits[i] == "train")
    assert s[0, j] == pytest.approx(n / 30)
    out = tmp_path / "naive.tsv"
    res = run("-q", "baseline", "naive", "--dataset", small.path, "-o", out)
    assert res.exit_code == 0, res.output
    back = read_predictions(out, {small.gene_ids[i]: k for k, i in enumerate(test)}, small.term_index)
    np.testing.assert_allclose(back, np.round(s, 4), atol=1e-6)  # 4 decimals in the file


# ----------------------------------------------------------------------------- kmer-lr
def test_joint_logistic_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    w_true = rng.normal(size=(6, 4)) * [0.5, 1.0, 2.0, 0.2]
    Y = (X @ w_true + rng.normal(size=(150, 4)) * 0.7 + [0.0, -1.0, 1.0, -1.2]) > 0
    assert (Y.sum(0) > 10).all() and (Y.sum(0) < 140).all()
    for C in (0.05, 1.0):
        W, b = fit_ovr_logistic(X, Y, C=C, max_iter=500, tol=1e-10, dtype=torch.float64)
        for t in range(Y.shape[1]):
            sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, Y[:, t])
            np.testing.assert_allclose(W[:, t], sk.coef_[0], atol=2e-5, rtol=1e-4)
            assert b[t] == pytest.approx(sk.intercept_[0], abs=2e-5)
            np.testing.assert_allclose(predict_proba(X, W, b)[:, t], sk.predict_proba(X)[:, 1], atol=1e-5)


def test_kmer_lr_on_dataset_is_repeatable(small):
    a = run_baseline("kmer-lr", small, "test", seed=0, threads=1)
    b = run_baseline("kmer-lr", small, "test", seed=0, threads=1)
    assert a.shape == (4, len(small.term_ids)) and np.array_equal(a, b)
    assert np.all((a >= 0) & (a <= 1))
    for j, ps in enumerate(small.term_parents):  # max-propagated: a parent never below its child
        for p in ps:
            assert np.all(a[:, p] >= a[:, j])


# ----------------------------------------------------------------------------- go-mlp
@pytest.fixture(scope="module")
def go_world(tmp_path_factory):
    """300 genes, each with 3 of 20 GO terms; phenotypes are a function of GO:
    P2 <- GO:1 or GO:2, P3 <- GO:3, P5 <- GO:4, P6 <- GO:5, P7 <- GO:6; P1 = parent of P2 and P3,
    P4 = parent of P5. Genes g297-g299 (test) have no GO."""
    rng = np.random.default_rng(1)
    rule = {"P2": {"GO:1", "GO:2"}, "P3": {"GO:3"}, "P5": {"GO:4"}, "P6": {"GO:5"}, "P7": {"GO:6"}}
    parents = {"P2": ["P1"], "P3": ["P1"], "P5": ["P4"]}
    genes, labels, go = [], {}, {}
    for k in range(300):
        g = f"g{k}"
        genes.append((g, "train" if k < 240 else "val" if k < 270 else "test"))
        go[g] = [] if k >= 297 else sorted({f"GO:{x}" for x in rng.choice(20, 3, replace=False) + 1})
        ts = {t for t, need in rule.items() if need & set(go[g])}
        labels[g] = sorted(ts | {p for t in ts for p in parents.get(t, [])})
    terms = [("P1", ">=301", []), ("P2", "101-300", ["P1"]), ("P3", "31-100", ["P1"]), ("P4", "31-100", []),
             ("P5", "31-100", ["P4"]), ("P6", "31-100", []), ("P7", "31-100", [])]
    path = write_dataset(tmp_path_factory.mktemp("go") / "go_world", genes, labels, terms, go)
    return load_dataset(path)


def test_go_mlp_beats_naive_when_go_decides(go_world):
    ds = go_world
    test = ds.split_indices("test")
    y = ds.labels[test]
    mlp = run_baseline("go-mlp", ds, "test", seed=0, threads=1)
    naive = run_baseline("naive", ds, "test")
    f_mlp, f_naive = fmax(y, mlp).fmax, fmax(y, naive).fmax
    assert f_naive < 0.6 and f_mlp > 0.9, (f_naive, f_mlp)
    assert term_auc(y, mlp).auc > 0.95 and term_auc(y, naive).auc == 0.5
    # the three genes without GO get the prior (the naive scores)
    np.testing.assert_allclose(mlp[-3:], naive[-3:], atol=1e-6)
    # seeded: the same seed gives the same scores
    again = run_baseline("go-mlp", ds, "test", seed=0, threads=1)
    np.testing.assert_array_equal(mlp, again)


def test_go_mlp_early_stopping_keeps_best_val_epoch(go_world):
    """Predicting the val split returns the model of the best val epoch: its val Fmax is the
    history's maximum, and training stopped `patience` epochs after it."""
    hist = []
    s = go_mlp_scores(go_world, "val", seed=3, max_epochs=60, patience=3, batch_size=32, history=hist)
    y = go_world.labels[go_world.split_indices("val")]
    got = fmax(y, max_propagate(s, go_world.term_parents)).fmax
    best_epoch, best = max(hist, key=lambda e: (e[1], -e[0]))
    assert got == pytest.approx(best, abs=1e-9) and best > hist[0][1]
    assert hist[-1][0] == min(60, best_epoch + 3)


# ----------------------------------------------------------------------------- blast, CLI
@needs_blast
def test_blast_cli_weighted_and_max(small, tmp_path):
    test = small.split_indices("test")
    gi = {small.gene_ids[i]: k for k, i in enumerate(test)}
    for mode in ("weighted", "max"):
        s = run_baseline("blast", small, "test", blast_mode=mode)
        out = tmp_path / f"{mode}.tsv"
        res = run("-q", "baseline", "blast", "--blast-mode", mode, "--dataset", small.path, "-o", out)
        assert res.exit_code == 0, res.output
        back = read_predictions(out, gi, small.term_index) if (~np.isnan(s)).any() else None
        if back is not None:
            np.testing.assert_allclose(back, np.round(s, 4), atol=1e-6)  # NaN rows stay absent
            written = {line.split("\t")[0] for line in out.read_text().splitlines()[1:]}
            assert written == {small.gene_ids[i] for k, i in enumerate(test) if not np.isnan(s[k]).all()}


def test_blast_missing_gives_install_hint(small, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    res = run("baseline", "blast", "--dataset", small.path, "-o", tmp_path / "b.tsv")
    assert res.exit_code == 1
    err = res.output.strip().splitlines()
    assert err[-1].startswith("genepheno: error: ") and "apt-get install ncbi-blast+" in err[-1]
    assert not (tmp_path / "b.tsv").exists()


def test_unknown_baseline_and_bad_dataset(tmp_path):
    assert run("baseline", "svm", "--dataset", "hpo-human", "-o", tmp_path / "x.tsv").exit_code == 2
    res = run("baseline", "naive", "--dataset", tmp_path / "nope", "-o", tmp_path / "x.tsv")
    assert res.exit_code == 1 and "no dataset named or at" in res.output
