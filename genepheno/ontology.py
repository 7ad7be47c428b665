"""Ontologies (HPO, MP, GO) from OBO files: names, alt_id/obsolete remapping, ancestors, depth,
subtrees and true-path propagation.

Parsing uses obonet (a maintained OBO parser; pronto's strict parser rejects real go-basic
releases). After parsing, everything is plain dicts and integer arrays, so lookups are O(1) and
the ancestor closure is computed once. ``load_ontology`` caches by file identity, so a large
ontology is parsed once per process.
"""

import functools
import logging
import os
from collections import deque

import numpy as np
import obonet
from scipy import sparse

from genepheno.errors import InputError
from genepheno.io import open_text, sha256_file
from genepheno.log import logger

GO_ROOTS = {"GO:0008150": "biological_process", "GO:0003674": "molecular_function",
            "GO:0005575": "cellular_component"}
# Default phenotype subtree per ontology prefix: HPO "Phenotypic abnormality", MP root.
SUBTREE_ROOTS = {"HP": "HP:0000118", "MP": "MP:0000001"}


class Ontology:
    """One parsed ontology. Term indices follow the file's order of non-obsolete terms."""

    def __init__(self, graph, relations=("is_a", "part_of"), path=None):
        self.path = path
        self.relations = tuple(relations)
        header = graph.graph
        self.version = header.get("data-version") or _property_version(header)
        default_ns = (header.get("default-namespace") or [None])[0]
        self.ids, self.name, self.namespace = [], {}, {}
        self.alt, self.replaced_by = {}, {}
        for term, data in graph.nodes(data=True):
            if "name" not in data and not data.get("is_obsolete"):
                continue  # a dangling reference to a term defined elsewhere
            if data.get("is_obsolete") == "true":
                repl = data.get("replaced_by") or []
                self.replaced_by[term] = repl[0] if len(repl) == 1 else None
                continue
            self.ids.append(term)
            self.name[term] = data.get("name", "")
            self.namespace[term] = data.get("namespace", default_ns)
            for alt in data.get("alt_id", []):
                self.alt[alt] = term
        if not self.ids:
            raise InputError(path or "ontology", "has no [Term] stanzas", "is this an OBO file?")
        self.index = {t: i for i, t in enumerate(self.ids)}
        self.parents = [[] for _ in self.ids]
        for child, parent, rel in graph.edges(keys=True):
            if rel in self.relations and child in self.index and parent in self.index:
                self.parents[self.index[child]].append(self.index[parent])
        self.children = [[] for _ in self.ids]
        for c, ps in enumerate(self.parents):
            for p in ps:
                self.children[p].append(c)
        self._order = self._topological_order()
        self._ancestors = None

    def __len__(self):
        return len(self.ids)

    def __contains__(self, term):
        return term in self.index

    # ------------------------------------------------------------------ identifiers
    def resolve(self, term):
        """Primary ID for a term, alt_id or obsolete term (via a single replaced_by); else None."""
        for _ in range(10):  # replaced_by chains are short; the bound guards against cycles
            if term in self.index:
                return term
            if term in self.alt:
                return self.alt[term]
            term = self.replaced_by.get(term)
            if term is None:
                return None
        return None

    # ------------------------------------------------------------------ structure
    def _topological_order(self):
        """Parents before children (Kahn's algorithm); a cycle is an input error."""
        indeg = [len(p) for p in self.parents]
        queue = deque(i for i, d in enumerate(indeg) if d == 0)
        order = []
        while queue:
            i = queue.popleft()
            order.append(i)
            for c in self.children[i]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    queue.append(c)
        if len(order) != len(self.ids):
            raise InputError(self.path or "ontology", f"has a cycle over {'/'.join(self.relations)}")
        return order

    @property
    def ancestor_index(self):
        """For each term index, a sorted int array of its ancestors' indices including itself."""
        if self._ancestors is None:
            anc = [None] * len(self.ids)
            for i in self._order:
                s = {i}
                for p in self.parents[i]:
                    s.update(anc[p])
                anc[i] = s
            self._ancestors = [np.fromiter(sorted(s), dtype=np.int64, count=len(s)) for s in anc]
        return self._ancestors

    def ancestors(self, term, include_self=True):
        """Set of ancestor IDs over the loaded relations (is_a, and part_of where present)."""
        i = self.index[term]
        out = {self.ids[j] for j in self.ancestor_index[i]}
        if not include_self:
            out.discard(term)
        return out

    def descendants(self, term, include_self=True):
        start = self.index[term]
        seen, stack = {start}, [start]
        while stack:
            for c in self.children[stack.pop()]:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        if not include_self:
            seen.discard(start)
        return {self.ids[i] for i in seen}

    def roots(self):
        return [self.ids[i] for i, p in enumerate(self.parents) if not p]

    def depths(self, roots=None):
        """Shortest-path depth of every term below the given roots (default: the parentless terms),
        the roots at 0; terms not below any root are absent."""
        roots = self.roots() if roots is None else [r for r in roots if r in self.index]
        depth = {self.index[r]: 0 for r in roots}
        queue = deque(depth)
        while queue:
            i = queue.popleft()
            for c in self.children[i]:
                if c not in depth:
                    depth[c] = depth[i] + 1
                    queue.append(c)
        return {self.ids[i]: d for i, d in depth.items()}

    def ancestor_matrix(self, terms=None):
        """Sparse 0/1 matrix A (n x n) over ``terms`` (default all) with A[i, j] = 1 when terms[j]
        is an ancestor of, or equal to, terms[i]; ancestors outside ``terms`` are dropped."""
        terms = self.ids if terms is None else list(terms)
        col = {t: k for k, t in enumerate(terms)}
        rows, cols = [], []
        for k, t in enumerate(terms):
            for j in self.ancestor_index[self.index[t]]:
                c = col.get(self.ids[j])
                if c is not None:
                    rows.append(k)
                    cols.append(c)
        data = np.ones(len(rows), dtype=np.int8)
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(terms), len(terms)))

    def propagate(self, annotations):
        """True-path rule: {gene: iterable of term IDs} -> {gene: set with every ancestor added}.
        Terms must be primary IDs of this ontology (see ``resolve``)."""
        anc, idx, ids = self.ancestor_index, self.index, self.ids
        out = {}
        for gene, terms in annotations.items():
            s = set()
            for t in terms:
                s.update(anc[idx[t]].tolist())
            out[gene] = {ids[j] for j in s}
        return out


def _property_version(header):
    for pv in header.get("property_value", []):
        if pv.startswith("owl:versionInfo"):
            return pv.split('"')[1] if '"' in pv else pv.split()[1]
    return header.get("date")  # older releases (e.g. MP 2014) carry only a date


@functools.lru_cache(maxsize=8)
def _load_cached(path, mtime_ns, size, relations):
    root = logging.getLogger()
    quiet = logging.NullHandler()  # obonet warns on the root logger, which would configure it
    root.addHandler(quiet)
    try:
        with open_text(path) as fh:
            graph = obonet.read_obo(fh, ignore_obsolete=False)
    except InputError:
        raise
    except Exception as e:  # obonet/networkx raise assorted errors on malformed text
        raise InputError(_where(path, str(e)), f"malformed OBO ({type(e).__name__}: {' '.join(str(e).split())})",
                         "check the file is a complete .obo") from None
    finally:
        root.removeHandler(quiet)
    onto = Ontology(graph, relations=relations, path=path)
    onto.sha256 = sha256_file(path)
    logger.debug("loaded %s: %d terms, version %s", path, len(onto), onto.version)
    return onto


def _where(path, message):
    """'path:line' when the parser quoted the offending line (obonet does), else the path."""
    quoted = message.rsplit(":\n", 1)[-1].strip() if ":\n" in message else None
    if quoted:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip() == quoted:
                    return f"{path}:{lineno}"
    return path


def load_ontology(path, relations=("is_a", "part_of")):
    """Parse an OBO file (plain or gzip) once per process; later calls return the same object."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    st = os.stat(path)
    return _load_cached(path, st.st_mtime_ns, st.st_size, tuple(relations))


def subtree_root_for(onto):
    """The default phenotype subtree root for an HPO or MP ontology (None for others)."""
    prefix = onto.ids[0].split(":")[0]
    root = SUBTREE_ROOTS.get(prefix)
    if root and root not in onto:
        return None
    return root
