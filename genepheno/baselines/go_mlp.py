"""go-mlp: an MLP from a gene's GO annotations to its phenotypes (a DeepPheno-like baseline).

Input: a multi-hot vector over a GO vocabulary taken from the training genes -- the gene's direct
fine GO terms (``go_annotations.tsv.gz``; terms seen in >= ``min_go_genes`` training genes) plus
the dataset's depth-2 GO concepts the gene reaches by propagation (``concept_labels``), which
stand in for DeepPheno's propagated GO annotations. Model: input -> ``hidden`` ReLU units
(dropout) -> one sigmoid per phenotype term, trained with binary cross-entropy (Adam, minibatches)
on the train split; the epoch with the best Fmax on the val split (max-propagated scores) is
kept. The output bias starts at the log-odds of each term's training frequency, so the untrained
model is the naive baseline. Genes without any GO annotation get the naive scores.
"""

import numpy as np
import torch

from genepheno.baselines.naive import term_frequencies
from genepheno.log import logger, progress
from genepheno.metrics import fmax
from genepheno.predictions import max_propagate


def go_vocabulary(dataset, min_go_genes=2):
    """Sorted fine GO IDs annotated to >= ``min_go_genes`` training genes."""
    counts = {}
    for i in dataset.split_indices("train"):
        for t in set(dataset.go_annotations[i]):
            counts[t] = counts.get(t, 0) + 1
    return sorted(t for t, n in counts.items() if n >= min_go_genes)


def go_inputs(dataset, rows, vocab):
    """Multi-hot input as (flat feature indices, offsets) for ``torch.nn.EmbeddingBag``:
    vocabulary GO terms first, then the dataset's concepts. Also returns a bool mask of the rows
    that have any GO annotation."""
    index = {t: k for k, t in enumerate(vocab)}
    flat, offsets, has = [], [], []
    for i in rows:
        feats = sorted({index[t] for t in dataset.go_annotations[i] if t in index})
        feats += [len(vocab) + c for c in np.flatnonzero(dataset.concept_labels[i])]
        offsets.append(len(flat))
        flat.extend(feats)
        has.append(bool(dataset.go_annotations[i]))
    return (torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long),
            np.array(has, dtype=bool))


class GoMLP(torch.nn.Module):
    def __init__(self, n_inputs, n_terms, hidden=256, dropout=0.5, prior=None):
        super().__init__()
        self.inp = torch.nn.EmbeddingBag(n_inputs, hidden, mode="sum")  # = multi-hot @ W, sparse input
        self.bias = torch.nn.Parameter(torch.zeros(hidden))
        self.drop = torch.nn.Dropout(dropout)
        self.out = torch.nn.Linear(hidden, n_terms)
        torch.nn.init.normal_(self.inp.weight, std=0.05)
        if prior is not None:
            p = np.clip(prior, 1e-4, 1 - 1e-4)
            with torch.no_grad():
                self.out.bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32))

    def forward(self, flat, offsets):
        return self.out(self.drop(torch.relu(self.inp(flat, offsets) + self.bias)))


def _batch(flat, offsets, rows):
    """The (flat, offsets) slice of the bag rows ``rows``."""
    ends = torch.cat([offsets[1:], torch.tensor([len(flat)])])
    parts = [flat[offsets[r]:ends[r]] for r in rows]
    lens = torch.tensor([len(p) for p in parts])
    return torch.cat(parts) if parts else flat[:0], torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)[:-1]])


def _predict(model, flat, offsets, n, batch=512):
    model.eval()
    out = []
    with torch.no_grad():
        for a in range(0, n, batch):
            f, o = _batch(flat, offsets, range(a, min(a + batch, n)))
            out.append(torch.sigmoid(model(f, o)).numpy())
    return np.concatenate(out) if out else np.zeros((0, model.out.out_features), dtype=np.float32)


def go_mlp_scores(dataset, split="test", seed=0, hidden=256, dropout=0.5, lr=2e-3, weight_decay=0.0,
                  batch_size=128, max_epochs=40, patience=5, min_go_genes=2, history=None, **_):
    """(genes of ``split`` x terms) scores of the GO MLP; see the module docstring. ``history``: a
    list that receives (epoch, val Fmax) per epoch, epoch 0 being the untrained (naive) model."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    prior = term_frequencies(dataset)
    vocab = go_vocabulary(dataset, min_go_genes)
    n_in = len(vocab) + len(dataset.concept_ids)
    train = dataset.split_indices("train")
    val = dataset.split_indices("val")
    ftr, otr, has_tr = go_inputs(dataset, train, vocab)
    train_rows = np.flatnonzero(has_tr)  # genes without GO teach nothing here
    y_train = torch.as_tensor(dataset.labels[train], dtype=torch.float32)
    fva, ova, has_va = go_inputs(dataset, val, vocab)
    y_val = dataset.labels[val]
    model = GoMLP(n_in, len(dataset.term_ids), hidden, dropout, prior)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    if not len(val):
        logger.warning("go-mlp: the dataset has no val genes; training %d epochs without early stopping", max_epochs)
    logger.info("go-mlp: %d GO inputs (%d fine terms + %d concepts), %d training genes with GO, "
                "early stopping on %d val genes", n_in, len(vocab), len(dataset.concept_ids),
                len(train_rows), len(val))

    def val_fmax():
        s = _predict(model, fva, ova, len(val))
        s[~has_va] = prior
        return fmax(y_val, max_propagate(s, dataset.term_parents)).fmax if len(val) else 0.0

    history = [] if history is None else history
    best, best_state, best_epoch, bad = val_fmax(), None, 0, 0
    history.append((0, best))
    for epoch in progress(range(1, max_epochs + 1), total=max_epochs, desc="go-mlp", unit="epoch"):
        model.train()
        order = gen.permutation(train_rows)
        for a in range(0, len(order), batch_size):
            rows = order[a:a + batch_size]
            f, o = _batch(ftr, otr, rows)
            opt.zero_grad()
            loss = loss_fn(model(f, o), y_train[rows])
            loss.backward()
            opt.step()
        score = val_fmax()
        history.append((epoch, score))
        logger.debug("go-mlp epoch %d: train loss %.5f, val Fmax %.4f", epoch, loss.item(), score)
        if not len(val):  # nothing to stop on: train every epoch, keep the last
            best_epoch = epoch
        elif score > best:
            best, best_epoch, bad = score, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    if len(val):
        logger.info("go-mlp: best val Fmax %.4f at epoch %d", best, best_epoch)
    rows = dataset.split_indices(split)
    f, o, has = go_inputs(dataset, rows, vocab)
    scores = _predict(model, f, o, len(rows))
    scores[~has] = prior
    return scores
