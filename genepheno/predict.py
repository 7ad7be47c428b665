"""Prediction and explanation with a trained GenePheno model.

Scores are ``sigmoid(logit)`` max-propagated up the phenotype hierarchy (an ancestor never
scores below a descendant). Each written score is explained by the GO concepts behind the logit
that produced it — the term's own logit, or, when a descendant raised the score, that
descendant's — as ``contribution = W[term, concept] * g_concept`` (summed over all concepts plus
the bias, the contributions give the logit exactly).
"""

from dataclasses import dataclass

import numpy as np
import torch

from genepheno.errors import GenephenoError, InputError
from genepheno.io import read_tsv
from genepheno.log import logger
from genepheno.model.train import forward_all, go_index_matrix
from genepheno.predictions import topological_order, write_predictions


@dataclass
class Prediction:
    gene_ids: list
    symbols: list
    scores: np.ndarray       # (genes, terms) propagated probabilities
    source: np.ndarray       # (genes, terms) index of the term whose logit gave the score
    logits: np.ndarray       # (genes, terms) raw (calibrated) logits
    concepts: np.ndarray     # (genes, concepts) bottleneck activations g


def propagate_with_source(probs, parents):
    """Max-propagation that also records, per cell, which term's own score won."""
    s = probs.copy()
    src = np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    for j in topological_order(parents):
        for p in parents[j]:
            better = s[:, j] > s[:, p]
            s[better, p] = s[better, j]
            src[better, p] = src[better, j]
    return s, src


def read_gene_go(path):
    """GO input for prediction: a TSV with columns ``gene_id go_id`` (the dataset's
    go_annotations.tsv.gz format) -> {gene_id: [GO IDs]}."""
    out = {}
    for r in read_tsv(path, required=("gene_id", "go_id")):
        out.setdefault(r["gene_id"], []).append(r["go_id"])
    return out


def load_embeddings(model, embeddings, genes=None, device="cpu"):
    """(gene IDs, symbols, matrix) from an embeddings store or a FASTA file (embedded on the fly
    with the model's recorded encoder). ``genes`` restricts to these IDs, in that order."""
    from genepheno import embed
    path = str(embeddings)
    if path.endswith((".fa", ".fasta", ".faa", ".fa.gz", ".fasta.gz", ".faa.gz")) or path == "-":
        from genepheno.sequences.fasta import read_fasta
        records = read_fasta(path)
        if genes is not None:
            known = {r.id: r for r in records}
            missing = [g for g in genes if g not in known]
            if missing:
                raise InputError(path, f"has no record for gene(s) {', '.join(missing[:5])}")
            records = [known[g] for g in genes]
        spec = model.embedding
        enc = embed.load_encoder(spec["model"], layer=spec.get("layer"), device=device)
        model.check_embedding(enc.spec, where=path)
        X = embed.embed_sequences(enc, [r.sequence for r in records])
        return [r.id for r in records], [_symbol(r.description) for r in records], X
    store = embed.open_store(path)
    model.check_embedding(store.meta, where=path)
    ids = list(store.ids) if genes is None else list(genes)
    X = store.get(ids)
    return ids, [""] * len(ids), X


def _symbol(description):
    """A symbol from a FASTA description: ``symbol=X``/``GN=X`` fields, else the last word of
    our dataset/fetch headers (``ACCESSION SYMBOL``)."""
    for tok in description.split():
        for key in ("symbol=", "GN="):
            if tok.startswith(key):
                return tok[len(key):]
    parts = description.split()
    return parts[1] if len(parts) == 2 else ""


def predict(model, gene_ids, X, go=None, device="cpu"):
    """Run the network. ``go``: {gene_id: GO input tokens} (see ``Model.go_tokens`` and
    ``Dataset.go_tokens``); genes without an entry are predicted from sequence alone."""
    if X.shape[1] != model.meta["network"]["seq_dim"]:
        raise GenephenoError(f"embeddings have dimension {X.shape[1]}, the model expects {model.meta['network']['seq_dim']}")
    go_lists = [(go or {}).get(g, []) for g in gene_ids]
    go_idx = go_index_matrix(go_lists, model.go_vocab) if model.go_vocab else None
    net = model.net.to(device)
    logits, concepts = forward_all(net, np.asarray(X, dtype=np.float32), go_idx, torch.device(device))
    probs = 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
    scores, source = propagate_with_source(probs.astype(np.float32), model.term_parents)
    return Prediction(list(gene_ids), [""] * len(gene_ids), scores, source, logits, concepts)


def concepts_text(model, pred, top=3):
    """A function (i, j) -> the ``concepts`` column text. The top concepts of every term of a gene
    are found in one vectorised step when the writer reaches that gene (rows come gene by gene)."""
    W = model.net.phenotype.weight.detach().cpu().numpy()
    k = min(top, W.shape[1])
    cache = {}

    def gene_tops(i):
        if i not in cache:
            cache.clear()
            C = W * pred.concepts[i]                                   # (terms, concepts)
            best = np.argpartition(-C, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(C, best, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            cache[i] = (np.take_along_axis(best, order, axis=1), np.take_along_axis(vals, order, axis=1))
        return cache[i]

    def text(i, j):
        best, vals = gene_tops(i)
        src = pred.source[i, j]
        return ";".join(f"{model.concept_ids[c]}|{model.concept_names[c]}|{v:.3f}"
                        for c, v in zip(best[src], vals[src]) if v > 0)
    return text


def write(model, pred, path, min_score=0.0, top_k=None, top_concepts=3):
    n = write_predictions(path, pred.gene_ids, pred.symbols, model.term_ids, model.term_names, pred.scores,
                          concepts=concepts_text(model, pred, top_concepts) if top_concepts else None,
                          min_score=min_score, top_k=top_k)
    logger.info("wrote %d predictions for %d genes to %s", n, len(pred.gene_ids), path)
    return n


def top_terms_of(model, pred, i, n, min_depth=0):
    """The gene's ``n`` best-scored terms among those at least ``min_depth`` levels below the
    top of the hierarchy (specific terms explain more than "Abnormality of the head")."""
    depth = model.term_depth()
    order = [j for j in np.argsort(-pred.scores[i], kind="stable") if depth[j] >= min_depth]
    return order[:n]


def explain_rows(model, pred, gene, term=None, top_terms=5, top_concepts=5, min_depth=0):
    """Rows (term_id, term_name, score, concept_id, concept_name, activation, weight, contribution)
    for one gene: the given term or its ``top_terms`` best-scored terms."""
    if gene not in pred.gene_ids:
        raise GenephenoError(f"gene {gene!r} is not among the predicted genes (e.g. {', '.join(pred.gene_ids[:3])})")
    i = pred.gene_ids.index(gene)
    if term is not None:
        if term not in model.term_ids:
            raise GenephenoError(f"term {term!r} is not in the model's vocabulary ({len(model.term_ids)} terms)")
        terms = [model.term_ids.index(term)]
    else:
        terms = top_terms_of(model, pred, i, top_terms, min_depth)
    W = model.net.phenotype.weight.detach().cpu().numpy()
    rows = []
    for j in terms:
        src = pred.source[i, j]
        c = W[src] * pred.concepts[i]
        for k in np.argsort(-np.abs(c))[:top_concepts]:
            rows.append((model.term_ids[j], model.term_names[j], float(pred.scores[i, j]), model.concept_ids[k],
                         model.concept_names[k], float(pred.concepts[i, k]), float(W[src, k]), float(c[k])))
    return rows


def plot_heatmap(model, pred, gene, path, n_terms=8, n_concepts=8, symbol=None, min_depth=0):
    """Phenotypes x concepts heatmap of the bottleneck weights W for the gene's top-scored terms
    and the concepts contributing most to them (the paper's case-study figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genepheno.io import atomic_write
    i = pred.gene_ids.index(gene)
    W = model.net.phenotype.weight.detach().cpu().numpy()
    terms = top_terms_of(model, pred, i, n_terms, min_depth)
    srcs = [pred.source[i, j] for j in terms]
    contrib = np.abs(W[srcs] * pred.concepts[i]).sum(0)
    concepts = list(np.argsort(-contrib)[:n_concepts])
    M = W[np.ix_(srcs, concepts)]
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * len(concepts), 1.6 + 0.55 * len(terms)))
    lim = float(np.abs(M).max()) or 1.0
    im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(concepts)))
    ax.set_xticklabels([_wrap(model.concept_names[k]) for k in concepts], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(terms)))
    ax.set_yticklabels([f"{_wrap(model.term_names[j], 40)} ({pred.scores[i, j]:.2f})" for j in terms], fontsize=8)
    for r in range(M.shape[0]):
        for c in range(M.shape[1]):
            ax.text(c, r, f"{M[r, c]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(M[r, c]) > 0.6 * lim else "black")
    fig.colorbar(im, ax=ax, label="bottleneck weight w (concept → phenotype)")
    ax.set_title(f"{symbol or gene}: top phenotypes × GO concepts", fontsize=10)
    fig.tight_layout()
    with atomic_write(path, mode="wb") as fh:
        fig.savefig(fh, format="png", dpi=150)
    plt.close(fig)


def _wrap(text, width=28):
    return text if len(text) <= width else text[: width - 1] + "…"


def run_predict(model_dir, embeddings, output, go_annotations=None, dataset=None, split=None, genes=None,
                min_score=0.0, top_k=None, top_concepts=3, device="cpu"):
    """`genepheno predict`: model + embeddings (store or FASTA) -> predictions file. With
    ``dataset`` (and ``split``) the dataset's genes, symbols and GO annotations are used."""
    from genepheno.model.checkpoint import load_model
    if split and dataset is None:
        raise GenephenoError("--split needs --dataset (the split is the dataset's)")
    model = load_model(model_dir)
    go, symbols = {}, {}
    if dataset is not None:
        from genepheno.data import load_dataset
        ds = load_dataset(dataset)
        rows = ds.split_indices(split or "all")
        genes = genes or [ds.gene_ids[i] for i in rows]
        go = {g: ds.go_tokens(ds.gene_index[g]) for g in genes if g in ds.gene_index}
        symbols = dict(zip(ds.gene_ids, ds.symbols))
    if go_annotations:
        go.update({g: model.go_tokens(ts) for g, ts in read_gene_go(go_annotations).items()})
    ids, syms, X = load_embeddings(model, embeddings, genes, device)
    pred = predict(model, ids, X, go, device)
    pred.symbols = [symbols.get(g) or s for g, s in zip(ids, syms)]
    write(model, pred, output, min_score, top_k, top_concepts)
    return model, pred


def explain_gene(model_dir, embeddings, gene, term=None, go_annotations=None, dataset=None, top_terms=5,
                 top_concepts=5, plot=None, device="cpu", min_depth=0):
    """`genepheno explain`: header + rows as strings; optionally a heatmap PNG."""
    from genepheno.model.checkpoint import load_model
    model = load_model(model_dir)
    go, symbol = {}, None
    if dataset is not None:
        from genepheno.data import load_dataset
        ds = load_dataset(dataset)
        if gene in ds.gene_index:
            go[gene] = ds.go_tokens(ds.gene_index[gene])
            symbol = ds.symbols[ds.gene_index[gene]]
    if go_annotations:
        go.update({g: model.go_tokens(ts) for g, ts in read_gene_go(go_annotations).items()})
    ids, syms, X = load_embeddings(model, embeddings, [gene], device)
    pred = predict(model, ids, X, go, device)
    rows = explain_rows(model, pred, gene, term, top_terms, top_concepts, min_depth)
    if plot:
        plot_heatmap(model, pred, gene, plot, symbol=symbol or syms[0] or gene, min_depth=min_depth)
    header = ("gene_id", "term_id", "term_name", "score", "concept_id", "concept_name", "activation", "weight", "contribution")
    return [header] + [(gene, t, tn, f"{s:.4f}", c, cn, f"{a:.4f}", f"{w:.4f}", f"{x:.4f}")
                       for t, tn, s, c, cn, a, w, x in rows]
