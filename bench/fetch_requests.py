"""Requests needed to fetch 1,000 genes, against the local stand-in services (no internet).

Side by side in one run: genepheno's batched UniProt source versus the naive reference of one
UniProt search per gene (what a per-gene loop does), then the Ensembl and NCBI sources, then a
rerun that the cache answers. Prints the request counts and the ratio. UniProt must stay <= 10.

    python bench/fetch_requests.py [--genes 1000]
"""

import argparse
import random
import sys
import tempfile
import time

import requests

from genepheno.log import setup
from genepheno.sequences.fake_services import FakeServices
from genepheno.sequences.fetch import fetch, make_source
from genepheno.sequences.http import HttpSettings
from genepheno.sequences.ids import build_queries

AA = "ACDEFGHIKLMNPQRSTVWY"
CODON = dict(zip(AA, "GCC TGC GAC GAG TTC GGC CAC ATC AAG CTG ATG AAC CCC CAG CGG AGC ACC GTG TGG TAC".split()))


def synthetic(n, seed=0):
    """n human genes GPB0001..: UniProt entries (plus unreviewed and mouse decoys), Ensembl lookup
    objects with a canonical and a second transcript, NCBI docsums and GenPept records."""
    rnd = random.Random(seed)
    uniprot, genes, seqs, docs, gp = [], [], {}, [], []
    for i in range(1, n + 1):
        sym, seq = f"GPB{i:04d}", "M" + "".join(rnd.choice(AA) for _ in range(rnd.randint(80, 600)))
        gid, ens = str(900000 + i), f"ENSG{i:011d}"
        for acc, kind, tax, org in ((f"Q{i:05d}", "reviewed (Swiss-Prot)", 9606, "Homo sapiens"),
                                    (f"A0A{i:07d}"[:10], "unreviewed (TrEMBL)", 9606, "Homo sapiens"),
                                    (f"P{i:05d}", "reviewed (Swiss-Prot)", 10090, "Mus musculus")):
            uniprot.append({"entryType": f"UniProtKB {kind}", "primaryAccession": acc,
                            "entryAudit": {"sequenceVersion": 1},
                            "organism": {"scientificName": org, "taxonId": tax},
                            "genes": [{"geneName": {"value": sym if tax == 9606 else sym.capitalize()}}],
                            "uniProtKBCrossReferences": [{"database": "GeneID", "id": gid, "properties": []}],
                            "sequence": {"value": seq, "length": len(seq)}})
        t1, t2, p1, p2 = f"ENST{i:011d}", f"ENST{n + i:011d}", f"ENSP{i:011d}", f"ENSP{n + i:011d}"
        genes.append({"object_type": "Gene", "id": ens, "version": 1, "display_name": sym, "species": "homo_sapiens",
                      "biotype": "protein_coding", "canonical_transcript": f"{t1}.1", "Transcript": [
                          {"id": t1, "version": 1, "is_canonical": 1, "biotype": "protein_coding",
                           "Translation": {"id": p1, "version": 1, "length": len(seq)}},
                          {"id": t2, "version": 1, "is_canonical": 0, "biotype": "protein_coding",
                           "Translation": {"id": p2, "version": 1, "length": len(seq) - 10}}]})
        seqs.update({p1: seq, p2: seq[10:], t1: "".join(CODON[a] for a in seq) + "TGA"})
        docs.append(f'<DocumentSummary uid="{gid}"><Name>{sym}</Name><Status>0</Status><CurrentID>0</CurrentID>'
                    f"<OtherAliases></OtherAliases><Organism><ScientificName>Homo sapiens</ScientificName>"
                    f"<TaxID>9606</TaxID></Organism></DocumentSummary>")
        origin = "\n".join(f"{j + 1:>9} " + " ".join(seq[k:k + 10].lower() for k in range(j, min(j + 60, len(seq)), 10))
                           for j in range(0, len(seq), 60))
        gp.append(f"LOCUS       NP_{i:06d}            {len(seq)} aa            linear   PRI 01-JAN-2024\n"
                  f"DEFINITION  protein {sym} [Homo sapiens].\nACCESSION   NP_{i:06d}\nVERSION     NP_{i:06d}.1\n"
                  f"KEYWORDS    RefSeq; MANE Select.\nSOURCE      Homo sapiens (human)\n  ORGANISM  Homo sapiens\n"
                  f"            Eukaryota.\nFEATURES             Location/Qualifiers\n"
                  f"     source          1..{len(seq)}\n                     /organism=\"Homo sapiens\"\n"
                  f"                     /db_xref=\"taxon:9606\"\n     CDS             1..{len(seq)}\n"
                  f"                     /gene=\"{sym}\"\n                     /db_xref=\"GeneID:{gid}\"\n"
                  f"ORIGIN      \n{origin}\n//\n")
    esummary = ('<?xml version="1.0" encoding="UTF-8" ?>\n<eSummaryResult><DocumentSummarySet status="OK">'
                + "".join(docs) + "</DocumentSummarySet></eSummaryResult>\n")
    symbols = [f"GPB{i:04d}" for i in range(1, n + 1)]
    return symbols, {"uniprot": uniprot, "ensembl": {"genes": genes, "sequences": seqs},
                     "ncbi": {"esummary_xml": esummary, "genpept_text": "".join(gp)}}


def ours(fake, source, symbols, cache_dir, **kw):
    settings = HttpSettings(cache_dir=cache_dir, backoff=0.01, email="bench@example.org")
    src = make_source(source, settings, uniprot_url=fake.url("uniprot"), ensembl_url=fake.url("ensembl"),
                      ncbi_url=fake.url("ncbi"), **kw)
    before, t0 = fake.count(source), time.perf_counter()
    res = fetch(build_queries([(s, "bench") for s in symbols]), src)
    return len(res.hits), fake.count(source) - before, time.perf_counter() - t0


def naive_uniprot(fake, symbols):
    """Reference: one search per gene, as a per-gene loop would do."""
    s, found, t0 = requests.Session(), 0, time.perf_counter()
    for sym in symbols:
        r = s.get(fake.url("uniprot") + "/uniprotkb/search", timeout=30, params={
            "query": f'gene_exact:"{sym}" AND organism_id:9606 AND reviewed:true', "format": "json",
            "fields": "accession,sequence"})
        found += len(r.json()["results"]) == 1
    return found, len(symbols), time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=1000)
    args = ap.parse_args(argv)
    setup(-1)
    symbols, data = synthetic(args.genes)
    rows = []
    with FakeServices(**data) as fake, tempfile.TemporaryDirectory() as tmp:
        rows.append(("uniprot, one search per gene (reference)",) + naive_uniprot(fake, symbols))
        rows.append(("uniprot, genepheno (batched)",) + ours(fake, "uniprot", symbols, tmp))
        rows.append(("uniprot, genepheno rerun (cache)",) + ours(fake, "uniprot", symbols, tmp))
        rows.append(("ensembl, genepheno",) + ours(fake, "ensembl", symbols, tmp))
        # NCBI's 3 requests/s is waived here: the counts, not the pacing, are measured
        rows.append(("ncbi, genepheno",) + ours(fake, "ncbi", symbols, tmp, rate=1000))
    print(f"{'source':<44}{'resolved':>9}{'requests':>10}{'seconds':>9}")
    for name, ok, n, secs in rows:
        print(f"{name:<44}{ok:>9}{n:>10}{secs:>9.2f}")
    ref, batched = rows[0][2], rows[1][2]
    print(f"UniProt requests, reference / genepheno: {ref} / {batched} = {ref / max(batched, 1):.0f}x fewer")
    ok = batched <= 10 and rows[1][1] == args.genes and rows[2][2] == 0
    print("UniProt batching: " + ("OK (<= 10 requests for 1,000 genes)" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
