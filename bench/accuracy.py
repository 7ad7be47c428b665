"""GenePheno and its ablations on a dataset's test split, in one table (the paper's Table 2).

    python bench/accuracy.py [--dataset hpo-human] [--config FILE] [--model kmer] [--embeddings STORE]

Embeds the dataset with the offline kmer encoder (or reads a store), trains the full model and
each ablation with the same seed, and prints test Fmax / AUC (%) overall and per frequency bin.
"""

import argparse
import time

import numpy as np
import torch

from genepheno import log
from genepheno.data import load_dataset
from genepheno.evaluate import evaluate_scores
from genepheno.metrics import BINS
from genepheno.model.config import config_from_dict, load_config
from genepheno.model.train import fit, forward_all, prepare_inputs
from genepheno.predictions import max_propagate

VARIANTS = [
    ("complete", {}),
    ("w/o GO input", {"use_go": False}),
    ("w/o sequence input", {"use_sequence": False}),
    ("w/o contrastive loss (BCE)", {"loss": "bce"}),
    ("w/o mutual-exclusive loss", {"lambda_exclusive": 0.0}),
    ("w/o bottleneck loss", {"lambda_concept": 0.0}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="hpo-human")
    ap.add_argument("--config")
    ap.add_argument("--model", default="kmer", help="encoder used when --embeddings is not given")
    ap.add_argument("--embeddings", help="an embeddings store of the dataset's genes")
    ap.add_argument("--only", help="comma-separated variant numbers (0 = complete)")
    args = ap.parse_args()
    log.setup(-1)
    ds = load_dataset(args.dataset)
    t0 = time.perf_counter()
    if args.embeddings:
        from genepheno.embed import open_store
        store = open_store(args.embeddings)
        X, encoder = store.get(ds.gene_ids), store.meta.get("model")
    else:
        from genepheno.embed import embed_sequences, load_encoder
        seqs = ds.sequences()
        X = embed_sequences(load_encoder(args.model), [seqs[g] for g in ds.gene_ids])
        encoder = args.model
    print(f"dataset {ds.name}: {len(ds.gene_ids)} genes, {len(ds.term_ids)} terms; encoder {encoder} "
          f"(dim {X.shape[1]}, {time.perf_counter() - t0:.0f} s)")
    base = load_config(args.config).to_dict()
    test = ds.split_indices("test")
    chosen = VARIANTS if not args.only else [VARIANTS[int(i)] for i in args.only.split(",")]
    scores, seconds = {}, {}
    for name, override in chosen:
        cfg = config_from_dict({**base, **override})
        t = time.perf_counter()
        inp = prepare_inputs(ds, X, cfg)
        net, _, summary = fit(ds, inp, cfg)
        logits, _ = forward_all(net, inp.X[test], inp.go_idx[test], torch.device("cpu"))
        scores[name] = max_propagate(1 / (1 + np.exp(-np.clip(logits, -60, 60))), ds.term_parents)
        seconds[name] = time.perf_counter() - t
        print(f"  {name}: best epoch {summary['best_epoch']}/{summary['epochs_run']}, {seconds[name]:.0f} s", flush=True)
    ev = evaluate_scores(ds, scores, "test")
    groups = ("all",) + BINS
    print(f"\ntest split, {len(test)} genes; cells: Fmax / AUC (%)")
    print(f"| {'variant':28} | " + " | ".join(f"{g:>13}" for g in groups) + " | train s |")
    print("|---|" + "---:|" * (len(groups) + 1))
    for m in ev.methods:
        cells = [f"{100 * m.row(g)['fmax']:5.2f} / {100 * m.row(g)['auc']:5.2f}" for g in groups]
        print(f"| {m.name:28} | " + " | ".join(cells) + f" | {seconds[m.name]:.0f} |")


if __name__ == "__main__":
    main()
