"""The embedding store: keys, resume, kill safety, shards and merge."""

import json
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_embed_esm import make_checkpoint, random_seqs

from genepheno.embed import embed_fasta, embed_sequences, load_encoder, merge_stores, open_store, parse_shard
from genepheno.embed.store import in_shard
from genepheno.errors import GenephenoError, InputError
from genepheno.sequences.fasta import sequence_sha256, write_fasta


@pytest.fixture(scope="module")
def kmer():
    return load_encoder("kmer")


@pytest.fixture
def fasta(tmp_path):
    """30 records, 27 distinct sequences (two duplicates and one triplicate)."""
    seqs = random_seqs([20 + 17 * i for i in range(27)], seed=7)
    records = [(f"NCBIGene:{1000 + i}", "", s) for i, s in enumerate(seqs)]
    records += [("NCBIGene:2000", "", seqs[0]), ("NCBIGene:2001", "", seqs[0]), ("NCBIGene:2002", "", seqs[5])]
    path = tmp_path / "genes.fa"
    write_fasta(path, records)
    return path, records


def test_store_keys_and_meta(tmp_path, fasta, kmer):
    path, records = fasta
    stats = embed_fasta(path, tmp_path / "s.sqlite", kmer)
    assert stats["records"] == 30 and stats["embedded"] == 27 and stats["already"] == 0
    with open_store(tmp_path / "s.sqlite") as st:
        assert sorted(st.ids) == sorted(r[0] for r in records)
        assert st.meta["model"] == "kmer" and st.meta["dim"] == 1030 and st.meta["pooling"] == "composition"
        assert st.meta["dtype"] == "fp32" and st.meta["layer"] is None and st.meta["shards"] is None
        X = st.get(["NCBIGene:1000", "NCBIGene:2001", "NCBIGene:1005"])
        assert X.dtype == np.float32 and X.shape == (3, 1030)
        np.testing.assert_array_equal(X[0], X[1])
        np.testing.assert_array_equal(X, embed_sequences(kmer, [records[0][2], records[0][2], records[5][2]]))
        np.testing.assert_array_equal(st.get_sha([sequence_sha256(records[5][2])])[0], X[2])
        with pytest.raises(InputError) as e:
            st.get(["NCBIGene:1000"] + [f"x{i}" for i in range(7)])
        assert "7 of 8 record ID(s) have no embedding: x0, x1, x2, x3, x4 and 2 more" in str(e.value)
    con = sqlite3.connect(tmp_path / "s.sqlite")  # the documented layout, readable without genepheno
    assert con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 27
    blob = con.execute("SELECT v.vector FROM records r JOIN vectors v USING (sha256) WHERE r.id = 'NCBIGene:1005'")
    np.testing.assert_array_equal(np.frombuffer(blob.fetchone()[0], "<f4"), X[2])


def test_rerun_skips_done_and_links_new_ids(tmp_path, fasta, kmer):
    path, records = fasta
    embed_fasta(path, tmp_path / "s.sqlite", kmer)
    assert embed_fasta(path, tmp_path / "s.sqlite", kmer)["embedded"] == 0
    write_fasta(tmp_path / "more.fa", records[:3] + [("NCBIGene:9", "", records[4][2]), ("NCBIGene:10", "", "MKVLA")])
    stats = embed_fasta(tmp_path / "more.fa", tmp_path / "s.sqlite", kmer)
    assert stats["embedded"] == 1 and stats["already"] == 4  # only MKVLA is new; NCBIGene:9 is linked
    with open_store(tmp_path / "s.sqlite") as st:
        assert len(st) == 32
        np.testing.assert_array_equal(st.get(["NCBIGene:9"]), st.get(["NCBIGene:1004"]))


def test_resume_refuses_other_settings(tmp_path, fasta, kmer):
    path, _ = fasta
    embed_fasta(path, tmp_path / "s.sqlite", kmer)
    esm = load_encoder(weights=make_checkpoint(tmp_path / "esm2_tiny.pt"), device="cpu")
    with pytest.raises(InputError, match=r"was made with different settings \(encoder: 'kmer' vs 'esm2'"):
        embed_fasta(path, tmp_path / "s.sqlite", esm)
    (tmp_path / "junk.sqlite").write_text("hello")
    with pytest.raises(InputError, match="not a genepheno embedding store"):
        open_store(tmp_path / "junk.sqlite")
    with pytest.raises(InputError, match="not found"):
        open_store(tmp_path / "none.sqlite")


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from genepheno.embed import embed_fasta, load_encoder
    enc = load_encoder(weights=sys.argv[1], device="cpu")
    real, batches = enc.iter_embed, []
    def dying(seqs, toks_per_batch=None):
        for item in real(seqs, toks_per_batch):
            batches.append(item)
            if len(batches) == 3:  # the third batch is computed, then the process is killed
                os.kill(os.getpid(), signal.SIGKILL)
            yield item
    enc.iter_embed = dying
    embed_fasta(sys.argv[2], sys.argv[3], enc, toks_per_batch=600)
""")


def test_sigkill_loses_at_most_the_batch_in_flight(tmp_path, fasta):
    path, _ = fasta
    ckpt = make_checkpoint(tmp_path / "esm2_tiny.pt")
    store = tmp_path / "killed.sqlite"
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(ckpt), str(path), str(store)], capture_output=True)
    assert r.returncode == -9, r.stderr.decode()
    with open_store(store) as st:  # readable, holds the two committed batches only
        partial = len(st)
        assert 0 < partial < 30
    enc = load_encoder(weights=ckpt, device="cpu")
    stats = embed_fasta(path, store, enc, toks_per_batch=600)
    assert 0 < stats["already"] < 27 and stats["already"] + stats["embedded"] == 27
    embed_fasta(path, tmp_path / "clean.sqlite", enc, toks_per_batch=600)
    with open_store(store) as a, open_store(tmp_path / "clean.sqlite") as b:
        assert sorted(a.ids) == sorted(b.ids)
        assert np.abs(a.get(b.ids) - b.get(b.ids)).max() <= 1e-6


def test_shards_partition_and_merge_equals_one_run(tmp_path, fasta, kmer):
    path, records = fasta
    embed_fasta(path, tmp_path / "all.sqlite", kmer)
    parts = []
    for k in (1, 2, 3):
        p = tmp_path / f"part{k}.sqlite"
        embed_fasta(path, p, kmer, shard=(k, 3))
        parts.append(p)
    sizes = [len(open_store(p)) for p in parts]
    assert sum(sizes) == 30 and all(sizes)  # each ID in exactly one shard (duplicates go together)
    assert open_store(parts[0]).meta["shards"] == ["1/3"]
    half = merge_stores(tmp_path / "half.sqlite", parts[:2])
    assert half["shards"] == ["1/3", "2/3"] and half["records"] == sizes[0] + sizes[1]
    summary = merge_stores(tmp_path / "merged.sqlite", [tmp_path / "half.sqlite", parts[2]])
    assert summary == dict(records=30, vectors=27, inputs=2, shards=None)
    with open_store(tmp_path / "merged.sqlite") as m, open_store(tmp_path / "all.sqlite") as a:
        assert sorted(m.ids) == sorted(a.ids) and m.meta["shards"] is None and m.spec == a.spec
        np.testing.assert_array_equal(m.get(a.ids), a.get(a.ids))
    with pytest.raises(InputError, match="already exists"):
        merge_stores(tmp_path / "merged.sqlite", parts)
    merge_stores(tmp_path / "half.sqlite", [tmp_path / "half.sqlite", parts[2]])  # extend in place
    assert len(open_store(tmp_path / "half.sqlite")) == 30


def test_merge_refuses_different_models(tmp_path, fasta, kmer):
    path, _ = fasta
    embed_fasta(path, tmp_path / "k.sqlite", kmer, shard=(1, 2))
    ckpt = make_checkpoint(tmp_path / "esm2_tiny.pt")
    embed_fasta(path, tmp_path / "e1.sqlite", load_encoder(weights=ckpt, device="cpu"), shard=(2, 2))
    embed_fasta(path, tmp_path / "e2.sqlite", load_encoder(weights=ckpt, layer=1, device="cpu"), shard=(1, 2))
    with pytest.raises(InputError, match="different settings.*model: 'kmer' vs 'esm2_tiny'"):
        merge_stores(tmp_path / "m.sqlite", [tmp_path / "k.sqlite", tmp_path / "e1.sqlite"])
    with pytest.raises(InputError, match="layer: 2 vs 1"):
        merge_stores(tmp_path / "m.sqlite", [tmp_path / "e1.sqlite", tmp_path / "e2.sqlite"])
    assert not (tmp_path / "m.sqlite").exists()


def test_shard_parsing_is_deterministic():
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    for bad in ("0/4", "5/4", "a/b", "3"):
        with pytest.raises(GenephenoError, match="--shard"):
            parse_shard(bad)
    h = sequence_sha256("MKV")
    assert [in_shard(h, (k, 4)) for k in range(1, 5)].count(True) == 1
    assert in_shard(h, (int(h[:16], 16) % 4 + 1, 4))


def test_bad_fasta_records_give_clean_errors(tmp_path, kmer):
    (tmp_path / "bad.fa").write_text(">g1\nMKV\n>g2\nMK1V\n")
    with pytest.raises(InputError, match=r"bad.fa:3: record 'g2' has letter\(s\) '1'"):
        embed_fasta(tmp_path / "bad.fa", tmp_path / "s.sqlite", kmer)
    assert not (tmp_path / "s.sqlite").exists()
    (tmp_path / "j.fa").write_text(">g1\nMKV\n>g2\nMKJV\n>g3\nJJ\n")
    esm = load_encoder(weights=make_checkpoint(tmp_path / "esm2_tiny.pt"), device="cpu")
    with pytest.raises(InputError) as e:
        embed_fasta(tmp_path / "j.fa", tmp_path / "s.sqlite", esm)
    assert "2 sequence(s)" in str(e.value) and "g2 (line 3) ('J')" in str(e.value) and "g3 (line 5)" in str(e.value)
    assert json.dumps(embed_fasta(tmp_path / "j.fa", tmp_path / "s.sqlite", kmer)["embedded"]) == "3"
