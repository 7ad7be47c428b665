"""max-BLAST / w-BLAST: the transfer formulas on hand-written hits, then real blastp on real
Swiss-Prot sequences (human queries vs mouse insulin / globin / histone H4 training set)."""

import shutil

import numpy as np
import pytest

from conftest import FIXTURES
from genepheno.baselines import blast
from genepheno.baselines.blast import blast_scores, parse_blast_tab, run_blastp, transfer_annotations
from genepheno.errors import GenephenoError
from genepheno.sequences.fasta import read_fasta

needs_blast = pytest.mark.skipif(shutil.which("blastp") is None or shutil.which("makeblastdb") is None,
                                 reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
N = np.nan
TRAIN_IDS = ["A", "B", "C"]
LABELS = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=bool)


def test_transfer_max_and_weighted_by_hand():
    hits = [("q1", "A", 1e-50, 200.0, 90.0, 90, 100),
            ("q1", "B", 1e-20, 100.0, 40.0, 40, 100),
            ("q1", "B", 1e-5, 150.0, 60.0, 30, 50),   # second HSP of the pair: higher bitscore wins
            ("q2", "q2", 0.0, 500.0, 100.0, 100, 100),  # own ID: ignored
            ("q2", "C", 1e-10, 50.0, 30.0, 30, 100),
            ("B", "B", 0.0, 300.0, 100.0, 100, 100),    # query also in training: no self transfer
            ("B", "A", 1e-3, 40.0, 25.0, 25, 100)]
    queries = ["q1", "q2", "q3", "B"]
    m = transfer_annotations(hits, queries, TRAIN_IDS, LABELS, "max")
    # q1: term0 max(0.9, 0.6) ; term1 only A 0.9 ; term2 only B 0.6 (its best HSP)
    np.testing.assert_allclose(m[0], [0.9, 0.9, 0.6])
    np.testing.assert_allclose(m[1], [0.0, 0.0, 0.3])
    assert np.isnan(m[2]).all()  # no hit: no prediction
    np.testing.assert_allclose(m[3], [0.25, 0.25, 0.0])
    w = transfer_annotations(hits, queries, TRAIN_IDS, LABELS, "weighted")
    # q1: bitscores A 200, B 150 -> term0 (200+150)/350, term1 200/350, term2 150/350
    np.testing.assert_allclose(w[0], [1.0, 200 / 350, 150 / 350])
    np.testing.assert_allclose(w[1], [0.0, 0.0, 1.0])
    assert np.isnan(w[2]).all()
    np.testing.assert_allclose(w[3], [1.0, 1.0, 0.0])
    with pytest.raises(ValueError):
        transfer_annotations(hits, queries, TRAIN_IDS, LABELS, "mean")


def test_parse_blast_tab():
    hits = parse_blast_tab(["q\ts\t1.5e-30\t120\t55.5\t61\t110\n", "\n"])
    assert hits == [("q", "s", 1.5e-30, 120.0, 55.5, 61, 110)]
    with pytest.raises(GenephenoError, match="expected 7 columns"):
        parse_blast_tab(["q\ts\t1e-3\n"])


def test_missing_blast_says_how_to_install(monkeypatch):
    monkeypatch.setattr(blast.shutil, "which", lambda name: None)
    with pytest.raises(GenephenoError, match="apt-get install ncbi-blast\\+"):
        blast_scores({"q": "MKV"}, {"s": "MKV"}, np.ones((1, 1), bool))


@needs_blast
def test_real_blastp_transfer(tmp_path):
    train = {r.id: r.sequence for r in read_fasta(FIXTURES / "metrics" / "blast_train.fasta")}
    query = {r.id: r.sequence for r in read_fasta(FIXTURES / "metrics" / "blast_query.fasta")}
    assert list(train) == ["P01325", "P01326", "P02088", "P01942", "P62806", "P62805"]
    # toy terms: 0 any, 1-2 insulin-like, 3-4 globin-like, 5 mouse H4, 6 human H4
    labels = np.zeros((6, 7), bool)
    for row, terms in enumerate([(0, 1), (0, 1, 2), (0, 3), (0, 3, 4), (0, 5), (0, 6)]):
        labels[row, list(terms)] = True

    hits = run_blastp(query, train, workdir=tmp_path)
    pairs = {(q, s): (bits, pident) for q, s, _e, bits, pident, *_ in hits}
    assert ("P62805", "P62805") in pairs  # BLAST does find the query itself...
    assert {s for q, s in pairs if q == "P01308"} == {"P01325", "P01326"}  # INS -> Ins1, Ins2
    assert {s for q, s in pairs if q == "P68871"} == {"P02088", "P01942"}  # HBB -> beta, alpha
    assert not any(q == "P04637" for q, _ in pairs)  # TP53: nothing similar

    m = blast_scores(query, train, labels, "max", workdir=tmp_path)
    ins = max(pairs["P01308", "P01325"][1], pairs["P01308", "P01326"][1]) / 100
    assert 0.7 < ins < 0.9  # human vs mouse insulin, about 80 % identical
    np.testing.assert_allclose(m[0], [ins, ins, pairs["P01308", "P01326"][1] / 100, 0, 0, 0, 0])
    hbb, hba = pairs["P68871", "P02088"][1] / 100, pairs["P68871", "P01942"][1] / 100
    assert hbb > 0.75 and 0.3 < hba < 0.5
    np.testing.assert_allclose(m[1], [hbb, 0, 0, hbb, hba, 0, 0])
    np.testing.assert_allclose(m[2], [1, 0, 0, 0, 0, 1, 0])  # ...but never transfers its own labels
    assert np.isnan(m[3]).all()

    w = blast_scores(query, train, labels, "weighted", threads=2, workdir=tmp_path)
    b1, b2 = pairs["P01308", "P01325"][0], pairs["P01308", "P01326"][0]
    np.testing.assert_allclose(w[0], [1, 1, b2 / (b1 + b2), 0, 0, 0, 0])
    bb, ba = pairs["P68871", "P02088"][0], pairs["P68871", "P01942"][0]
    np.testing.assert_allclose(w[1], [1, 0, 0, 1, ba / (bb + ba), 0, 0])
    np.testing.assert_allclose(w[2], [1, 0, 0, 0, 0, 1, 0])
    assert np.isnan(w[3]).all()


@needs_blast
def test_blast_edge_cases(tmp_path):
    assert blast_scores({}, {"s": "MKVL"}, np.ones((1, 2), bool), workdir=tmp_path).shape == (0, 2)
    assert np.isnan(blast_scores({"q": "MKVL"}, {}, np.zeros((0, 2), bool), workdir=tmp_path)).all()
    with pytest.raises(GenephenoError, match="empty"):
        blast_scores({"q": ""}, {"s": "MKVL"}, np.ones((1, 2), bool), workdir=tmp_path)
