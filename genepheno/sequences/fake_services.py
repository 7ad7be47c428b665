"""Local stand-ins for UniProt REST, Ensembl REST and NCBI E-utilities, for offline tests and
benchmarks: one HTTP server on 127.0.0.1 answering under ``/uniprot``, ``/ensembl`` and ``/ncbi``
in each service's documented formats, from data given in those formats (UniProtKB JSON entries,
Ensembl ``lookup`` objects, an E-utilities ``esummary`` document and GenPept records).

Faults can be queued per service (``fail_next``): an HTTP status with headers (429 + Retry-After,
500), a delay (for timeouts), a malformed body, or a truncated stream. Every request is logged.

Covered: ``GET /uniprotkb/search`` (query syntax ``field:value``, ``AND``/``OR``/parentheses; fields
gene_exact, accession, reviewed, organism_id, xref; ``format=json|tsv|fasta``, ``size``, cursor
pagination with ``Link``/``x-total-results``); Ensembl ``lookup/id``, ``lookup/symbol`` (GET and POST),
``xrefs/symbol``, ``sequence/id`` (GET and POST, ``type=protein|cds``); NCBI ``esearch`` (gene by
``[sym]``/``[taxid]``, protein by ``[Gene Name]``/``txid..[Organism:noexp]``/``refseq_select[filter]``),
``esummary`` (gene, v2.0) and ``efetch`` (protein, ``rettype=gp``).
"""

import base64
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

ESEARCH_DOCTYPE = ('<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
                   '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">')
ESUMMARY_DOCTYPE = ('<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary gene 20130207//EN" '
                    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20130207/esummary_gene.dtd">')


class HttpAnswer(Exception):
    def __init__(self, status, body, ctype="application/json", headers=None):
        self.status, self.body, self.ctype, self.headers = status, body, ctype, headers or {}


# ------------------------------------------------------------------ UniProt query language
_TOKEN = re.compile(r'\s*(\(|\)|\bAND\b|\bOR\b|\bNOT\b|[A-Za-z_]+:"[^"]*"|[A-Za-z_]+:[^\s()]+)')


def _tokens(query):
    pos, out = 0, []
    query = query.strip()
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if not m:
            raise HttpAnswer(400, json.dumps({"url": "uniprotkb/search", "messages": [
                f"query parse error at position {pos}: {query[pos:pos + 20]!r}"]}))
        out.append(m.group(1))
        pos = m.end()
    return out


def _parse_query(tokens):
    """-> nested ('or', [...]) / ('and', [...]) / ('not', x) / ('term', field, value)."""
    pos = 0

    def or_expr():
        nonlocal pos
        items = [and_expr()]
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            items.append(and_expr())
        return ("or", items)

    def and_expr():
        nonlocal pos
        items = [atom()]
        while pos < len(tokens) and tokens[pos] in ("AND", "NOT"):
            if tokens[pos] == "AND":
                pos += 1
            if tokens[pos] == "NOT":
                pos += 1
                items.append(("not", atom()))
            else:
                items.append(atom())
        return ("and", items)

    def atom():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            e = or_expr()
            pos += 1  # ')'
            return e
        field, value = tok.split(":", 1)
        return ("term", field, value.strip('"'))

    return or_expr()


class UniProtData:
    FIELDS = {"gene_exact", "accession", "reviewed", "organism_id", "xref", "gene"}

    def __init__(self, entries):
        self.entries = list(entries)

    def match(self, node, e):
        kind = node[0]
        if kind == "or":
            return any(self.match(n, e) for n in node[1])
        if kind == "and":
            return all(self.match(n, e) for n in node[1])
        if kind == "not":
            return not self.match(node[1], e)
        _, field, value = node
        v = value.upper()
        if field in ("gene_exact", "gene"):
            names = [g["geneName"]["value"] for g in e.get("genes", []) if g.get("geneName")]
            names += [s["value"] for g in e.get("genes", []) for s in g.get("synonyms", [])]
            return v in (n.upper() for n in names)
        if field == "accession":
            return v == e["primaryAccession"] or v in e.get("secondaryAccessions", [])
        if field == "reviewed":
            return ("unreviewed" not in e["entryType"]) == (value.lower() == "true")
        if field == "organism_id":
            return str(e["organism"]["taxonId"]) == value
        if field == "xref":
            db, _, ident = value.partition("-")
            for x in e.get("uniProtKBCrossReferences", []):
                if x["database"].lower() != db.lower():
                    continue
                ids = {x["id"].upper()} | {p["value"].split(".")[0].upper() for p in x.get("properties", [])
                                           if p["key"] == "GeneId"}
                if db.lower() == "mgi":
                    ids = {i.split(":", 1)[1] for i in ids if ":" in i}  # indexed without the MGI: prefix
                if ident.upper() in ids:
                    return True
            return False
        raise AssertionError(field)

    def check(self, node):
        if node[0] in ("or", "and"):
            for n in node[1]:
                self.check(n)
        elif node[0] == "not":
            self.check(node[1])
        else:
            _, field, value = node
            if field not in self.FIELDS:
                raise HttpAnswer(400, json.dumps({"url": "uniprotkb/search",
                                                  "messages": [f"'{field}' is not a valid search field"]}))
            if field == "xref" and value.lower().startswith("mgi-") and ":" in value:
                raise HttpAnswer(400, json.dumps({"url": "uniprotkb/search", "messages": [
                    f"query parse error: invalid xref value '{value}'"]}))

    @staticmethod
    def trim(e, fields):
        out = {"entryType": e["entryType"], "primaryAccession": e["primaryAccession"]}
        f = set(fields.split(",")) if fields else None
        keep = {"accession": ["secondaryAccessions"], "id": ["uniProtkbId"], "gene_names": ["genes"],
                "gene_primary": ["genes"], "organism_name": ["organism"], "organism_id": ["organism"],
                "sequence": ["sequence"], "sequence_version": ["entryAudit"], "length": ["sequence"]}
        for name, keys in keep.items():
            if f is None or name in f:
                out.update({k: e[k] for k in keys if k in e})
        dbs = {x[5:].lower() for x in (f or ()) if x.startswith("xref_")}
        if f is None or dbs:
            out["uniProtKBCrossReferences"] = [x for x in e.get("uniProtKBCrossReferences", [])
                                               if f is None or x["database"].lower() in dbs]
        return out

    @staticmethod
    def fasta(e):
        names = [g["geneName"]["value"] for g in e.get("genes", []) if g.get("geneName")]
        db = "tr" if "unreviewed" in e["entryType"] else "sp"
        org = e["organism"]
        head = (f">{db}|{e['primaryAccession']}|{e.get('uniProtkbId', '')} OS={org['scientificName']} "
                f"OX={org['taxonId']}" + (f" GN={names[0]}" if names else "")
                + f" PE=1 SV={e.get('entryAudit', {}).get('sequenceVersion', 1)}")
        seq = e["sequence"]["value"]
        return head + "\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n"

    @staticmethod
    def tsv_row(e):
        names = [g["geneName"]["value"] for g in e.get("genes", []) if g.get("geneName")]
        return "\t".join([e["primaryAccession"], e.get("uniProtkbId", ""), " ".join(names),
                          str(e["organism"]["taxonId"]), e["sequence"]["value"]])

    def search(self, params, base):
        query = params.get("query", "")
        tree = _parse_query(_tokens(query))
        self.check(tree)
        hits = [e for e in self.entries if self.match(tree, e)]
        size = min(int(params.get("size", 25)), 500)
        start = int(base64.urlsafe_b64decode(params["cursor"]).decode()) if params.get("cursor") else 0
        page = hits[start:start + size]
        headers = {"x-total-results": str(len(hits))}
        if start + size < len(hits):
            nxt = dict(params, cursor=base64.urlsafe_b64encode(str(start + size).encode()).decode())
            headers["Link"] = f'<{base}/uniprotkb/search?{urlencode(nxt)}>; rel="next"'
        fmt = params.get("format", "json")
        if fmt == "json":
            body = json.dumps({"results": [self.trim(e, params.get("fields")) for e in page]})
            return HttpAnswer(200, body, "application/json", headers)
        if fmt == "fasta":
            return HttpAnswer(200, "".join(self.fasta(e) for e in page), "text/plain;format=fasta", headers)
        if fmt == "tsv":
            head = "Entry\tEntry Name\tGene Names\tOrganism (ID)\tSequence\n" if start == 0 else ""
            return HttpAnswer(200, head + "".join(self.tsv_row(e) + "\n" for e in page), "text/plain;format=tsv",
                              headers)
        raise HttpAnswer(400, json.dumps({"url": "uniprotkb/search", "messages": [f"Invalid format {fmt}"]}))


# ------------------------------------------------------------------ Ensembl
class EnsemblData:
    def __init__(self, genes=(), sequences=None, xrefs=()):
        self.genes = {g["id"]: g for g in genes}
        self.sequences = dict(sequences or {})
        self.xrefs = list(xrefs)
        self.species = {g["species"] for g in genes} | {"homo_sapiens", "mus_musculus"}
        self.objects = {}  # transcript/translation id -> (kind, gene, transcript)
        for g in genes:
            for t in g.get("Transcript", []):
                self.objects[t["id"]] = ("Transcript", g, t)
                if t.get("Translation"):
                    self.objects[t["Translation"]["id"]] = ("Translation", g, t)

    @staticmethod
    def _view(gene, expand):
        if expand:
            return gene
        return {k: v for k, v in gene.items() if k != "Transcript"}

    def lookup_id(self, ident, expand):
        g = self.genes.get(ident.split(".")[0])
        return self._view(g, expand) if g else None

    def lookup_symbol(self, species, symbol, expand):
        self._check_species(species)
        for g in self.genes.values():
            if g["species"] == species and g["display_name"].upper() == symbol.upper():
                return self._view(g, expand)
        return None

    def _check_species(self, species):
        if species not in self.species:
            raise HttpAnswer(400, json.dumps({"error": f"Can not find internal name for species '{species}'"}))

    def xref_symbol(self, species, ident, external_db):
        self._check_species(species)
        out = []
        for x in self.xrefs:
            if x["species"] == species and x["id"].upper() == ident.upper() and \
                    (not external_db or x["external_db"] == external_db):
                out += x["objects"]
        return out

    def sequence(self, ident, kind):
        ident = ident.split(".")[0]
        if ident in self.genes:
            g = self.genes[ident]
            ts = g.get("Transcript", [])
            return [s for t in ts for s in self.sequence(t["id"], kind)]
        obj = self.objects.get(ident)
        if obj is None:
            return []
        what, g, t = obj
        if what == "Translation" or kind == "protein":
            tr = t.get("Translation")
            if not tr or tr["id"] not in self.sequences:
                return []
            return [{"id": tr["id"], "version": tr.get("version"), "seq": self.sequences[tr["id"]],
                     "molecule": "protein", "desc": None, "query": ident}]
        if kind == "cds":
            if t["id"] not in self.sequences:
                return []
            return [{"id": t["id"], "version": t.get("version"), "seq": self.sequences[t["id"]], "molecule": "dna",
                     "desc": None, "query": ident}]
        raise HttpAnswer(400, json.dumps({"error": f"The type {kind} is not understood"}))


# ------------------------------------------------------------------ NCBI
class NcbiData:
    def __init__(self, esummary_xml=None, genpept_text=None):
        self.docs = {}
        if esummary_xml:
            root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", esummary_xml))
            for d in root.iter("DocumentSummary"):
                self.docs[d.get("uid")] = d
        self.proteins = {}  # accession.version -> (record text, gene, geneid, taxid, keywords)
        for rec in (genpept_text or "").split("//\n"):
            if not rec.strip():
                continue
            text = rec.strip("\n") + "\n//\n"
            acc_v = re.search(r"^VERSION\s+(\S+)", text, re.M).group(1)
            kw = re.search(r"^KEYWORDS\s+(.*)$", text, re.M).group(1)
            self.proteins[acc_v] = (text, re.search(r'/gene="([^"]+)"', text).group(1),
                                    re.search(r'/db_xref="GeneID:(\d+)"', text).group(1),
                                    int(re.search(r'/db_xref="taxon:(\d+)"', text).group(1)), kw)

    @staticmethod
    def _esearch(ids, translation):
        items = "".join(f"\n\t\t<Id>{i}</Id>" for i in ids)
        return ('<?xml version="1.0" encoding="UTF-8" ?>\n' + ESEARCH_DOCTYPE + "\n<eSearchResult>"
                f"<Count>{len(ids)}</Count><RetMax>{len(ids)}</RetMax><RetStart>0</RetStart>"
                f"<IdList>{items}\n</IdList><TranslationSet/>"
                f"<QueryTranslation>{translation}</QueryTranslation></eSearchResult>\n")

    def esearch(self, p):
        db, term = p.get("db"), p.get("term", "")
        if db == "gene":
            syms = {s.upper() for s in re.findall(r'"([^"]+)"\[sym\]', term)}
            taxa = set(re.findall(r"(\d+)\[taxid\]", term))
            ids = []
            for uid, d in self.docs.items():
                names = {d.findtext("Name", "").upper()} | {
                    a.strip().upper() for a in d.findtext("OtherAliases", "").split(",") if a.strip()}
                if names & syms and (not taxa or d.findtext("Organism/TaxID") in taxa):
                    ids.append(uid)
            return self._esearch(ids, term.replace('"', "&quot;"))
        if db == "protein":
            genes = {s.upper() for s in re.findall(r'"([^"]+)"\[Gene Name\]', term)}
            taxa = {int(t) for t in re.findall(r"txid(\d+)\[Organism", term)}
            select = "refseq_select[filter]" in term
            ids = [acc for acc, (_, gene, _, taxid, kw) in self.proteins.items()
                   if gene.upper() in genes and (not taxa or taxid in taxa)
                   and (not select or "Select" in kw)]
            if p.get("idtype") != "acc":
                raise HttpAnswer(400, "<eSearchResult><ERROR>fake: only idtype=acc</ERROR></eSearchResult>", "text/xml")
            return self._esearch(ids, "refseq_select[filter]")
        raise HttpAnswer(400, f"<eSearchResult><ERROR>unsupported db {db}</ERROR></eSearchResult>", "text/xml")

    def esummary(self, p):
        ids = [i for i in p.get("id", "").split(",") if i]
        parts = ['<?xml version="1.0" encoding="UTF-8" ?>', ESUMMARY_DOCTYPE, "<eSummaryResult>",
                 '<DocumentSummarySet status="OK">', "<DbBuild>Build240610-0905m.1</DbBuild>"]
        for i in ids:
            d = self.docs.get(i)
            parts.append(ET.tostring(d, encoding="unicode") if d is not None else
                         f'<DocumentSummary uid="{i}"><error>Cannot get document summary</error></DocumentSummary>')
        parts += ["</DocumentSummarySet>", "</eSummaryResult>", ""]
        return "\n".join(parts)

    def efetch(self, p):
        if p.get("db") != "protein" or p.get("rettype") != "gp":
            raise HttpAnswer(400, "Error: fake efetch serves db=protein rettype=gp only", "text/plain")
        return "".join(self.proteins[i][0] for i in p.get("id", "").split(",") if i in self.proteins)


# ------------------------------------------------------------------ server
class FakeServices:
    """``with FakeServices(uniprot=[...], ensembl={...}, ncbi={...}) as fake: fake.url("uniprot")``."""

    def __init__(self, uniprot=(), ensembl=None, ncbi=None):
        self.uniprot = UniProtData(uniprot)
        self.ensembl = EnsemblData(**(ensembl or {}))
        self.ncbi = NcbiData(**(ncbi or {}))
        self.log = []  # one dict per request: service, method, path, params, body, headers
        self.faults = {"uniprot": deque(), "ensembl": deque(), "ncbi": deque()}
        self._lock = threading.Lock()
        self._server = None

    @classmethod
    def from_dir(cls, folder):
        """Data from a folder holding uniprot_entries.json, ensembl.json, ncbi_gene_esummary.xml and
        ncbi_proteins.gp (the layout of tests/fixtures/fetch)."""
        from pathlib import Path
        folder = Path(folder)
        return cls(uniprot=json.loads((folder / "uniprot_entries.json").read_text()),
                   ensembl=json.loads((folder / "ensembl.json").read_text()),
                   ncbi={"esummary_xml": (folder / "ncbi_gene_esummary.xml").read_text(),
                         "genpept_text": (folder / "ncbi_proteins.gp").read_text()})

    # -- control
    def fail_next(self, service, *faults):
        """Queue faults for the next requests to ``service``: ``("status", 429, {"Retry-After": "1"})``,
        ``("status", 500)``, ``("sleep", seconds)``, ``("malformed",)``, ``("truncate",)``,
        ``("headers", {...})`` (a normal answer with these headers overridden)."""
        self.faults[service].extend(faults)

    def count(self, service=None):
        return sum(1 for r in self.log if service is None or r["service"] == service)

    def url(self, service):
        return f"http://127.0.0.1:{self._server.server_port}/{service}"

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- dispatch
    def _handle(self, h, method):
        parts = urlsplit(h.path)
        service, _, rest = parts.path.lstrip("/").partition("/")
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        with self._lock:
            self.log.append({"service": service, "method": method, "path": rest, "params": params, "body": raw,
                             "headers": dict(h.headers)})
            fault = self.faults.get(service, deque()).popleft() if self.faults.get(service) else None
        try:
            if fault and fault[0] == "status":
                raise HttpAnswer(fault[1], json.dumps({"error": f"HTTP {fault[1]}"}), "application/json",
                                 fault[2] if len(fault) > 2 else {})
            if fault and fault[0] == "sleep":
                time.sleep(fault[1])
            answer = self._route(service, method, rest, params, raw)
        except HttpAnswer as a:
            answer = a
        except Exception as e:  # noqa: BLE001 - a bug in the fake shows as a 500 with its message
            answer = HttpAnswer(500, json.dumps({"error": f"fake server: {type(e).__name__}: {e}"}))
        body = answer.body.encode() if isinstance(answer.body, str) else answer.body
        if fault and fault[0] == "headers":
            answer.headers = {**answer.headers, **fault[1]}
        if fault and fault[0] == "malformed":
            body = body[: max(1, len(body) // 3)] + b"<html>proxy error"
        try:
            h.send_response(answer.status)
            h.send_header("Content-Type", answer.ctype)
            for k, v in answer.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if fault and fault[0] == "truncate":
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                h.close_connection = True
                return
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def _route(self, service, method, rest, params, raw):
        if service == "uniprot" and rest == "uniprotkb/search":
            base = f"http://127.0.0.1:{self._server.server_port}/uniprot"
            return self.uniprot.search(params, base)
        if service == "ensembl":
            return self._ensembl(method, rest, params, raw)
        if service == "ncbi":
            p = dict(params)
            if method == "POST":
                p.update({k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()})
            util = rest.replace(".fcgi", "")
            if util in ("esearch", "esummary", "efetch"):
                out = getattr(self.ncbi, util)(p)
                return HttpAnswer(200, out, "text/plain" if util == "efetch" else "text/xml")
        raise HttpAnswer(404, json.dumps({"error": f"page not found: {service}/{rest}"}))

    def _ensembl(self, method, rest, params, raw):
        e = self.ensembl
        expand = params.get("expand") in ("1", "true")
        body = json.loads(raw or b"{}") if method == "POST" else {}
        seg = rest.split("/")
        ok = lambda data: HttpAnswer(200, json.dumps(data))  # noqa: E731
        if seg[:2] == ["lookup", "id"]:
            if method == "POST":
                return ok({i: e.lookup_id(i, expand) for i in body.get("ids", [])})
            g = e.lookup_id(seg[2], expand)
            if not g:
                raise HttpAnswer(400, json.dumps({"error": f"ID '{seg[2]}' not found"}))
            return ok(g)
        if seg[:2] == ["lookup", "symbol"]:
            if method == "POST":
                if "symbols" not in body:
                    raise HttpAnswer(400, json.dumps(
                        {"error": "POST body must contain 'symbols' key with array of values"}))
                found = {s: e.lookup_symbol(seg[2], s, expand) for s in body["symbols"]}
                return ok({k: v for k, v in found.items() if v})
            g = e.lookup_symbol(seg[2], seg[3], expand)
            if not g:
                raise HttpAnswer(400, json.dumps({"error": f"No valid lookup found for symbol {seg[3]}"}))
            return ok(g)
        if seg[:2] == ["xrefs", "symbol"]:
            return ok(e.xref_symbol(seg[2], "/".join(seg[3:]), params.get("external_db")))
        if seg[:2] == ["sequence", "id"]:
            if method == "POST":
                kind = body.get("type") or params.get("type") or "genomic"
                out = [s for i in body.get("ids", []) for s in e.sequence(i, kind)]
                if not out:
                    raise HttpAnswer(404, json.dumps({"error": "No results found"}))
                return ok(out)
            out = e.sequence(seg[2], params.get("type", "genomic"))
            if not out:
                raise HttpAnswer(400, json.dumps({"error": f"No object found for ID {seg[2]}"}))
            return ok(out[0] if len(out) == 1 or not params.get("multiple_sequences") else out)
        raise HttpAnswer(404, json.dumps({"error": f"page not found: {rest}"}))
