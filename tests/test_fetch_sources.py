"""Each sequence source against the local stand-in services (real response formats), the local
FASTA source, and what each returns for a gene with several isoforms."""

import gzip

import pytest
from Bio.Seq import Seq

from conftest import shared
from genepheno.errors import GenephenoError
from genepheno.sequences.fake_services import FakeServices
from genepheno.sequences.fasta import read_fasta
from genepheno.sequences.fetch import fetch, make_source
from genepheno.sequences.http import HttpSettings
from genepheno.sequences.ids import build_queries

P53_LEN, P53_MOUSE_LEN, DELTA40_LEN = 393, 387, 354


@pytest.fixture
def fake(fixtures):
    with FakeServices.from_dir(fixtures / "fetch") as f:
        yield f


def run(fake, ids, source="uniprot", organism=None, id_type=None, tmp=None, **kw):
    settings = HttpSettings(retries=2, backoff=0.001, timeout=5, cache_dir=tmp, email="lab@example.org")
    src = make_source(source, settings, uniprot_url=fake.url("uniprot") if fake else None,
                      ensembl_url=fake.url("ensembl") if fake else None, ncbi_url=fake.url("ncbi") if fake else None,
                      **kw)
    return fetch(build_queries([(i, f"arg {n}") for n, i in enumerate(ids, 1)], id_type=id_type, organism=organism),
                 src)


def by_input(result):
    return {h.query.input_id: h for h in result.hits}, {m.query.input_id: m for m in result.misses}


# ------------------------------------------------------------------ UniProt
def test_uniprot_every_id_type_in_one_request_per_type(fake):
    res = run(fake, ["TP53", "7157", "ENSG00000141510", "P04637", "Q15086", "INS"])
    hits, misses = by_input(res)
    assert not misses
    assert {i: (h.gene_id, h.accession, len(h.sequence)) for i, h in hits.items()} == {
        "TP53": ("TP53", "P04637", P53_LEN), "7157": ("7157", "P04637", P53_LEN),
        "ENSG00000141510": ("ENSG00000141510", "P04637", P53_LEN), "P04637": ("P04637", "P04637", P53_LEN),
        "Q15086": ("P04637", "P04637", P53_LEN),  # a secondary accession resolves to the primary
        "INS": ("INS", "P01308", 110)}
    assert hits["TP53"].version == "4" and hits["TP53"].organism == "Homo sapiens"
    assert res.requests == 4  # symbols (2 in one query), Entrez, Ensembl, accessions (2 in one query)
    queries = [r["params"]["query"] for r in fake.log]
    assert '(gene_exact:"TP53" OR gene_exact:"INS") AND reviewed:true AND organism_id:9606' in queries
    assert "(accession:P04637 OR accession:Q15086)" in queries


def test_uniprot_mouse_and_mgi(fake):
    res = run(fake, ["Trp53", "MGI:98834"], organism="mouse")
    hits, _ = by_input(res)
    assert (hits["Trp53"].accession, hits["Trp53"].gene_id, hits["Trp53"].symbol) == ("P02340", "Tp53", "Tp53")
    assert (hits["MGI:98834"].gene_id, len(hits["MGI:98834"].sequence)) == ("MGI:98834", P53_MOUSE_LEN)
    # MGI IDs go to UniProt without the inner colon, which UniProt rejects
    assert any("xref:mgi-98834" in r["params"]["query"] for r in fake.log)


def test_uniprot_ambiguous_not_found_and_reviewed_only(fake):
    res = run(fake, ["CDKN2A", "HBA1", "HBA2", "NOTAGENE", "1029"])
    hits, misses = by_input(res)
    assert misses["CDKN2A"].reason == "ambiguous"
    assert misses["CDKN2A"].detail == "2 reviewed entries: P42771 (CDKN2A), Q8N726 (CDKN2A)"
    assert misses["1029"].reason == "ambiguous"
    assert misses["NOTAGENE"].reason == "not_found"
    assert "no reviewed UniProtKB entry for gene symbol NOTAGENE in Homo sapiens" in misses["NOTAGENE"].detail
    assert hits["HBA1"].accession == hits["HBA2"].accession == "P69905"  # one entry, two genes
    assert res.exit_code == 3


def test_uniprot_isoforms_canonical_only(fake):
    """P04637 has isoforms (Delta40p53 is 354 aa); UniProt returns the entry's canonical sequence,
    and the unreviewed TrEMBL fragment K7PPA8 of the same gene is never used."""
    h = run(fake, ["TP53"]).hits[0]
    assert len(h.sequence) == P53_LEN and h.sequence.startswith("MEEPQSDPSV") and h.accession == "P04637"


def test_uniprot_pagination_follows_link_next(fake):
    src_kw = {"page_size": 2}
    res = run(fake, ["TP53", "CDKN2A", "INS", "HBA1", "BRCA1"], **src_kw)
    assert len(res.hits) == 4 and fake.count("uniprot") == 3  # 6 entries, 2 a page
    assert "cursor" in fake.log[-1]["params"] and fake.log[-1]["params"]["size"] == "2"


def test_uniprot_batches_many_ids(fake):
    res = run(fake, ["TP53", "CDKN2A", "INS", "HBA1", "BRCA1"], max_terms=2)
    assert fake.count("uniprot") == 3 and len(res.hits) == 4


def test_uniprot_partial_failure_keeps_the_other_batches(fake):
    fake.fail_next("uniprot", *[("status", 503)] * 3)  # the first batch fails every attempt
    res = run(fake, ["TP53", "CDKN2A", "INS", "HBA1", "BRCA1"], max_terms=2)
    hits, misses = by_input(res)
    assert {k: m.reason for k, m in misses.items()} == {"TP53": "source_error", "CDKN2A": "source_error"}
    assert "HTTP 503 after 3 attempt(s)" in misses["TP53"].detail
    assert sorted(hits) == ["BRCA1", "HBA1", "INS"]
    assert res.exit_code == 4


def test_uniprot_total_mismatch_is_a_source_error(fake):
    fake.fail_next("uniprot", ("headers", {"x-total-results": "9"}))
    res = run(fake, ["TP53"])
    assert res.misses[0].reason == "source_error" and "got 1 of 9 results" in res.misses[0].detail


def test_uniprot_bad_query_answer_is_reported(fake):
    res = run(fake, ["TP53"], organism="human")
    assert not res.misses
    fake.fail_next("uniprot", ("status", 400))
    res = run(fake, ["INS"])
    assert res.misses[0].reason == "source_error" and "HTTP 400" in res.misses[0].detail


# ------------------------------------------------------------------ Ensembl
def test_ensembl_canonical_translation(fake):
    res = run(fake, ["TP53", "INS", "ENSG00000141510", "ENSMUSG00000059552"], source="ensembl")
    hits, misses = by_input(res)
    assert not misses
    t = hits["TP53"]
    assert (t.accession, t.version, len(t.sequence), t.note) == (
        "ENSP00000269305", "4", P53_LEN, "transcript=ENST00000269305.9")  # not ENSP00000410739 (Delta40, 354 aa)
    assert (hits["ENSMUSG00000059552"].organism, hits["ENSMUSG00000059552"].taxid) == ("Mus musculus", 10090)
    # lookups: one POST for the symbols, one for the gene IDs, then one POST for all sequences
    assert [(r["method"], r["path"]) for r in fake.log] == [
        ("POST", "lookup/id"), ("POST", "lookup/symbol/homo_sapiens"), ("POST", "sequence/id")]


def test_ensembl_cds_translates_to_the_protein(fake):
    prot = {h.query.input_id: h.sequence for h in run(fake, ["TP53", "INS"], source="ensembl").hits}
    res = run(fake, ["TP53", "INS"], source="ensembl", molecule="dna")
    for h in res.hits:
        # Ensembl's CDS keeps the stop codon
        assert h.accession.startswith("ENST") and len(h.sequence) == 3 * len(prot[h.query.input_id]) + 3
        assert str(Seq(h.sequence).translate()) == prot[h.query.input_id] + "*"


def test_ensembl_xrefs_noncoding_and_unknown(fake):
    res = run(fake, ["7157", "P04637", "MGI:98834", "MALAT1", "NOTAGENE"], source="ensembl")
    hits, misses = by_input(res)
    assert hits["7157"].accession == hits["P04637"].accession == "ENSP00000269305"
    assert hits["MGI:98834"].accession == "ENSMUSP00000104298"
    assert misses["MALAT1"].detail == ("canonical transcript ENST00000534336 of ENSG00000251562 is lncRNA "
                                       "(no translation)")
    assert misses["NOTAGENE"].reason == "not_found"


def test_ensembl_unknown_species_is_a_source_error(fake):
    res = run(fake, ["TP53"], source="ensembl", organism="9999")
    assert res.misses[0].reason == "source_error"
    assert "Can not find internal name for species '9999'" in res.misses[0].detail


# ------------------------------------------------------------------ NCBI
def test_ncbi_refseq_select(fake):
    res = run(fake, ["TP53", "7157", "CDKN2A", "INS", "p53"], source="ncbi", rate=1000)
    hits, misses = by_input(res)
    assert not misses
    assert (hits["TP53"].accession, hits["TP53"].version, hits["TP53"].note) == ("NP_000537", "3", "select=MANE_Select")
    assert len(hits["TP53"].sequence) == P53_LEN  # not NP_001119584 (isoform g, 354 aa)
    assert hits["CDKN2A"].accession == "NP_000068"  # p16INK4a (MANE), not ARF NP_478102
    assert hits["p53"].gene_id == "TP53"  # an alias resolves to the official symbol
    assert [r["path"] for r in fake.log] == ["esearch.fcgi", "esummary.fcgi", "esearch.fcgi", "efetch.fcgi"]
    first = fake.log[0]["params"]
    assert first["tool"] == "genepheno" and first["email"] == "lab@example.org"


def test_ncbi_mouse_and_unknowns(fake):
    res = run(fake, ["Trp53", "NOTAGENE", "999999999"], source="ncbi", organism="mouse", rate=1000)
    hits, misses = by_input(res)
    assert (hits["Trp53"].accession, hits["Trp53"].note) == ("NP_035770", "select=RefSeq_Select")
    assert misses["NOTAGENE"].detail == "NCBI Gene has no symbol NOTAGENE in Mus musculus"
    assert misses["999999999"].detail == "NCBI Gene has no ID 999999999"


def test_ncbi_rate_and_unsupported_types(fake):
    src = make_source("ncbi", HttpSettings(), ncbi_url=fake.url("ncbi"))
    assert src.client.rate == 3.0
    assert make_source("ncbi", HttpSettings(), ncbi_url=fake.url("ncbi"), api_key="K").client.rate == 10.0
    with pytest.raises(GenephenoError, match="source ncbi does not take Ensembl gene IDs"):
        fetch(build_queries([("ENSG00000141510", "a")]), src)


# ------------------------------------------------------------------ local FASTA
def test_fasta_source_by_gene_name(fixtures):
    res = run(None, ["TP53", "P04637", "CDKN2A", "INS"], source=f"fasta:{fixtures / 'fetch' / 'uniprot_local.fasta'}")
    hits, misses = by_input(res)
    assert (hits["TP53"].accession, len(hits["TP53"].sequence), hits["TP53"].version) == ("P04637", P53_LEN, "4")
    assert misses["CDKN2A"].reason == "ambiguous" and res.requests == 0
    mouse = run(None, ["TP53"], organism="mouse", source=f"fasta:{fixtures / 'fetch' / 'uniprot_local.fasta'}")
    assert mouse.hits[0].accession == "P02340"


def test_fasta_source_with_idmapping(fixtures):
    f = fixtures / "fetch"
    res = run(None, ["7157", "MGI:98834", "ENSG00000141510", "1029"], source=f"fasta:{f / 'uniprot_local.fasta'}",
              id_map=f / "idmapping.dat")
    hits, misses = by_input(res)
    assert hits["7157"].accession == "P04637"  # sp preferred over the tr fragment K7PPA8
    assert hits["MGI:98834"].accession == "P02340" and hits["ENSG00000141510"].accession == "P04637"
    assert misses["1029"].detail == "2 records: P42771 (CDKN2A), Q8N726 (CDKN2A)"


def test_fasta_source_needs_a_map_for_entrez(fixtures):
    with pytest.raises(GenephenoError, match="cannot match NCBI Gene IDs .* give --id-map TABLE"):
        run(None, ["7157"], source=f"fasta:{fixtures / 'fetch' / 'uniprot_local.fasta'}")


def test_fasta_source_on_shared_swissprot(tmp_path):
    fasta = shared("debian-metastudent-data_2.0.1-8", "goasp_201401_human.fasta.gz")
    table = shared("debian-r-bioc-org.hs.eg.db_3.16.0-1", "entrez_uniprot.tsv.gz")
    res = run(None, ["7157", "3630", "1029"], source=f"fasta:{fasta}", id_map=table)
    hits, misses = by_input(res)
    assert (hits["7157"].accession, len(hits["7157"].sequence)) == ("P04637", P53_LEN)
    assert hits["3630"].accession == "P01308"
    assert misses["1029"].reason == "ambiguous"
    with gzip.open(fasta, "rt") as fh:
        assert sum(line.startswith(">") for line in fh) == 18214
    # the written FASTA is what `genepheno embed` reads: IDs are the gene IDs
    from genepheno.sequences.fetch import write_outputs
    write_outputs(res, tmp_path / "g.fa")
    assert [r.id for r in read_fasta(tmp_path / "g.fa")] == ["7157", "3630"]


def test_uniprot_secondary_accession_when_the_reply_omits_them(fake, monkeypatch):
    from genepheno.sequences.fake_services import UniProtData
    trim = UniProtData.trim
    monkeypatch.setattr(UniProtData, "trim", staticmethod(
        lambda e, fields: {k: v for k, v in trim(e, fields).items() if k != "secondaryAccessions"}))
    res = run(fake, ["P01308", "Q15086", "P99999"])
    hits, misses = by_input(res)
    assert hits["Q15086"].accession == "P04637" and hits["P01308"].accession == "P01308"
    assert misses["P99999"].reason == "not_found"
    assert fake.count("uniprot") == 3  # the batch, then Q15086 and P99999 asked alone


def test_a_bad_sequence_fails_its_gene_only(fixtures):
    import json
    entries = json.loads((fixtures / "fetch" / "uniprot_entries.json").read_text())
    ins = next(e for e in entries if e["primaryAccession"] == "P01308")
    ins["sequence"]["value"] = "MALW1RLL"
    with FakeServices(uniprot=entries) as f:
        hits, misses = by_input(run(f, ["TP53", "INS"]))
    assert list(hits) == ["TP53"]
    assert misses["INS"].reason == "source_error"
    assert "P01308: sequence has invalid letter(s) '1'" in misses["INS"].detail
