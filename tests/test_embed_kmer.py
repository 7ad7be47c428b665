"""The weight-free kmer encoder: documented blocks, exact values, determinism, real-data calibration."""

import numpy as np
import pytest
from test_embed_esm import random_seqs

from genepheno.embed import embed_sequences, load_encoder
from genepheno.embed import kmer as K


def test_blocks_and_dimension():
    enc = load_encoder("kmer")
    assert enc.dim == K.DIM == 1030 == sum(d for _, d in K.BLOCKS)
    assert enc.spec == dict(encoder="kmer", model="kmer", version=1, layer=None, pooling="composition", dim=1030,
                            dtype="fp32")
    assert abs(sum(K.BLOCK_WEIGHT.values()) - 1) < 1e-12 and len(K.PHYS_NAMES) == 26


def test_raw_values_of_a_small_protein():
    raw = K.raw_blocks("MKKAX")
    comp = dict(zip(K.STANDARD + "*", raw["comp"]))
    assert comp["K"] == pytest.approx(0.4) and comp["*"] == pytest.approx(0.2) and comp["M"] == pytest.approx(0.2)
    dipep = {a + b: raw["dipep"][i * 20 + j] for i, a in enumerate(K.STANDARD) for j, b in enumerate(K.STANDARD)}
    assert dipep["MK"] == dipep["KK"] == dipep["KA"] == pytest.approx(1 / 3)  # AX is skipped
    phys = dict(zip(K.PHYS_NAMES, raw["phys"]))
    assert phys["log_length"] == pytest.approx(np.log(5)) and phys["frac_pos"] == pytest.approx(0.4)
    assert phys["charge_net"] == pytest.approx(0.4) and phys["frac_ambiguous"] == pytest.approx(0.2)
    assert phys["longest_run"] == pytest.approx(np.log1p(2))
    tm = K.raw_blocks("KDE" * 10 + "L" * 22 + "KDE" * 10)
    assert dict(zip(K.PHYS_NAMES, tm["phys"]))["tm_segments"] == pytest.approx(np.log1p(1))


def test_vectors_are_deterministic_finite_and_scaled():
    enc = load_encoder("kmer")
    seqs = random_seqs([1, 2, 3, 10, 60, 400, 3000], seed=3) + ["X" * 40, "W"]
    X = embed_sequences(enc, seqs)
    assert X.dtype == np.float32 and np.isfinite(X).all()
    np.testing.assert_array_equal(X, embed_sequences(enc, seqs))
    norms = (embed_sequences(enc, random_seqs([300] * 20, seed=4)) ** 2).sum(1)
    assert 0.3 < norms.mean() < 3  # blocks scaled to unit expected squared norm in total


def test_related_sequences_are_closer_than_unrelated():
    rng = np.random.default_rng(0)
    base = random_seqs([500], seed=5)[0]
    mutant = "".join(c if rng.random() > 0.2 else rng.choice(list(K.STANDARD)) for c in base)
    hydrophobic = "".join(rng.choice(list("LIVFAM"), 500))
    X = embed_sequences(load_encoder("kmer"), [base, mutant, random_seqs([500], seed=6)[0], hydrophobic])
    cos = X @ X.T / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(X, axis=1))
    assert cos[0, 1] > cos[0, 2] > cos[0, 3]


def _human_sequences():
    from conftest import shared
    from genepheno.sequences.fasta import read_fasta

    return [r.sequence for r in read_fasta(shared("debian-metastudent-data_2.0.1-8", "goasp_201401_human.fasta.gz"))]


def test_frozen_constants_match_the_human_proteome():
    c = K.calibrate(_human_sequences()[::20])  # every 20th of 18,214 sequences keeps this fast
    assert np.abs(c["background"] - K._BACKGROUND).max() < 0.005
    assert np.abs(c["phys_mean"][:4] - K._PHYS_MEAN[:4]).max() < 0.1
    for name, value in c["norm2"].items():
        assert abs(value / K._BLOCK_NORM2[name] - 1) < 0.15


@pytest.mark.slow
def test_frozen_constants_are_reproduced_exactly():
    c = K.calibrate(_human_sequences())
    np.testing.assert_allclose(c["background"], K._BACKGROUND, atol=1e-6)
    np.testing.assert_allclose(c["phys_mean"], K._PHYS_MEAN, atol=1e-6)
    np.testing.assert_allclose(c["phys_sd"], K._PHYS_SD, atol=1e-6)
    assert all(abs(c["norm2"][k] - K._BLOCK_NORM2[k]) < 1e-6 for k in K._BLOCK_NORM2)
