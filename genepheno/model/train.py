"""Training GenePheno on a dataset and an embedding matrix: AdamW, early stopping on validation
Fmax, post-hoc calibration of the logits on validation genes. Seeded: the same seed gives the
same numbers on CPU."""

import copy
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from genepheno import metrics
from genepheno.errors import GenephenoError
from genepheno.log import logger
from genepheno.model import losses
from genepheno.model.module import GenePhenoNet
from genepheno.predictions import max_propagate


@dataclass
class Inputs:
    """Everything the network sees for a dataset's genes, aligned to ``dataset.gene_ids``."""
    X: np.ndarray                 # (genes, seq_dim) float32
    go_idx: np.ndarray            # (genes, L) int64, padded with len(go_vocab)
    go_vocab: list                # GO IDs of the input vocabulary
    labels: np.ndarray            # (genes, terms) bool
    concept_labels: np.ndarray    # (genes, concepts) bool
    concept_known: np.ndarray     # (genes,) bool: the gene has GO annotations, so its concepts are known
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


def resolve_device(name="auto"):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GenephenoError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return torch.device(name)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def go_vocabulary(go_lists, train_rows, min_genes):
    """GO input terms present in at least ``min_genes`` training genes, sorted."""
    counts = {}
    for i in train_rows:
        for t in set(go_lists[i]):
            counts[t] = counts.get(t, 0) + 1
    return sorted(t for t, n in counts.items() if n >= min_genes)


def go_index_matrix(go_lists, vocab):
    """(genes, L) int64 matrix of vocabulary indices, padded with len(vocab); unknown terms dropped."""
    index = {t: k for k, t in enumerate(vocab)}
    rows = [[index[t] for t in dict.fromkeys(ts) if t in index] for ts in go_lists]
    width = max([len(r) for r in rows] + [1])
    out = np.full((len(rows), width), len(vocab), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def prepare_inputs(dataset, X, config):
    """The GO input of a gene is its direct fine GO terms plus the GO concepts they propagate to
    (what a multi-hot over propagated annotations would show)."""
    train = dataset.split_indices("train")
    tokens = [dataset.go_tokens(i) for i in range(len(dataset.gene_ids))]
    vocab = go_vocabulary(tokens, train, config.min_go_genes) if config.use_go else []
    return Inputs(
        X=np.asarray(X, dtype=np.float32),
        go_idx=go_index_matrix(tokens, vocab),
        go_vocab=vocab,
        labels=dataset.labels,
        concept_labels=dataset.concept_labels,
        concept_known=dataset.concept_labels.any(1),
        pairs=np.array(dataset.exclusive_pairs, dtype=np.int64).reshape(-1, 2),
    )


def build_network(config, seq_dim, n_go, n_concepts, n_terms):
    return GenePhenoNet(seq_dim, n_go, n_concepts, n_terms, hidden_dim=config.hidden_dim, go_dim=config.go_dim,
                        dropout=config.dropout, use_sequence=config.use_sequence, use_go=config.use_go,
                        hidden_layers=config.hidden_layers)


def _trim(go, pad):
    """Drop padding columns beyond the batch's longest set (rows are left-packed)."""
    width = int((go != pad).sum(1).max()) if len(go) else 0
    return go[:, :max(width, 1)]


def _drop_go(go_idx, pad, config, gen):
    """GO-input dropout: hide a gene's whole set (so sequence-only prediction is learned) or
    single terms."""
    go = go_idx.clone()
    if config.go_term_dropout > 0:
        go[torch.rand(go.shape, generator=gen) < config.go_term_dropout] = pad
    if config.go_dropout > 0:
        go[torch.rand(len(go), generator=gen) < config.go_dropout] = pad
    return go


@torch.no_grad()
def forward_all(net, X, go_idx, device, batch_size=512):
    """Logits and bottleneck activations for every row, in eval mode, as numpy arrays."""
    net.eval()
    logits, concepts = [], []
    pad = net.go.embed.padding_idx if net.use_go else None
    for s in range(0, len(X), batch_size):
        go = _trim(torch.as_tensor(go_idx[s:s + batch_size]), pad).to(device) if go_idx is not None and pad is not None else None
        out = net(torch.as_tensor(X[s:s + batch_size], device=device), go)
        logits.append(out.logits.float().cpu().numpy())
        concepts.append(out.concepts.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(concepts)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def validation_scores(net, inp, rows, term_parents, device):
    logits, _ = forward_all(net, inp.X[rows], inp.go_idx[rows], device)
    return max_propagate(_sigmoid(logits), term_parents)


def calibrate(logits, labels, steps=100):
    """Scale a > 0 and shift b minimising BCE of sigmoid(a * logit + b) against the labels."""
    x = torch.as_tensor(logits, dtype=torch.float64).flatten()
    y = torch.as_tensor(labels, dtype=torch.float64).flatten()
    log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_a, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(log_a.exp() * x + b, y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_a.detach().exp()), float(b.detach())


def fit(dataset, inp, config, progress_every=1):
    """Train on the train split, early-stop on validation Fmax. Returns (network on CPU, history,
    summary)."""
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    train, val = dataset.split_indices("train"), dataset.split_indices("val")
    if len(train) == 0:
        raise GenephenoError(f"dataset {dataset.name} has no training genes")
    if len(val) == 0:
        val = train  # tiny datasets: select on training genes rather than fail
        logger.warning("no validation genes: early stopping uses the training genes")
    n_go = len(inp.go_vocab)
    net = build_network(config, inp.X.shape[1], n_go, inp.concept_labels.shape[1], inp.labels.shape[1]).to(device)
    Xtr = inp.X[train]
    net.seq_mean.copy_(torch.as_tensor(Xtr.mean(0), device=device))
    net.seq_std.copy_(torch.as_tensor(Xtr.std(0) + 1e-6, device=device))
    with torch.no_grad():  # start from the term frequencies (the naive predictor); learn deviations
        freq = inp.labels[train].mean(0).clip(1e-4, 1 - 1e-4)
        net.phenotype.bias.copy_(torch.as_tensor(np.log(freq / (1 - freq)), dtype=torch.float32, device=device))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    pairs = torch.as_tensor(inp.pairs, device=device) if config.lambda_exclusive > 0 else None
    mlc = (lambda s, y, w=None: losses.contrastive_mlc_loss(s, y, config.tau, config.anchor, w)) \
        if config.loss == "contrastive" else losses.bce_loss

    X = torch.as_tensor(inp.X)
    G = torch.as_tensor(inp.go_idx)
    Y = torch.as_tensor(inp.labels)
    C = torch.as_tensor(inp.concept_labels)
    K = torch.as_tensor(inp.concept_known)
    best, best_state, bad_epochs, history = -1.0, None, 0, []
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        sums = np.zeros(4)
        order = rng.permutation(train)
        for s in range(0, len(order), config.batch_size):
            b = torch.as_tensor(order[s:s + config.batch_size])
            go = _drop_go(_trim(G[b], n_go), n_go, config, gen) if n_go else None
            out = net(X[b].to(device), go.to(device) if go is not None else None)
            l_mlc = mlc(out.logits, Y[b].to(device))
            l_ex = losses.exclusive_loss(out.logits, pairs) if pairs is not None else out.logits.new_zeros(())
            l_c = (mlc(out.concept_logits, C[b].to(device), K[b].to(device))
                   if config.lambda_concept > 0 else out.logits.new_zeros(()))
            loss = l_mlc + config.lambda_exclusive * l_ex + config.lambda_concept * l_c
            opt.zero_grad()
            loss.backward()
            opt.step()
            sums += np.array([loss.item(), l_mlc.item(), l_ex.item(), l_c.item()]) * len(b)
        sums /= len(order)
        scores = validation_scores(net, inp, val, dataset.term_parents, device)
        f = metrics.fmax(inp.labels[val], scores)
        auc = metrics.term_auc(inp.labels[val], scores).auc
        rec = {"epoch": epoch, "loss": sums[0], "mlc": sums[1], "exclusive": sums[2], "concept": sums[3],
               "val_fmax": f.fmax, "val_threshold": f.threshold, "val_auc": auc,
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if epoch % progress_every == 0 or epoch == 1:
            logger.info("epoch %3d  loss %.4f (mlc %.4f, excl %.4f, concept %.4f)  val Fmax %.4f @%.2f  AUC %.4f  %.1fs",
                        epoch, *sums, f.fmax, f.threshold, auc, rec["seconds"])
        if f.fmax > best + 1e-6:
            best, best_state, bad_epochs = f.fmax, copy.deepcopy(net.state_dict()), 0
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                logger.info("early stop: no better validation Fmax for %d epochs", config.patience)
                break
    net.load_state_dict(best_state)
    best_epoch = max(history, key=lambda r: (r["val_fmax"], -r["epoch"]))["epoch"]
    summary = {"best_epoch": best_epoch, "epochs_run": len(history), "val_fmax": best}
    if config.calibrate:
        logits, _ = forward_all(net, inp.X[val], inp.go_idx[val], device)
        a, b = calibrate(logits, inp.labels[val])
        with torch.no_grad():  # fold into the last layer so logits, attributions and scores agree
            net.phenotype.weight.mul_(a)
            net.phenotype.bias.mul_(a).add_(b)
        summary["calibration"] = {"scale": a, "shift": b}
        logger.info("calibrated logits on %d validation genes: scale %.3f, shift %.3f", len(val), a, b)
    return net.cpu().eval(), history, summary


def train_model(dataset, embeddings, config, output, force=False):
    """`genepheno train`: dataset (name or path) + embeddings store -> model folder."""
    from genepheno.data import load_dataset
    from genepheno.embed import open_store
    from genepheno.model.checkpoint import save_model
    ds = load_dataset(dataset)
    store = open_store(embeddings)
    X = store.get(ds.gene_ids)
    inp = prepare_inputs(ds, X, config)
    logger.info("training on %s: %d train / %d val genes, %d terms, %d concepts, %d GO input terms, "
                "%d exclusive pairs, embeddings %s (dim %d)", ds.name, (ds.splits == "train").sum(),
                (ds.splits == "val").sum(), len(ds.term_ids), len(ds.concept_ids), len(inp.go_vocab),
                len(inp.pairs), store.meta.get("model"), X.shape[1])
    net, history, summary = fit(ds, inp, config)
    save_model(output, net, config, store.meta, ds, inp, history, summary, force=force)
    logger.info("saved model to %s (best epoch %d, validation Fmax %.4f)", output, summary["best_epoch"],
                summary["val_fmax"])
    return summary
