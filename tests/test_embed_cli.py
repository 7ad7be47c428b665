"""`genepheno embed` and `genepheno embed merge` on the command line."""

import urllib.error

import numpy as np
import torch
from click.testing import CliRunner
from test_embed_esm import make_checkpoint, random_seqs

from genepheno.cli import main
from genepheno.embed import open_store
from genepheno.sequences.fasta import write_fasta


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_embed_shards_merge_and_resume(tmp_path):
    fa = tmp_path / "g.fa"
    write_fasta(fa, [(f"NCBIGene:{i}", "", s) for i, s in enumerate(random_seqs([30 + 9 * i for i in range(12)]))])
    ckpt = make_checkpoint(tmp_path / "esm2_tiny.pt")
    common = ["--weights", ckpt, "--device", "cpu", "--toks-per-batch", 512]
    assert run("embed", fa, "-o", tmp_path / "a.sqlite", *common).exit_code == 0
    for k in (1, 2):
        r = run("embed", fa, "-o", tmp_path / f"s{k}.sqlite", "--shard", f"{k}/2", *common)
        assert r.exit_code == 0, r.output
    r = run("embed", "merge", "-o", tmp_path / "m.sqlite", tmp_path / "s1.sqlite", tmp_path / "s2.sqlite")
    assert r.exit_code == 0, r.output
    with open_store(tmp_path / "a.sqlite") as a, open_store(tmp_path / "m.sqlite") as m:
        assert a.meta["model"] == "esm2_tiny" and a.meta["dim"] == 32 and len(m) == 12
        assert np.abs(a.get(a.ids) - m.get(a.ids)).max() <= 1e-6
    before = (tmp_path / "a.sqlite").read_bytes()
    r = run("embed", "fasta", fa, "-o", tmp_path / "a.sqlite", *common)  # explicit subcommand; nothing to do
    assert r.exit_code == 0 and (tmp_path / "a.sqlite").read_bytes() == before


def test_embed_errors_are_one_line(tmp_path, monkeypatch):
    import esm.pretrained

    fa = tmp_path / "g.fa"
    fa.write_text(">g1\nMKV\n")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(esm.pretrained, "load_hub_workaround",
                        lambda url: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    for args, expected in [
        (["--model", "esm2_t6_8M_UR50D"], "esm2_t6_8M_UR50D.pt are not in"),
        (["--model", "kmer", "--shard", "3/2"], "--shard 3/2: K must be between 1 and N"),
        (["--model", "kmer", "--layer", "3"], "--weights and --layer do not apply to --model kmer"),
    ]:
        r = run("embed", fa, "-o", tmp_path / "x.sqlite", *args)
        assert r.exit_code == 1 and r.output.count("genepheno: error:") == 1 and expected in r.output, r.output
        assert "Traceback" not in r.output and r.output.strip().count("\n") == 0
    (tmp_path / "bad.fa").write_text("no header\n")
    r = run("embed", tmp_path / "bad.fa", "-o", tmp_path / "x.sqlite", "--model", "kmer")
    assert r.exit_code == 1 and "text before the first '>' header" in r.output
    assert not (tmp_path / "x.sqlite").exists()
