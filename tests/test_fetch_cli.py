"""`genepheno fetch` end to end (a real process against the local stand-in services): outputs,
exit codes, messages for bad input, cache reuse and --offline."""

import os
import subprocess
import sys

import pytest

from genepheno.io import read_tsv
from genepheno.sequences.fake_services import FakeServices
from genepheno.sequences.fasta import read_fasta, sequence_sha256


@pytest.fixture
def fake(fixtures):
    with FakeServices.from_dir(fixtures / "fetch") as f:
        yield f


def cli(fake, tmp_path, *args, stdin=None, env=None, urls=True):
    """Run ``genepheno fetch`` in a subprocess; returns (exit code, stdout, stderr)."""
    base = [sys.executable, "-m", "genepheno", "fetch", "--cache-dir", str(tmp_path / "cache"), "--backoff", "0.001",
            "--retries", "2", "--timeout", "5"]
    if urls and fake is not None:
        base += ["--uniprot-url", fake.url("uniprot"), "--ensembl-url", fake.url("ensembl"),
                 "--ncbi-url", fake.url("ncbi")]
    e = {k: v for k, v in os.environ.items() if not k.startswith("GENEPHENO_")}
    e.update(env or {})
    p = subprocess.run(base + [str(a) for a in args], input=stdin, capture_output=True, text=True, env=e,
                       cwd=tmp_path, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_outputs_and_exit_code_3(fake, tmp_path):
    code, out, err = cli(fake, tmp_path, "TP53", "INS", "7157", "CDKN2A", "NOTAGENE", "-o", tmp_path / "g.fasta")
    assert code == 3, err
    recs = read_fasta(tmp_path / "g.fasta")  # what `genepheno embed` reads
    assert [r.id for r in recs] == ["TP53", "INS", "7157"]
    assert recs[0].description == ("symbol=TP53 source=uniprot accession=P04637 version=4 taxid=9606 "
                                   "organism=Homo_sapiens")
    manifest = read_tsv(tmp_path / "g.manifest.tsv")
    assert [(m["input_id"], m["gene_id"], m["accession"], m["sequence_version"], m["length"]) for m in manifest] == [
        ("TP53", "TP53", "P04637", "4", "393"), ("INS", "INS", "P01308", "1", "110"),
        ("7157", "7157", "P04637", "4", "393")]
    assert manifest[0]["sha256"] == sequence_sha256(recs[0].sequence)
    missing = read_tsv(tmp_path / "g.missing.tsv")
    assert [(m["input_id"], m["reason"]) for m in missing] == [("CDKN2A", "ambiguous"), ("NOTAGENE", "not_found")]
    # one query for the 4 symbols, one for the Entrez ID
    assert "fetched 3 of 5 gene(s) from uniprot (2 request(s), 0 answered from the cache)" in err
    assert "2 ID(s) unresolved (1 not found, 1 ambiguous): see" in err


def test_rerun_costs_no_requests_and_offline_works(fake, tmp_path):
    args = ["TP53", "INS", "MGI:98834", "-o", tmp_path / "a.fa"]
    assert cli(fake, tmp_path, *args)[0] == 0
    n = fake.count()
    code, _, err = cli(fake, tmp_path, *args)
    assert code == 0 and fake.count() == n and "(0 request(s), 2 answered from the cache)" in err
    url = fake.url("uniprot")
    fake.stop()  # the service is gone: --offline answers from the cache
    code, _, err = cli(None, tmp_path, "--offline", "--uniprot-url", url, "TP53", "INS", "MGI:98834",
                       "-o", tmp_path / "b.fa")
    assert code == 0, err
    assert (tmp_path / "a.fa").read_bytes() == (tmp_path / "b.fa").read_bytes()
    code, _, err = cli(None, tmp_path, "--offline", "--uniprot-url", url, "BRCA1", "-o", tmp_path / "c.fa")
    assert code == 4
    assert read_tsv(tmp_path / "c.missing.tsv")[0]["reason"] == "source_error"
    assert "not in the cache and --offline is set" in read_tsv(tmp_path / "c.missing.tsv")[0]["detail"]


def test_refresh_asks_again(fake, tmp_path):
    cli(fake, tmp_path, "TP53", "-o", tmp_path / "a.fa")
    cli(fake, tmp_path, "TP53", "-o", tmp_path / "a.fa", "--refresh")
    assert fake.count() == 2


def test_service_down_exit_4_keeps_outputs(tmp_path):
    code, out, err = cli(None, tmp_path, "--uniprot-url", "http://127.0.0.1:9", "TP53", "-o", tmp_path / "x.fa")
    assert code == 4
    assert (tmp_path / "x.fa").read_text() == ""
    assert read_tsv(tmp_path / "x.missing.tsv")[0]["reason"] == "source_error"


def test_stdout_stdin_and_env_url(fake, tmp_path):
    env = {"GENEPHENO_UNIPROT_URL": fake.url("uniprot")}
    code, out, err = cli(fake, tmp_path, "-i", "-", "-o", "-", stdin="# genes\nTP53\nNOTAGENE\n", env=env, urls=False)
    assert code == 3
    assert out.startswith(">TP53 symbol=TP53 source=uniprot accession=P04637")
    assert "NOTAGENE\tnot_found\tno reviewed UniProtKB entry" in err  # no missing.tsv: listed on stderr


def test_input_file_column_and_ensembl_dna(fake, tmp_path):
    f = tmp_path / "genes.tsv"
    f.write_text("entrez_id\tsymbol\n7157\tTP53\n3630\tINS\n")
    code, out, err = cli(fake, tmp_path, "-i", f, "--column", "symbol", "--source", "ensembl", "--molecule", "dna",
                         "-o", tmp_path / "cds.fa.gz")
    assert code == 0, err
    recs = read_fasta(tmp_path / "cds.fa.gz", molecule="dna")
    assert [(r.id, len(r.sequence)) for r in recs] == [("TP53", 1182), ("INS", 333)]
    assert "transcript=ENST00000269305.9" in recs[0].description


def test_ncbi_via_cli(fake, tmp_path):
    code, out, err = cli(fake, tmp_path, "--source", "ncbi", "--email", "lab@example.org", "Trp53", "TP53",
                         "NOTAGENE", "--organism", "mouse", "-o", tmp_path / "n.fa")
    assert code == 3, err
    assert [r.id for r in read_fasta(tmp_path / "n.fa")] == ["Trp53"]
    # in mouse, TP53 is an alias of Trp53: two manifest rows, one FASTA record
    assert [(m["input_id"], m["gene_id"], m["accession"]) for m in read_tsv(tmp_path / "n.manifest.tsv")] == [
        ("Trp53", "Trp53", "NP_035770"), ("TP53", "Trp53", "NP_035770")]
    assert fake.log[0]["params"]["email"] == "lab@example.org"


@pytest.mark.parametrize("args,message", [
    ([], "no gene IDs given"),
    (["TP53", "ENST00000269305"], "1 unusable ID(s): 'ENST00000269305' (argument 2): an Ensembl transcript ID"),
    (["--id-type", "entrez", "TP53"], "'TP53' (argument 1): not an NCBI Gene ID (looks like a gene symbol)"),
    (["--organism", "human", "MGI:98834"], "a Mus musculus ID, but --organism is human"),
    (["--molecule", "dna", "TP53"], "--molecule dna (coding sequence) is only available with --source ensembl"),
    (["--source", "ncbi", "P04637"], "source ncbi does not take UniProt accessions"),
    (["--source", "nowhere", "TP53"], "unknown source 'nowhere'"),
    (["--offline", "--refresh", "TP53"], "--offline and --refresh contradict each other"),
    (["--organism", "martian", "TP53"], "unknown organism 'martian'"),
])
def test_bad_input_gives_one_clean_line_and_exit_1(fake, tmp_path, args, message):
    code, out, err = cli(fake, tmp_path, *args, "-o", tmp_path / "o.fa")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("genepheno: error: ") and message in last and "Traceback" not in err
    assert not (tmp_path / "o.fa").exists()


def test_usage_error_exit_2(fake, tmp_path):
    assert cli(fake, tmp_path, "--no-such-option")[0] == 2


def test_duplicates_and_mixed_types_are_reported(fake, tmp_path):
    code, out, err = cli(fake, tmp_path, "TP53", "tp53", "7157", "-o", tmp_path / "d.fa")
    assert code == 0
    assert "1 duplicate ID(s) ignored, e.g. 'tp53' at argument 2 repeats 'TP53' at argument 1" in err
    assert "mixed ID types: 1 gene symbol(s), 1 NCBI Gene ID(s)" in err
    assert [r.id for r in read_fasta(tmp_path / "d.fa")] == ["TP53", "7157"]
