"""NCBI source: each gene's RefSeq Select protein (MANE Select for human genes), via E-utilities.

Bio.Entrez parses every reply (``Entrez.read`` with Biopython's bundled DTDs; GenPept through
``Bio.SeqIO``) and its conventions are kept: ``tool``/``email``/``api_key`` on every request, at most
3 requests a second (10 with an API key), POST beyond 200 IDs. The requests themselves go through
genepheno's HTTP client rather than Bio.Entrez's opener, whose host is fixed, which has no timeout,
and which retries after a fixed 15 s ignoring ``Retry-After``; ours adds the cache and a base URL.

Batched: ``esearch`` (gene: ``"SYM"[sym] OR ...``) for symbols, ``esummary`` (gene, v2.0) for names,
status and organism, ``esearch`` (protein: ``refseq_select[filter] AND ("SYM"[Gene Name] OR ...)``)
and ``efetch`` (protein, GenPept text), whose ``GeneID`` cross-reference maps proteins to genes.
"""

import io
from collections import defaultdict

from Bio import Entrez, SeqIO

from genepheno.sequences.http import HttpClient, SourceError
from genepheno.sequences.ids import organism_name
from genepheno.sequences.sources import AMBIGUOUS, NOT_FOUND, SOURCE_ERROR, Hit, Miss, Source, chunks, clean_sequence

DEFAULT_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
SEARCH_BATCH, FETCH_BATCH = 100, 200
SECRET_PARAMS = ("api_key", "email", "tool")


def _entrez(resp):
    return Entrez.read(io.BytesIO(resp.body), validate=False, ignore_errors=True)


def _genpept(resp):
    return list(SeqIO.parse(io.StringIO(resp.text()), "genbank"))


class NcbiSource(Source):
    name = "ncbi"
    types = ("symbol", "entrez")

    def __init__(self, settings, base_url=None, email=None, api_key=None, rate=None, sleep=None):
        kw = {} if sleep is None else {"sleep": sleep}
        rate = rate or (10.0 if api_key else 3.0)  # NCBI's limits, as Bio.Entrez applies them
        self.client = HttpClient("ncbi", base_url or DEFAULT_URL, settings, rate,
                                 secret_params=SECRET_PARAMS, **kw)
        self.clients = (self.client,)
        self.common = {k: v for k, v in (("tool", "genepheno"), ("email", email), ("api_key", api_key)) if v}

    def _call(self, util, params, parse=_entrez):
        params = {**params, **self.common}
        many = "id" in params and params["id"].count(",") >= FETCH_BATCH - 1
        if many or sum(len(str(v)) for v in params.values()) > 1000:  # NCBI asks for POST here
            resp, parsed = self.client.post(f"{util}.fcgi", data=params, parse=parse)
        else:
            resp, parsed = self.client.get(f"{util}.fcgi", params=params, parse=parse)
        if resp.status != 200:
            raise SourceError(f"ncbi: HTTP {resp.status} from {util}: {resp.body[:200].decode('utf-8', 'replace')}")
        return parsed

    def _resolve(self, queries, on_batch):
        hits, misses = [], []
        genes = {}  # query -> gene docsum
        ids = {q: q.key for q in queries if q.id_type == "entrez"}
        by_taxid = defaultdict(list)
        for q in queries:
            if q.id_type == "symbol":
                by_taxid[q.taxid].append(q)
        found_uids = {}
        for taxid, qs in by_taxid.items():
            for batch in chunks(qs, SEARCH_BATCH):
                term = "(" + " OR ".join(f'"{q.key}"[sym]' for q in batch) + f") AND {taxid}[taxid]"
                _, m = self.guarded(batch, self._search_genes, term, batch, found_uids)
                misses += m
        failed = {m.query for m in misses}
        uids = sorted(set(ids.values()) | {u for us in found_uids.values() for u in us}, key=int)
        docs = {}
        for batch in chunks(uids, FETCH_BATCH):
            affected = [q for q in queries if q not in failed and
                        (ids.get(q) in batch or set(found_uids.get(q, ())) & set(batch))]
            _, m = self.guarded(affected, self._summaries, batch, docs)
            misses += m
            failed |= {x.query for x in m}
        for q in queries:
            if q in failed:
                continue
            gene, miss = self._pick_gene(q, docs, found_uids.get(q, ()))
            if gene:
                genes[q] = gene
            else:
                misses.append(miss)
        per_taxid = defaultdict(list)
        for q, g in genes.items():
            per_taxid[g["taxid"]].append(q)
        for taxid, qs in per_taxid.items():
            for batch in chunks(qs, SEARCH_BATCH):
                h, m = self.guarded(batch, self._proteins, taxid, {q: genes[q] for q in batch})
                hits += h
                misses += m
                on_batch(len(batch))
        return hits, misses

    def _search_genes(self, term, batch, found_uids):
        rec = self._call("esearch", {"db": "gene", "term": term, "retmax": 10000})
        for q in batch:
            found_uids[q] = list(rec["IdList"])  # narrowed per symbol by _pick_gene
        return [], []

    def _summaries(self, uids, docs):
        rec = self._call("esummary", {"db": "gene", "id": ",".join(uids), "version": "2.0"})
        for d in rec["DocumentSummarySet"]["DocumentSummary"]:
            if "Name" not in d:
                continue  # an <error> docsum: unknown UID
            org = d.get("Organism", {})
            docs[str(d.attributes["uid"])] = {
                "uid": str(d.attributes["uid"]), "name": str(d["Name"]), "status": str(d.get("Status", "0")),
                "current": str(d.get("CurrentID", "0")), "taxid": int(org.get("TaxID", 0) or 0),
                "organism": str(org.get("ScientificName", "")),
                "aliases": [a.strip() for a in str(d.get("OtherAliases", "")).split(",") if a.strip()]}
        return [], []

    def _pick_gene(self, q, docs, candidates):
        if q.id_type == "entrez":
            d = docs.get(q.key)
            if d is None:
                return None, Miss(q, NOT_FOUND, f"NCBI Gene has no ID {q.key}")
            if d["status"] != "0":
                why = f"replaced by {d['current']}" if d["current"] not in ("", "0") else "discontinued"
                return None, Miss(q, NOT_FOUND, f"NCBI Gene {q.key} ({d['name']}) is {why}")
            if q.taxid and d["taxid"] != q.taxid:
                return None, Miss(q, NOT_FOUND, f"NCBI Gene {q.key} is a {d['organism']} gene, "
                                  f"not {organism_name(q.taxid)}")
            return d, None
        live = [docs[u] for u in candidates if u in docs and docs[u]["status"] == "0" and docs[u]["taxid"] == q.taxid]
        key = q.key.upper()
        found = [d for d in live if d["name"].upper() == key] or \
                [d for d in live if key in (a.upper() for a in d["aliases"])]
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, Miss(q, NOT_FOUND, f"NCBI Gene has no symbol {q.key} in {organism_name(q.taxid)}")
        return None, Miss(q, AMBIGUOUS, f"{len(found)} NCBI genes: "
                          + ", ".join(f"{d['uid']} ({d['name']})" for d in found))

    def _proteins(self, taxid, genes):
        term = (f"refseq_select[filter] AND txid{taxid}[Organism:noexp] AND ("
                + " OR ".join(sorted({f'"{g["name"]}"[Gene Name]' for g in genes.values()})) + ")")
        rec = self._call("esearch", {"db": "protein", "term": term, "retmax": 10000, "idtype": "acc"})
        by_gene = defaultdict(list)
        for batch in chunks(list(rec["IdList"]), FETCH_BATCH):
            records = self._call("efetch", {"db": "protein", "id": ",".join(batch), "rettype": "gp",
                                            "retmode": "text"}, parse=_genpept)
            if len(records) != len(batch):
                raise SourceError(f"ncbi: efetch returned {len(records)} of {len(batch)} protein records")
            for r in records:
                info = _protein_info(r)
                by_gene[info["geneid"]].append(info)
        hits, misses = [], []
        for q, g in genes.items():
            found = by_gene.get(g["uid"], [])
            if len(found) > 1:
                found = [p for p in found if "MANE Select" in p["keywords"]] or found
            if len(found) == 1 and found[0]["sequence"] is None:
                misses.append(Miss(q, SOURCE_ERROR, found[0]["problem"]))
            elif len(found) == 1:
                p = found[0]
                gene_id = g["name"] if q.id_type == "symbol" else q.key
                tag = "select=MANE_Select" if "MANE Select" in p["keywords"] else "select=RefSeq_Select"
                hits.append(Hit(q, gene_id, g["name"], self.name, p["accession"], p["version"], g["taxid"],
                                g["organism"], p["sequence"], tag))
            elif not found:
                misses.append(Miss(q, NOT_FOUND, f"NCBI gene {g['uid']} ({g['name']}) has no RefSeq Select protein"))
            else:
                misses.append(Miss(q, AMBIGUOUS, f"{len(found)} RefSeq Select proteins: "
                                   + ", ".join(p["accession"] for p in found)))
        return hits, misses


def _protein_info(record):
    geneid, taxid = None, None
    for f in record.features:
        for x in f.qualifiers.get("db_xref", []):
            if x.startswith("GeneID:") and f.type == "CDS":
                geneid = x.split(":", 1)[1]
            elif x.startswith("taxon:"):
                taxid = int(x.split(":", 1)[1])
    acc, _, version = record.id.partition(".")
    keywords = " ".join(record.annotations.get("keywords", []))
    try:
        seq, problem = clean_sequence(str(record.seq)), None
    except ValueError as e:  # fails this gene only
        seq, problem = None, f"ncbi: bad sequence in {record.id}: {e}"
    return {"problem": problem, "geneid": geneid, "taxid": taxid, "accession": acc, "version": version,
            "keywords": keywords,
            "sequence": seq}
