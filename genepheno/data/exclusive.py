"""Mutually exclusive phenotype pairs for the exclusivity regulariser, mined reproducibly.

Candidates are direct siblings (two kept terms with a common direct parent, neither an ancestor
of the other). Two rules:

1. ``antonym``: the names differ only by an antonym substitution at a word start
   (``Increased``/``Decreased`` muscle tone, ``Hyper``/``Hypo``tonia, ``Macro``/``Micro``cephaly,
   ``Tall``/``Short`` stature, ...).
2. ``never-co-occur``: both terms annotate training genes, no training gene carries both, and
   that is unlikely by chance: under independence the number of training genes with both terms
   is hypergeometric (N genes, n_a and n_b positives); the pair is kept when P(X = 0) is below
   alpha / m (Bonferroni over the m sibling pairs tested, alpha = 0.05 by default).

The TSV (``term_a term_b reason name_a name_b n_a n_b n_both``, counts over training genes) is
meant to be read and edited by a person; only the first two columns are required when a user
supplies their own file.
"""

import itertools
import re

import numpy as np
from scipy.stats import hypergeom

from genepheno.errors import InputError
from genepheno.io import read_tsv, write_tsv

# Ordered so that longer phrases are tried before their parts.
ANTONYMS = (
    ("increased", "decreased"), ("increased", "reduced"), ("elevated", "reduced"),
    ("elevated", "decreased"), ("excessive", "reduced"), ("high", "low"), ("higher", "lower"),
    ("hyper", "hypo"), ("macro", "micro"), ("tall", "short"), ("long", "short"),
    ("large", "small"), ("wide", "narrow"), ("broad", "narrow"), ("thick", "thin"),
    ("upslanted", "downslanted"), ("prolonged", "shortened"), ("tachy", "brady"),
    ("brachy", "dolicho"), ("gain", "loss"), ("advanced", "delayed"), ("overgrowth", "undergrowth"),
)
_PATTERNS = [(x, y, re.compile(rf"\b{x}"), re.compile(rf"\b{y}")) for x, y in ANTONYMS]
HEADER = ("term_a", "term_b", "reason", "name_a", "name_b", "n_a", "n_b", "n_both")


def antonym_rule(name_a, name_b):
    """'x/y' when replacing word-initial x by y (either way) turns one name into the other."""
    a, b = name_a.lower().strip(), name_b.lower().strip()
    for x, y, rx, _ in _PATTERNS:
        for p, q in ((a, b), (b, a)):
            if rx.search(p) and rx.sub(y, p) == q:
                return f"{x}/{y}"
    return None


def sibling_pairs(terms, parents, is_ancestor):
    """Unordered pairs of kept terms sharing a direct parent, neither an ancestor of the other."""
    by_parent = {}
    for t in terms:
        for p in parents.get(t, ()):
            by_parent.setdefault(p, []).append(t)
    pairs = set()
    for kids in by_parent.values():
        for a, b in itertools.combinations(sorted(kids), 2):
            if not is_ancestor(a, b) and not is_ancestor(b, a):
                pairs.add((a, b))
    return sorted(pairs)


def mine_exclusive_pairs(terms, names, parents, is_ancestor, Y_train, alpha=0.05):
    """Return (rows, counts). ``terms`` index the columns of the training label matrix ``Y_train``
    (genes x terms, 0/1); ``parents`` maps a term to its direct parents (any term IDs)."""
    col = {t: i for i, t in enumerate(terms)}
    Y = np.asarray(Y_train, dtype=np.float32)
    n_genes = Y.shape[0]
    n_pos = Y.sum(0).astype(int)
    cands = sibling_pairs(terms, parents, is_ancestor)
    idx_a = np.array([col[a] for a, _ in cands], dtype=int)
    idx_b = np.array([col[b] for _, b in cands], dtype=int)
    both = (Y[:, idx_a] * Y[:, idx_b]).sum(0).astype(int) if cands else np.array([], dtype=int)
    m = len(cands)
    rows, counts = [], {"sibling_pairs": m, "antonym": 0, "never-co-occur": 0}
    for k, (a, b) in enumerate(cands):
        na, nb, nab = int(n_pos[idx_a[k]]), int(n_pos[idx_b[k]]), int(both[k])
        reason = None
        rule = antonym_rule(names[a], names[b])
        if rule:
            reason = f"antonym:{rule}"
            counts["antonym"] += 1
        elif nab == 0 and na > 0 and nb > 0:
            p0 = float(hypergeom(n_genes, na, nb).pmf(0))
            if p0 < alpha / m:
                reason = f"never-co-occur:p={p0:.2e}"
                counts["never-co-occur"] += 1
        if reason:
            rows.append((a, b, reason, names[a], names[b], na, nb, nab))
    return rows, counts


def write_pairs(path, rows):
    write_tsv(path, HEADER, rows)


def read_pairs(path, known_terms=None):
    """Pairs from a TSV with at least ``term_a term_b`` columns; other columns are kept if present.
    Terms outside ``known_terms`` are an error naming the line."""
    rows = read_tsv(path, required=("term_a", "term_b"))
    out, seen = [], set()
    for lineno, r in enumerate(rows, 2):
        a, b = r["term_a"].strip(), r["term_b"].strip()
        for t in (a, b):
            if known_terms is not None and t not in known_terms:
                raise InputError(f"{path}:{lineno}", f"term {t!r} is not a kept term of this dataset",
                                 "use term IDs from terms.tsv")
        if a == b:
            raise InputError(f"{path}:{lineno}", f"pairs a term with itself ({a})")
        key = tuple(sorted((a, b)))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out
