"""`genepheno datasets build`: ontology + gene->phenotype file + GO files + sequences -> dataset.

Steps: resolve phenotype terms (alt_id / obsolete replaced_by; unknown IDs counted, fatal above a
threshold) -> choose one sequence per gene -> propagate labels up the ontology, restrict them to
the phenotype subtree (root excluded), keep terms annotating at least ``min_genes`` genes, drop
genes left without labels -> GO: direct fine terms and depth-2 concepts -> stratified split ->
exclusive pairs -> write everything into a temporary folder and rename it at the end.
"""

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from genepheno import __version__
from genepheno.annotations import (
    EVIDENCE_FILTERS,
    normalize_gene_id,
    read_gene_symbols,
    read_go_annotations,
    read_id_map,
    read_phenotype_annotations,
)
from genepheno.data import exclusive
from genepheno.data.split import stratified_split
from genepheno.errors import GenephenoError, InputError
from genepheno.io import atomic_dir, open_text, sha256_file, write_tsv
from genepheno.log import logger
from genepheno.metrics import frequency_bin
from genepheno.ontology import GO_ROOTS, load_ontology, subtree_root_for
from genepheno.sequences.fasta import read_fasta, write_fasta

UNIPROT_HEADER = re.compile(r"^(?:sp|tr)\|([^|]+)\|")


@dataclass
class BuildOptions:
    ontology: str
    annotations: str
    sequences: str
    output: str
    annotation_format: str = None
    id_map: str = None
    gene_symbols: str = None
    go_ontology: str = None
    go_annotations: str = None
    go_evidence: str = "all"
    subtree_root: str = None
    min_genes: int = 11
    min_concept_genes: int = 10
    fractions: tuple = (0.8, 0.1, 0.1)
    seed: int = 0
    test_genes: str = None
    exclusive_pairs: str = None
    pair_alpha: float = 0.05
    max_unknown_fraction: float = 0.05
    description: str = ""
    force: bool = False
    extra: dict = field(default_factory=dict)

    def check(self):
        if len(self.fractions) != 3 or any(f < 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise GenephenoError(f"split fractions {self.fractions} must be three non-negative numbers summing to 1")
        if self.min_genes < 1:
            raise GenephenoError("--min-genes must be at least 1")
        if self.go_evidence not in EVIDENCE_FILTERS:
            raise GenephenoError(f"--go-evidence {self.go_evidence!r}: use one of {', '.join(EVIDENCE_FILTERS)}")
        if bool(self.go_ontology) != bool(self.go_annotations):
            raise GenephenoError("--go-ontology and --go-annotations go together")


def _natural_key(gene_id):
    prefix, _, num = gene_id.rpartition(":")
    return (prefix, int(num)) if num.isdigit() else (gene_id, 0)


def _resolve_terms(onto, ann, max_unknown_fraction):
    """(gene -> set of primary term IDs, stats). Fatal when too many IDs are unknown."""
    out, unknown, remapped = {}, Counter(), 0
    for gene, term in ann.pairs:
        primary = onto.resolve(term)
        if primary is None:
            unknown[term] += 1
            continue
        remapped += primary != term
        out.setdefault(gene, set()).add(primary)
    n_unknown = sum(unknown.values())
    frac = n_unknown / max(len(ann.pairs), 1)
    if unknown:
        examples = ", ".join(t for t, _ in unknown.most_common(5))
        msg = (f"{n_unknown} of {len(ann.pairs)} annotation rows ({frac:.1%}) use {len(unknown)} term IDs "
               f"unknown to {Path(onto.path).name} (e.g. {examples})")
        if frac > max_unknown_fraction:
            raise InputError(ann.path, msg, f"use an ontology release matching the annotations, or raise "
                             f"--max-unknown-fraction above {max_unknown_fraction}")
        logger.warning("%s; those rows are skipped", msg)
    return out, {"annotation_rows": len(ann.pairs), "unknown_term_rows": n_unknown,
                 "unknown_term_ids": len(unknown), "remapped_rows": remapped}


def _fasta_index(path):
    """{accession: sequence}; UniProt headers ``sp|ACC|NAME`` are keyed by ACC, plus GN= symbols."""
    seqs, gene_names = {}, {}
    for r in read_fasta(path):
        m = UNIPROT_HEADER.match(r.id)
        acc = m.group(1) if m else r.id
        seqs.setdefault(acc, r.sequence)
        gn = re.search(r"\bGN=(\S+)", r.description)
        if gn and gn.group(1) != "-":
            gene_names.setdefault(gn.group(1).upper(), []).append(acc)
    return seqs, gene_names


def _choose_sequences(genes, symbols, seqs, id_map, fasta_symbols, go_symbols, go_counts):
    """gene -> accession. Candidates: the gene ID itself, the ID map, or symbol matches (FASTA GN=,
    then GAF symbols/synonyms). Ties: the accession whose GO symbol is the gene's symbol, then
    the most GO annotations, the longest sequence, the accession order. An accession already taken
    by another gene is not reused (e.g. C4A/C4B sharing entries)."""
    sym_to_acc = {}
    for acc, names in go_symbols.items():
        for s in names:
            sym_to_acc.setdefault(s.upper(), []).append(acc)
    chosen, taken = {}, set()
    stats = Counter()
    for gene in genes:
        sym = symbols.get(gene, "")
        if gene in seqs:
            cands, how = [gene], "id"
        elif id_map is not None:
            cands, how = [a for a in id_map.get(gene, []) if a in seqs], "id_map"
        else:
            cands = [a for a in fasta_symbols.get(sym.upper(), []) if a in seqs]
            how = "fasta_symbol"
            if not cands:
                cands, how = [a for a in sym_to_acc.get(sym.upper(), []) if a in seqs], "go_symbol"
        cands = [a for a in dict.fromkeys(cands) if a not in taken]
        if not cands:
            stats["no_sequence"] += 1
            continue
        # prefer the accession whose GOA symbol (first entry) is the gene's own symbol
        own = {a for a in cands if sym and go_symbols.get(a, [""])[0].upper() == sym.upper()}
        best = min(cands, key=lambda a: (a not in own, -go_counts.get(a, 0), -len(seqs[a]), a))
        chosen[gene] = best
        taken.add(best)
        stats[f"by_{how}"] += 1
        stats["ambiguous"] += len(cands) > 1
    return chosen, dict(stats)


def _load_go(opts):
    """Load GO and its annotations. Returns (ontology, annotations, key -> [symbol, synonyms...],
    key -> number of annotation rows); keys are accessions (GAF) or gene IDs (gene2go)."""
    go = load_ontology(opts.go_ontology, relations=("is_a", "part_of"))
    ann = read_go_annotations(opts.go_annotations, evidence=opts.go_evidence)
    go_symbols = {}
    for acc, sym in ann.symbols.items():
        go_symbols[acc] = [sym] + sorted(getattr(ann, "synonyms", {}).get(acc, ()))
    counts = Counter(g for g, _ in ann.pairs)
    return go, ann, go_symbols, counts


def _map_go(go, ann, chosen, id_map, max_unknown_fraction):
    # GAF rows are keyed by accessions; gene2go rows by gene IDs.
    acc_to_gene = {}
    if ann.format == "gaf":
        for gene, acc in chosen.items():
            acc_to_gene.setdefault(acc, gene)
        for gene in chosen:
            for acc in (id_map or {}).get(gene, []):
                acc_to_gene.setdefault(acc, gene)
    else:
        acc_to_gene = {g: g for g in chosen}
    per_gene, unknown, rows = {}, Counter(), 0
    for key, term in ann.pairs:
        gene = acc_to_gene.get(key)
        if gene is None:
            continue
        rows += 1
        primary = go.resolve(term)
        if primary is None:
            unknown[term] += 1
            continue
        per_gene.setdefault(gene, set()).add(primary)
    if unknown and sum(unknown.values()) / max(rows, 1) > max_unknown_fraction:
        raise InputError(ann.path, f"{sum(unknown.values())} of {rows} GO annotation rows use IDs unknown to "
                         f"{Path(go.path).name}", "pair the annotations with the GO release they were made with")
    if unknown:
        logger.warning("%d GO annotation rows use %d IDs unknown to %s; skipped",
                       sum(unknown.values()), len(unknown), Path(go.path).name)
    return per_gene, {"go_rows_matched": rows, "go_unknown_rows": sum(unknown.values())}


def _input_record(path, version=None):
    rec = {"file": Path(path).name, "sha256": sha256_file(path), "bytes": Path(path).stat().st_size}
    if version:
        rec["version"] = version
    return rec


def build_dataset(opts):
    """Build the dataset folder ``opts.output``; returns the manifest's counts."""
    opts.check()
    onto = load_ontology(opts.ontology, relations=("is_a", "part_of"))
    root = opts.subtree_root or subtree_root_for(onto)
    if root is None or root not in onto:
        raise GenephenoError(f"subtree root {root!r} is not a term of {opts.ontology}; pass --subtree-root")
    logger.info("ontology %s: %d terms (version %s), subtree %s %s", Path(opts.ontology).name, len(onto),
                onto.version, root, onto.name[root])

    ann = read_phenotype_annotations(opts.annotations, opts.annotation_format)
    logger.info("annotations %s (%s): %d gene-term rows, %d genes", Path(opts.annotations).name, ann.format,
                len(ann.pairs), len({g for g, _ in ann.pairs}))
    direct, ann_stats = _resolve_terms(onto, ann, opts.max_unknown_fraction)

    symbols = dict(ann.symbols)
    if opts.gene_symbols:
        for g, s in read_gene_symbols(opts.gene_symbols).items():
            symbols.setdefault(g, s)
    id_map = read_id_map(opts.id_map) if opts.id_map else None
    seqs, fasta_symbols = _fasta_index(opts.sequences)

    go = go_ann = None
    go_symbols, go_counts = {}, {}
    if opts.go_annotations:
        go, go_ann, go_symbols, go_counts = _load_go(opts)

    genes = sorted(direct, key=_natural_key)
    chosen, seq_stats = _choose_sequences(genes, symbols, seqs, id_map, fasta_symbols, go_symbols, go_counts)
    logger.info("sequences: %d of %d annotated genes have one (%s)", len(chosen), len(genes),
                ", ".join(f"{k} {v}" for k, v in sorted(seq_stats.items())))
    if not chosen:
        raise InputError(opts.sequences, "no annotated gene could be matched to a sequence",
                         "pass --id-map (gene ID -> accession) or a FASTA whose IDs or GN= fields match")

    # Labels: propagate, restrict to the subtree (root excluded), keep frequent terms.
    subtree = onto.descendants(root, include_self=False)
    propagated = onto.propagate({g: direct[g] for g in chosen})
    labels = {g: propagated[g] & subtree for g in chosen}
    n_genes = Counter(t for ts in labels.values() for t in ts)
    kept = sorted((t for t, n in n_genes.items() if n >= opts.min_genes), key=lambda t: onto.index[t])
    kept_set = set(kept)
    labels = {g: ts & kept_set for g, ts in labels.items()}
    genes = [g for g in genes if g in chosen and labels[g]]
    if not genes or not kept:
        raise GenephenoError(f"no term annotates at least {opts.min_genes} genes with sequences; lower --min-genes")
    logger.info("labels: %d genes, %d terms with >= %d genes, %d gene-term pairs", len(genes), len(kept),
                opts.min_genes, sum(len(labels[g]) for g in genes))

    # GO: fine direct terms (depth > 2) as input, depth-2 terms as concepts.
    fine, concept_rows, concept_labels, go_concepts, go_stats = {}, [], {}, [], {}
    if go is not None:
        per_gene, go_stats = _map_go(go, go_ann, {g: chosen[g] for g in genes}, id_map, opts.max_unknown_fraction)
        depth = go.depths(list(GO_ROOTS))
        fine = {g: sorted(t for t in ts if depth.get(t, 0) > 2) for g, ts in per_gene.items()}
        prop = go.propagate(per_gene)
        level2 = {t for t, d in depth.items() if d == 2}
        concept_labels = {g: ts & level2 for g, ts in prop.items()}
        counts = Counter(t for ts in concept_labels.values() for t in ts)
        concepts = sorted((t for t, n in counts.items() if n >= opts.min_concept_genes), key=lambda t: go.index[t])
        cset = set(concepts)
        concept_labels = {g: ts & cset for g, ts in concept_labels.items()}
        concept_rows = [(t, go.name[t], go.namespace[t], counts[t]) for t in concepts]
        # every GO term -> the concepts it reaches, so GO annotations of new genes map to concepts
        corder = {t: i for i, t in enumerate(concepts)}
        go_concepts = [(t, c) for t in go.ids for c in sorted(go.ancestors(t) & cset, key=corder.get)]
        go_stats.update(genes_with_go=sum(1 for g in genes if per_gene.get(g)),
                        genes_with_fine_go=sum(1 for g in genes if fine.get(g)),
                        fine_go_terms=len({t for ts in fine.values() for t in ts}), concepts=len(concepts))
        logger.info("GO: %d genes annotated, %d concepts (depth-2 terms with >= %d genes)",
                    go_stats["genes_with_go"], len(concepts), opts.min_concept_genes)

    # Split.
    col = {t: i for i, t in enumerate(kept)}
    Y = np.zeros((len(genes), len(kept)), dtype=np.int8)
    for i, g in enumerate(genes):
        Y[i, [col[t] for t in labels[g]]] = 1
    fixed = None
    if opts.test_genes:
        wanted = _read_gene_list(opts.test_genes)
        absent = [g for g in wanted if g not in set(genes)]
        if absent:
            raise InputError(opts.test_genes, f"{len(absent)} gene(s) are not in the dataset (e.g. {', '.join(absent[:5])})",
                             "list gene IDs as in genes.tsv, e.g. NCBIGene:7157")
        fixed = np.array([g in wanted for g in genes])
    splits = stratified_split(Y, opts.fractions, opts.seed, fixed)
    train = splits == "train"

    # Exclusive pairs.
    parents = {t: [onto.ids[p] for p in onto.parents[onto.index[t]]] for t in kept}
    if opts.exclusive_pairs:
        user = exclusive.read_pairs(opts.exclusive_pairs, known_terms=kept_set)
        n_pos = Y[train].sum(0)
        pair_rows = []
        for r in user:
            a, b = r["term_a"], r["term_b"]
            both = int((Y[train, col[a]] & Y[train, col[b]]).sum())
            pair_rows.append((a, b, r.get("reason") or "user", onto.name[a], onto.name[b],
                              int(n_pos[col[a]]), int(n_pos[col[b]]), both))
        pair_counts = {"user": len(pair_rows)}
    else:
        anc_sets = {}

        def is_ancestor(a, b):
            if b not in anc_sets:
                anc_sets[b] = onto.ancestors(b, include_self=False)
            return a in anc_sets[b]

        pair_rows, pair_counts = exclusive.mine_exclusive_pairs(kept, onto.name, parents, is_ancestor,
                                                                Y[train], alpha=opts.pair_alpha)
    logger.info("exclusive pairs: %s", ", ".join(f"{k} {v}" for k, v in pair_counts.items()))

    # Write.
    sub_depth = onto.depths([root])
    n_train = Y[train].sum(0)
    counts = {
        "genes": len(genes), "terms": len(kept), "label_pairs": int(Y.sum()),
        "splits": {s: int((splits == s).sum()) for s in ("train", "val", "test")},
        "terms_per_bin": dict(Counter(frequency_bin(n_genes[t]) or "<11" for t in kept)),
        "exclusive_pairs": len(pair_rows), "exclusive_pair_rules": pair_counts,
        "annotated_genes": len(direct), "sequences": seq_stats, "annotations": ann_stats, "go": go_stats,
    }
    manifest = {
        "name": Path(opts.output).name, "description": opts.description, "genepheno_version": __version__,
        "ontology": {**_input_record(opts.ontology, onto.version), "subtree_root": root,
                     "subtree_root_name": onto.name[root]},
        "inputs": {k: _input_record(v, go.version if k == "go_ontology" else None)
                   for k, v in (("annotations", opts.annotations), ("sequences", opts.sequences),
                                ("id_map", opts.id_map), ("gene_symbols", opts.gene_symbols),
                                ("go_ontology", opts.go_ontology), ("go_annotations", opts.go_annotations),
                                ("test_genes", opts.test_genes), ("exclusive_pairs", opts.exclusive_pairs)) if v},
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()
                    if k not in ("ontology", "annotations", "sequences", "output", "id_map", "gene_symbols",
                                 "go_ontology", "go_annotations", "test_genes", "exclusive_pairs", "force", "extra")},
        "counts": counts,
    }
    manifest["options"]["annotation_format"] = ann.format
    manifest.update(opts.extra)
    with atomic_dir(opts.output, overwrite=opts.force) as tmp:
        write_tsv(tmp / "genes.tsv", ("gene_id", "symbol", "sequence_id", "split"),
                  ((g, symbols.get(g, ""), chosen[g], s) for g, s in zip(genes, splits)))
        write_fasta(tmp / "sequences.fasta.gz",
                    ((g, f"{chosen[g]} {symbols.get(g, '')}".strip(), seqs[chosen[g]]) for g in genes))
        write_tsv(tmp / "labels.tsv.gz", ("gene_id", "term_id"),
                  ((g, t) for g in genes for t in sorted(labels[g], key=col.get)))
        kept_parents = {t: [p for p in parents[t] if p in kept_set] for t in kept}
        write_tsv(tmp / "terms.tsv", ("term_id", "name", "n_genes", "n_train", "bin", "depth", "parents"),
                  ((t, onto.name[t], n_genes[t], int(n_train[col[t]]), frequency_bin(n_genes[t]) or "",
                    sub_depth.get(t, ""), ",".join(kept_parents[t])) for t in kept))
        write_tsv(tmp / "go_annotations.tsv.gz", ("gene_id", "go_id"),
                  ((g, t) for g in genes for t in fine.get(g, [])))
        write_tsv(tmp / "concepts.tsv", ("concept_id", "name", "namespace", "n_genes"), concept_rows)
        corder = {r[0]: i for i, r in enumerate(concept_rows)}
        write_tsv(tmp / "go_concepts.tsv.gz", ("go_id", "concept_id"), go_concepts)
        write_tsv(tmp / "concept_labels.tsv.gz", ("gene_id", "concept_id"),
                  ((g, t) for g in genes for t in sorted(concept_labels.get(g, ()), key=corder.get)))
        exclusive.write_pairs(tmp / "exclusive_pairs.tsv", pair_rows)
        with open(tmp / "manifest.yaml", "w", encoding="utf-8") as fh:
            yaml.safe_dump(manifest, fh, sort_keys=False, allow_unicode=True)
    logger.info("wrote %s: %d genes (train %d, val %d, test %d), %d terms, %d concepts, %d exclusive pairs",
                opts.output, len(genes), *counts["splits"].values(), len(kept), len(concept_rows), len(pair_rows))
    return manifest


def _read_gene_list(path):
    """Gene IDs, one per line (first column; '#' comments and a 'gene_id' header skipped)."""
    out = []
    with open_text(path) as fh:
        for line in fh:
            tok = line.split("\t")[0].strip()
            if tok and not tok.startswith("#") and tok != "gene_id":
                out.append(normalize_gene_id(tok))
    if not out:
        raise InputError(path, "lists no gene IDs")
    return set(out)
