"""A built dataset folder, its loader, and the registry of bundled datasets.

Folder layout (all TSVs are tab-separated with a header line; ``.gz`` files are gzip):

- ``genes.tsv``: gene_id, symbol, sequence_id (source accession), split (train/val/test)
- ``sequences.fasta.gz``: one record per gene, ID = gene_id, description = sequence_id symbol
- ``labels.tsv.gz``: gene_id, term_id — true-path propagated, inside the phenotype subtree
  (its root excluded), kept terms only
- ``terms.tsv``: term_id, name, n_genes (all splits), n_train, bin, depth (below the subtree
  root), parents (comma-separated direct parents among kept terms; empty under the root)
- ``go_annotations.tsv.gz``: gene_id, go_id — the gene's direct fine GO terms (depth > 2)
- ``concepts.tsv``: concept_id, name, namespace, n_genes — the bottleneck concepts
- ``concept_labels.tsv.gz``: gene_id, concept_id — concepts reached by propagating the gene's GO
  annotations; a gene without GO annotations has no rows and its concepts count as unknown
- ``go_concepts.tsv.gz``: go_id, concept_id — for every term of the GO release, the concepts it
  reaches over is_a/part_of (maps GO annotations of genes outside the dataset to concepts)
- ``exclusive_pairs.tsv``: term_a, term_b, reason, name_a, name_b, n_a, n_b, n_both
- ``manifest.yaml``: inputs (file, sha256, version), options, counts, package version
"""

import os
import sys
from pathlib import Path

import numpy as np
import yaml

from genepheno.errors import GenephenoError, InputError
from genepheno.io import read_tsv
from genepheno.metrics import BINS
from genepheno.sequences.fasta import read_fasta

REQUIRED_FILES = ("genes.tsv", "labels.tsv.gz", "terms.tsv", "concepts.tsv", "manifest.yaml")
SPLITS = ("train", "val", "test")


def _bundled_roots():
    here = Path(__file__).resolve().parents[2] / "datasets"  # a checkout or an editable install
    roots = [Path(p) for p in os.environ.get("GENEPHENO_DATASETS", "").split(os.pathsep) if p]
    roots += [here, Path(sys.prefix) / "share" / "genepheno" / "datasets"]
    return [r for r in roots if r.is_dir()]


def list_datasets():
    """{name: path} of the datasets found in the registry folders (first wins)."""
    out = {}
    for root in _bundled_roots():
        for d in sorted(root.iterdir()):
            if (d / "manifest.yaml").exists() and d.name not in out:
                out[d.name] = d
    return out


def resolve_dataset(name_or_path):
    p = Path(name_or_path)
    if p.is_dir():
        missing = [f for f in REQUIRED_FILES if not (p / f).exists()]
        if missing:
            raise InputError(p, f"is not a genepheno dataset (missing {', '.join(missing)})",
                             "build one with `genepheno datasets build`")
        return p
    known = list_datasets()
    if str(name_or_path) in known:
        return known[str(name_or_path)]
    raise GenephenoError(f"no dataset named or at {name_or_path!r}; known: {', '.join(known) or 'none'}")


def _pairs(path, a="gene_id", b="term_id"):
    rows = read_tsv(path, required=(a, b))
    return [(r[a], r[b]) for r in rows]


class Dataset:
    """A dataset folder loaded into arrays. Gene and term order follow genes.tsv and terms.tsv."""

    def __init__(self, path):
        self.path = Path(resolve_dataset(path))
        self.name = self.path.name
        with open(self.path / "manifest.yaml", encoding="utf-8") as fh:
            self.manifest = yaml.safe_load(fh) or {}
        genes = read_tsv(self.path / "genes.tsv", required=("gene_id", "symbol", "sequence_id", "split"))
        self.gene_ids = [g["gene_id"] for g in genes]
        self.symbols = [g["symbol"] for g in genes]
        self.sequence_ids = [g["sequence_id"] for g in genes]
        self.splits = np.array([g["split"] for g in genes])
        self.gene_index = {g: i for i, g in enumerate(self.gene_ids)}

        terms = read_tsv(self.path / "terms.tsv", required=("term_id", "name", "n_genes", "bin", "parents"))
        self.term_ids = [t["term_id"] for t in terms]
        self.term_names = [t["name"] for t in terms]
        self.term_n_genes = np.array([int(t["n_genes"]) for t in terms])
        self.term_bins = [t["bin"] or None for t in terms]  # empty below the lowest bin
        self.term_index = {t: i for i, t in enumerate(self.term_ids)}
        self.term_parents = [[self.term_index[p] for p in t["parents"].split(",") if p] for t in terms]
        self.labels = self._matrix(self.path / "labels.tsv.gz", self.term_index, "term_id")

        concepts = read_tsv(self.path / "concepts.tsv", required=("concept_id", "name", "namespace"))
        self.concept_ids = [c["concept_id"] for c in concepts]
        self.concept_names = [c["name"] for c in concepts]
        self.concept_namespaces = [c["namespace"] for c in concepts]
        self.concept_index = {c: i for i, c in enumerate(self.concept_ids)}
        cl = self.path / "concept_labels.tsv.gz"
        self.concept_labels = (self._matrix(cl, self.concept_index, "concept_id") if cl.exists()
                               else np.zeros((len(self.gene_ids), len(self.concept_ids)), dtype=bool))

        self.go_annotations = [[] for _ in self.gene_ids]
        ga = self.path / "go_annotations.tsv.gz"
        if ga.exists():
            for g, t in _pairs(ga, "gene_id", "go_id"):
                if g in self.gene_index:
                    self.go_annotations[self.gene_index[g]].append(t)
        self.has_go = np.array([bool(a) for a in self.go_annotations])

        self.exclusive_pairs = []
        ep = self.path / "exclusive_pairs.tsv"
        if ep.exists():
            for r in read_tsv(ep, required=("term_a", "term_b")):
                a, b = self.term_index.get(r["term_a"]), self.term_index.get(r["term_b"])
                if a is not None and b is not None:
                    self.exclusive_pairs.append((a, b))
        self._sequences = None

    def _matrix(self, path, col_index, col):
        Y = np.zeros((len(self.gene_ids), len(col_index)), dtype=bool)
        for lineno, (g, t) in enumerate(_pairs(path, "gene_id", col), 2):
            i, j = self.gene_index.get(g), col_index.get(t)
            if i is None or j is None:
                raise InputError(f"{path}:{lineno}", f"unknown gene or term ({g}, {t})", "the dataset folder is inconsistent; rebuild it")
            Y[i, j] = True
        return Y

    def split_indices(self, split):
        if split not in SPLITS and split != "all":
            raise GenephenoError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or all")
        return np.arange(len(self.gene_ids)) if split == "all" else np.flatnonzero(self.splits == split)

    def sequences(self):
        """{gene_id: sequence} from sequences.fasta.gz (read once)."""
        if self._sequences is None:
            self._sequences = {r.id: r.sequence for r in read_fasta(self.path / "sequences.fasta.gz")}
        return self._sequences

    def go_concept_map(self):
        """{GO ID: [concept IDs]} from go_concepts.tsv.gz (empty when the file is absent)."""
        out = {}
        path = self.path / "go_concepts.tsv.gz"
        if path.exists():
            for go_id, concept in _pairs(path, "go_id", "concept_id"):
                out.setdefault(go_id, []).append(concept)
        return out

    def go_tokens(self, i):
        """GO input of gene row i: its direct fine GO terms plus the concepts they propagate to."""
        return self.go_annotations[i] + [self.concept_ids[k] for k in np.flatnonzero(self.concept_labels[i])]

    def ancestor_pairs(self):
        """(descendant index, ancestor index) for every proper ancestor among kept terms."""
        anc = [None] * len(self.term_ids)

        def visit(i):
            if anc[i] is None:
                s = set()
                for p in self.term_parents[i]:
                    s.add(p)
                    s |= visit(p)
                anc[i] = s
            return anc[i]

        return [(i, a) for i in range(len(self.term_ids)) for a in sorted(visit(i))]

    def info(self):
        """Counts for `genepheno datasets info`."""
        bins = {b: self.term_bins.count(b) for b in BINS}
        return {
            "name": self.name,
            "path": str(self.path),
            "ontology": self.manifest.get("ontology", {}).get("version"),
            "genes": len(self.gene_ids),
            "genes_with_fine_go": int(self.has_go.sum()),
            "splits": {s: int((self.splits == s).sum()) for s in SPLITS},
            "terms": len(self.term_ids),
            "terms_per_bin": bins,
            "label_pairs": int(self.labels.sum()),
            "concepts": len(self.concept_ids),
            "exclusive_pairs": len(self.exclusive_pairs),
        }


def load_dataset(name_or_path):
    return Dataset(name_or_path)
