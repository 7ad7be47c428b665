"""`genepheno run`: the whole job on one dataset, offline.

embed the dataset's sequences (ESM-2 when its weights are on disk, else the weight-free kmer
encoder) -> train GenePheno -> predict the test split -> run the baselines -> evaluate everything
-> ``report.md`` with a Table-1-style comparison and an explanation heatmap.

Output folder::

    embeddings.sqlite        the embeddings store (resumable; reused by a rerun)
    model/                   the GenePheno model folder
    predictions/<method>.tsv predictions for the test genes, one file per method
    evaluation/              metrics.tsv, report.md and plots from `genepheno evaluate`
    explain_<gene>.png       phenotypes x GO concepts heatmap for one test gene
    explain_<gene>.tsv       the concepts behind that gene's top predictions
    report.md                the summary a reader starts with
    run.yaml                 what ran: options, encoder, versions, input checksums, timings
"""

import time
from pathlib import Path

import numpy as np
import yaml

from genepheno import __version__
from genepheno.errors import GenephenoError
from genepheno.log import logger

PAPER_HPO = {  # GenePheno paper, Table 1, HPO, "all" column: Fmax / AUC (%)
    "GenePheno": (43.17, 71.44), "DeepPheno": (40.37, 58.17), "kmer2Vec+LR": (40.11, 54.47),
    "w-BLAST": (31.03, 54.22), "max-BLAST": (25.77, 51.74),
}
LABELS = {"genepheno": "GenePheno", "naive": "naive (term frequency)", "blast": "w-BLAST (blastp)",
          "kmer-lr": "k-mer + LR", "go-mlp": "GO-MLP (DeepPheno-like)"}


def choose_encoder(model="auto", weights=None):
    """The encoder name to use: ``model`` if given, else ESM-2 when its weights are available
    locally, else the weight-free kmer encoder. Returns (name, why)."""
    from genepheno.embed import DEFAULT_MODEL, esm_weights_available
    if model and model != "auto":
        return model, "requested"
    if weights:
        return None, f"ESM-2 weights given: {weights}"
    if esm_weights_available(DEFAULT_MODEL):
        return DEFAULT_MODEL, "ESM-2 weights found in the torch hub cache"
    return "kmer", f"no ESM-2 weights on disk ({DEFAULT_MODEL}); using the weight-free kmer encoder"


class _Steps:
    def __init__(self, n):
        self.n, self.k, self.times = n, 0, {}

    def __call__(self, name):
        self.k += 1
        self.name, self.t0 = name, time.perf_counter()
        logger.info("[%d/%d] %s", self.k, self.n, name)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.times[self.name] = round(time.perf_counter() - self.t0, 1)
        return False


def run_pipeline(dataset="hpo-human", output="results", config=None, model="auto", weights=None,
                 baselines=("naive", "blast", "kmer-lr", "go-mlp"), seed=None, threads=None, device="auto"):
    from genepheno.baselines import NAMES, run_baseline, write_baseline
    from genepheno.data import load_dataset
    from genepheno.embed import embed_fasta, load_encoder, open_store
    from genepheno.evaluate import run_evaluate
    from genepheno.model.config import load_config
    from genepheno.model.train import train_model
    from genepheno.predict import explain_gene, run_predict

    unknown = [b for b in baselines if b not in NAMES]
    if unknown:
        raise GenephenoError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    t_start = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(config)
    if seed is not None:
        cfg.seed = seed
    if threads:
        cfg.threads = threads
    cfg.device = device if device != "auto" else cfg.device
    ds = load_dataset(dataset)
    steps = _Steps(5 + len(baselines))

    with steps("embed the dataset's sequences"):
        name, why = choose_encoder(model, weights)
        logger.info("encoder: %s", why)
        enc = load_encoder(name, weights=weights, device=cfg.device, dtype="bf16" if name != "kmer" else "fp32")
        store_path = out / "embeddings.sqlite"
        embed_fasta(ds.path / "sequences.fasta.gz", store_path, enc)
        encoder_spec = open_store(store_path).meta

    with steps("train GenePheno"):
        summary = train_model(ds.path, store_path, cfg, out / "model", force=True)

    preds = {}
    with steps("predict the test genes"):
        preds["genepheno"] = out / "predictions" / "genepheno.tsv"
        model, pred = run_predict(out / "model", store_path, preds["genepheno"], dataset=ds.path, split="test")

    for b in baselines:
        with steps(f"baseline {b}"):
            scores = run_baseline(b, ds, "test", seed=cfg.seed, threads=cfg.threads or None)
            preds[b] = out / "predictions" / f"{b}.tsv"
            write_baseline(preds[b], ds, "test", scores)

    with steps("evaluate"):
        ev = run_evaluate([str(p) for p in preds.values()], ds, "test", out / "evaluation",
                          names=[LABELS.get(m, m) for m in preds])

    with steps("explain one test gene"):
        gene, symbol = _example_gene(ds, pred, model)
        table = explain_gene(out / "model", store_path, gene, dataset=ds.path, top_terms=5, top_concepts=3,
                             plot=out / f"explain_{_safe(gene)}.png", min_depth=3)
        (out / f"explain_{_safe(gene)}.tsv").write_text("\n".join("\t".join(r) for r in table) + "\n")

    wall = round(time.perf_counter() - t_start, 1)
    run = {"genepheno_version": __version__, "dataset": {"name": ds.name, "manifest": ds.manifest.get("counts", {}).get("genes")},
           "encoder": {**{k: encoder_spec.get(k) for k in ("model", "layer", "pooling", "dim")}, "why": why},
           "config": cfg.to_dict(), "training": summary, "baselines": list(baselines),
           "timings_s": steps.times, "wall_s": wall}
    (out / "run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))
    _write_report(out, ds, ev, gene, symbol, table, run)
    logger.info("done in %.0f s: %s", wall, out / "report.md")
    return ev


def _safe(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _example_gene(ds, pred, model):
    """A test gene to explain: the most correct predictions among its top-5 specific terms (a case
    where the model is right, as the paper's case studies), ties to the gene with most labels.
    ``pred`` holds the test genes in split order and the dataset's terms (the model's vocabulary)."""
    rows = [ds.gene_index[g] for g in pred.gene_ids]
    Y = ds.labels[rows]
    depth = np.array(model.term_depth())  # specific terms, as in the explanation: >= 3 levels down
    top = np.argsort(-(pred.scores * (depth >= 3)), axis=1)[:, :5]
    hits = Y[np.arange(len(rows))[:, None], top].sum(1)
    k = int(np.lexsort((-Y.sum(1), -hits))[0])
    return pred.gene_ids[k], ds.symbols[rows[k]]


def _write_report(out, ds, ev, gene, symbol, table, run):
    from genepheno.evaluate import table1_markdown
    lines = [f"# genepheno run — {ds.name}", "",
             f"Test split: {ev.n_genes} genes; {ev.n_terms} terms; encoder **{run['encoder']['model']}** "
             f"(dim {run['encoder']['dim']}; {run['encoder']['why']}). Wall time {run['wall_s']:.0f} s.", "",
             "## Fmax / AUC (%) by term-frequency bin (test split)", "", table1_markdown(ev)]
    lines += ["", "Bold: best of the column. Fmax: gene-centric CAFA Fmax (thresholds 0.00–1.00 by 0.01) over the bin's terms; "
              "AUC: ROC-AUC per term averaged over terms with both classes. Bins count a term's genes in "
              "the whole dataset. Details, AUPR, Smin and coverage: `evaluation/metrics.tsv`, "
              "`evaluation/report.md`.", "",
              "For reference, the paper's HPO numbers (all terms, Fmax / AUC %; their data, DNA language "
              "model and GO encoder, not ours): " + "; ".join(f"{k} {v[0]:.2f} / {v[1]:.2f}" for k, v in PAPER_HPO.items()) + ".",
              "", f"## Why: {symbol or gene} ({gene})", "",
              f"![explain](explain_{_safe(gene)}.png)", "",
              "Concepts behind its top predictions (contribution = bottleneck weight × concept activation):", "",
              "| term | score | concept | contribution |", "|---|---|---|---|"]
    for r in table[1:]:
        lines.append(f"| {r[2]} ({r[1]}) | {r[3]} | {r[5]} ({r[4]}) | {r[8]} |")
    t = run["training"]
    lines += ["", "## Run", "",
              f"- Training: best epoch {t.get('best_epoch')} of {t.get('epochs_run')}, validation Fmax "
              f"{t.get('val_fmax', float('nan')):.4f}; config in `model/model.yaml`.",
              "- Step times (s): " + ", ".join(f"{k} {v}" for k, v in run["timings_s"].items()) + ".",
              f"- genepheno {run['genepheno_version']}; inputs and their checksums: `{ds.path}/manifest.yaml`."]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
