"""A few live queries (off by default; `python -m pytest --internet tests/test_fetch_live.py`).
They check that the real services still answer in the formats the stand-ins imitate."""

import os

import pytest

from genepheno.sequences.fetch import fetch, make_source
from genepheno.sequences.http import HttpSettings
from genepheno.sequences.ids import build_queries

pytestmark = pytest.mark.internet
EMAIL = os.environ.get("GENEPHENO_EMAIL", "genepheno-tests@example.org")


def live(source, ids, organism=None, **kw):
    settings = HttpSettings(timeout=60, retries=3, email=EMAIL)  # no cache: always ask the service
    res = fetch(build_queries([(i, "live") for i in ids], organism=organism), make_source(source, settings, **kw))
    return {h.query.input_id: h for h in res.hits}, {m.query.input_id: m for m in res.misses}


def test_live_uniprot():
    hits, misses = live("uniprot", ["TP53", "7157", "MGI:98834", "CDKN2A"])
    assert (hits["TP53"].accession, len(hits["TP53"].sequence)) == ("P04637", 393)
    assert hits["7157"].accession == "P04637" and hits["MGI:98834"].accession == "P02340"
    assert misses["CDKN2A"].reason == "ambiguous"  # P42771 (p16) and Q8N726 (ARF)


def test_live_ensembl():
    hits, _ = live("ensembl", ["TP53", "ENSG00000141510"])
    assert hits["TP53"].accession == "ENSP00000269305" and len(hits["TP53"].sequence) == 393


def test_live_ncbi():
    hits, _ = live("ncbi", ["TP53", "7157"])
    assert hits["TP53"].accession == "NP_000537" and len(hits["TP53"].sequence) == 393
