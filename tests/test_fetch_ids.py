"""Gene ID lists for `genepheno fetch`: type detection, normalisation, organisms, bad input."""

import logging

import pytest

from genepheno.errors import GenephenoError, InputError
from genepheno.sequences.ids import build_queries, detect_type, normalise, parse_organism, read_id_list


@pytest.mark.parametrize("token,kind", [
    ("TP53", "symbol"), ("Trp53", "symbol"), ("HLA-A", "symbol"), ("C9orf72", "symbol"), ("Nkx2-5", "symbol"),
    ("1700001C19Rik", "symbol"), ("7157", "entrez"), ("MGI:98834", "mgi"), ("mgi:98834", "mgi"),
    ("ENSG00000141510", "ensembl"), ("ENSG00000141510.19", "ensembl"), ("ENSMUSG00000059552", "ensembl"),
    ("P04637", "uniprot"), ("A0A087X1Q1", "uniprot"), ("Q8N726", "uniprot"),
    ("ENST00000269305", None), ("P04637-2", None), ("HGNC:11998", None), ("TP 53", None), ("???", None),
])
def test_detect_type(token, kind):
    assert detect_type(token) == kind


def test_normalise_strips_versions_and_case():
    assert normalise("ensg00000141510.19", "ensembl") == "ENSG00000141510"
    assert normalise("mgi:98834", "mgi") == "MGI:98834"
    assert normalise("007157", "entrez") == "7157"
    assert normalise("p04637", "uniprot") == "P04637"
    assert normalise("7157", "symbol") is None  # a symbol needs a letter


def test_organisms():
    assert parse_organism("human") == 9606
    assert parse_organism("Mouse") == 10090
    assert parse_organism("10116") == 10116
    with pytest.raises(GenephenoError, match="unknown organism 'martian'"):
        parse_organism("martian")


def test_queries_carry_organism_per_id():
    qs = build_queries([("TP53", "a"), ("MGI:98834", "b"), ("ENSMUSG00000059552", "c"), ("7157", "d")])
    assert [(q.id_type, q.key, q.taxid) for q in qs] == [
        ("symbol", "TP53", 9606), ("mgi", "MGI:98834", 10090), ("ensembl", "ENSMUSG00000059552", 10090),
        ("entrez", "7157", None)]
    assert build_queries([("Trp53", "a")], organism="mouse")[0].taxid == 10090


def test_empty_list_is_an_error():
    with pytest.raises(GenephenoError, match="no gene IDs given"):
        build_queries([])


def test_unusable_ids_are_listed_with_reasons():
    with pytest.raises(GenephenoError) as e:
        build_queries([("TP53", "x:1"), ("ENST00000269305", "x:2"), ("P04637-2", "x:3"), ("HGNC:11998", "x:4")])
    msg = str(e.value)
    assert msg.startswith("3 unusable ID(s)")
    assert "'ENST00000269305' (x:2): an Ensembl transcript ID; give the gene ID" in msg
    assert "'P04637-2' (x:3): an isoform accession; fetch returns canonical sequences, give P04637" in msg
    assert "'HGNC:11998' (x:4): an HGNC ID; give the HGNC symbol instead" in msg


def test_forced_type_rejects_other_shapes():
    with pytest.raises(GenephenoError, match=r"'TP53' \(a\): not an NCBI Gene ID \(looks like a gene symbol\)"):
        build_queries([("7157", "b"), ("TP53", "a")], id_type="entrez")


def test_organism_conflict_is_an_error():
    with pytest.raises(GenephenoError, match="a Mus musculus ID, but --organism is human"):
        build_queries([("MGI:98834", "a")], organism="human")


def test_duplicates_are_dropped_with_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="genepheno")
    from genepheno.log import logger
    logger.propagate = True
    try:
        qs = build_queries([("TP53", "f:1"), ("tp53", "f:2"), ("ENSG00000141510", "f:3"),
                            ("ENSG00000141510.19", "f:4")])
    finally:
        logger.propagate = False
    assert [q.input_id for q in qs] == ["TP53", "ENSG00000141510"]
    assert "2 duplicate ID(s) ignored, e.g. 'tp53' at f:2 repeats 'TP53' at f:1" in caplog.text
    assert "mixed ID types: 1 gene symbol(s), 1 Ensembl gene ID(s)" in caplog.text


def test_read_id_list_from_args_file_and_column(tmp_path):
    f = tmp_path / "genes.tsv"
    f.write_text("# my genes\nentrez_id\tsymbol\n7157\tTP53\n\n3630\tINS\n")
    assert read_id_list(["TP53,INS", "BRCA1"]) == [("TP53", "argument 1"), ("INS", "argument 1"),
                                                  ("BRCA1", "argument 2")]
    assert read_id_list(input_path=f, column="symbol") == [("TP53", f"{f}:3"), ("INS", f"{f}:5")]
    assert [t for t, _ in read_id_list(input_path=f, column=1)] == ["entrez_id", "7157", "3630"]
    with pytest.raises(InputError, match="header has no column 'gene'"):
        read_id_list(input_path=f, column="gene")
