"""Score predictions against a dataset split: `genepheno evaluate` and the report of `genepheno run`.

For each method: read its predictions aligned to the split's genes and the dataset's terms (NaN =
no prediction), max-propagate them over the term hierarchy (NaN-aware, so files from other tools
need not be consistent), and compute :func:`genepheno.metrics.evaluate` overall and per
term-frequency bin against the split's (propagated) labels, with information accretion from the
training labels. The dataset's labels already exclude the root of the phenotype subtree.

Outputs (each written atomically): ``metrics.tsv`` (one row per method x bin, fractions),
``report.md`` (methods x bins table of Fmax / AUC in %, like the paper's Table 1, plus details
and definitions), ``pr_curves.png`` (precision-recall with each method's Fmax point) and
``bins_fmax_auc.png`` (per-bin grouped bars).
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genepheno.errors import GenephenoError
from genepheno.io import atomic_write
from genepheno.log import logger
from genepheno.metrics import BINS, FmaxResult, evaluate, fmax, information_accretion
from genepheno.predictions import max_propagate, read_predictions

GROUPS = ("all",) + BINS
TSV_COLUMNS = ("method", "bin", "Fmax", "threshold", "AUC", "AUPR", "Smin", "coverage", "n_genes", "n_terms",
               "precision", "recall", "auc_terms", "smin_threshold")
PR_PLOT, BARS_PLOT = "pr_curves.png", "bins_fmax_auc.png"


@dataclass
class MethodResult:
    name: str
    source: str                  # the predictions file, or a note for in-memory scores
    rows: list                   # metrics.evaluate output: "all" then BINS
    curve: FmaxResult            # overall precision-recall curve (for the plot)
    genes_predicted: int         # split genes with >= 1 score

    def row(self, group="all"):
        return self.rows[GROUPS.index(group)]


@dataclass
class Evaluation:
    dataset: str
    dataset_path: str
    split: str
    n_genes: int                 # genes of the split
    n_terms: int
    terms_per_group: dict        # group -> evaluated terms
    genes_per_group: dict        # group -> genes with >= 1 true term in the group
    methods: list = field(default_factory=list)

    def records(self):
        """Flat rows, one per method x group ("all" first, then BINS): the metrics.evaluate keys
        (fmax, threshold, auc, aupr, smin, coverage, n_genes, n_terms, ...) plus method, with
        ``bin`` = "all" or a bin label; fractions, NaN where undefined."""
        return [{"method": m.name, **r} for m in self.methods for r in m.rows]


def _dataset(dataset):
    from genepheno.data import load_dataset
    from genepheno.data.dataset import Dataset
    return dataset if isinstance(dataset, Dataset) else load_dataset(dataset)


def truth(dataset, split="test"):
    """(split row indices, y_true bool genes x terms, IA per term from the training labels)."""
    ds = _dataset(dataset)
    idx = ds.split_indices(split)
    if not len(idx):
        raise GenephenoError(f"dataset {ds.name} has no {split} genes")
    ia = information_accretion(ds.labels[ds.split_indices("train")], ds.term_parents)
    return idx, ds.labels[idx], ia


def method_name(path):
    """Default method name: the file name without .gz and its last suffix (``blast.tsv.gz`` -> blast)."""
    name = Path(str(path)).name
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).stem or name


def read_split_predictions(path, dataset, split="test"):
    """Scores of a predictions file as (split genes x dataset terms), NaN where absent. Clean
    InputError for malformed rows or a file with no row for the split's genes and terms."""
    ds = _dataset(dataset)
    idx = ds.split_indices(split)
    gene_index = {ds.gene_ids[i]: k for k, i in enumerate(idx)}
    return read_predictions(path, gene_index, ds.term_index)


def _as_decimal(scores):
    """float32 scores as float64 rounded to 6 decimals. read_predictions and max_propagate keep
    float32, where a written 0.45 becomes 0.44999998: it would miss the 0.45 threshold that the
    exact k/100 grid gives it (ties count as predicted). float32 resolves ~1e-7 in [0, 1], so
    rounding restores every score written with <= 6 decimals and moves no other score by more
    than 5e-7."""
    return np.round(np.asarray(scores, dtype=np.float64), 6)


def evaluate_scores(dataset, scores, split="test", sources=None, thresholds=None):
    """Evaluate in-memory score matrices. ``scores``: {method name: (split genes x dataset terms)}
    with rows in ``dataset.split_indices(split)`` order and NaN for no prediction; they are
    max-propagated here (a no-op for already consistent scores). Returns an :class:`Evaluation`."""
    ds = _dataset(dataset)
    idx, y_true, ia = truth(ds, split)
    bins = np.array([b or "" for b in ds.term_bins], dtype=object)
    ev = Evaluation(ds.name, str(ds.path), split, len(idx), len(ds.term_ids),
                    {g: int(len(bins) if g == "all" else (bins == g).sum()) for g in GROUPS},
                    {g: int(y_true[:, (bins == g) | (g == "all")].any(axis=1).sum()) for g in GROUPS})
    sources = sources or {}
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float32)
        if s.shape != y_true.shape:
            raise GenephenoError(f"{name}: scores have shape {s.shape}, expected {y_true.shape} "
                                 f"({split} genes x terms of {ds.name})")
        s = _as_decimal(max_propagate(s, ds.term_parents))
        rows = evaluate(y_true, s, ds.term_bins, ia=ia, thresholds=thresholds)
        ev.methods.append(MethodResult(name, str(sources.get(name, "in memory")), rows,
                                       fmax(y_true, s, thresholds), int((~np.isnan(s)).any(axis=1).sum())))
        r = rows[0]
        logger.info("%s: Fmax %.4f (t=%.2f), AUC %.4f, AUPR %.4f, Smin %.3f, %d of %d genes predicted",
                    name, r["fmax"], r["threshold"], r["auc"], r["aupr"], r["smin"],
                    ev.methods[-1].genes_predicted, len(idx))
    return ev


def evaluate_files(paths, dataset, split="test", names=None, thresholds=None):
    """Evaluate predictions files side by side; ``names`` default to the file stems."""
    ds = _dataset(dataset)
    paths = [str(p) for p in paths]
    if not paths:
        raise GenephenoError("no predictions file given")
    if names:
        if len(names) != len(paths):
            raise GenephenoError(f"{len(names)} --name value(s) for {len(paths)} --predictions file(s); "
                                 "give one name per file or none")
    else:
        names = [method_name(p) for p in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GenephenoError(f"method name {dup[0]!r} is used twice; name the files apart with --name")
    scores = {n: read_split_predictions(p, ds, split) for n, p in zip(names, paths)}
    return evaluate_scores(ds, scores, split, sources=dict(zip(names, paths)), thresholds=thresholds)


# ----------------------------------------------------------------------------- outputs
def _fmt(x, digits=6):
    return "NA" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def metrics_rows(ev):
    """Rows (tuples in TSV_COLUMNS order) of metrics.tsv."""
    out = []
    for m in ev.methods:
        for r in m.rows:
            out.append((m.name, r["bin"], _fmt(r["fmax"]), _fmt(r["threshold"], 2), _fmt(r["auc"]), _fmt(r["aupr"]),
                        _fmt(r["smin"]), _fmt(r["coverage"]), r["n_genes"], r["n_terms"], _fmt(r["precision"]),
                        _fmt(r["recall"]), r["auc_terms"], _fmt(r["smin_threshold"], 2)))
    return out


def write_metrics_tsv(ev, path):
    with atomic_write(path) as fh:
        fh.write("\t".join(TSV_COLUMNS) + "\n")
        for row in metrics_rows(ev):
            fh.write("\t".join(str(v) for v in row) + "\n")


def _pct(x):
    return "–" if x is None or np.isnan(x) else f"{100 * x:.2f}"


def _label(g):
    return "All" if g == "all" else g.replace(">=", "≥")


def table1_markdown(ev):
    """Methods x (All + bins) table; cells "Fmax / AUC" in %, the best of each column in bold."""
    head = "| Method | " + " | ".join(_label(g) for g in GROUPS) + " |"
    lines = [head, "|---|" + "---:|" * len(GROUPS)]
    best = {}
    for g in GROUPS:
        for key in ("fmax", "auc"):
            vals = [m.row(g)[key] for m in ev.methods if not np.isnan(m.row(g)[key])]
            best[g, key] = round(100 * max(vals), 2) if len(vals) > 1 else None

    def cell(m, g, key):
        v = m.row(g)[key]
        text = _pct(v)
        return f"**{text}**" if best[g, key] is not None and not np.isnan(v) and round(100 * v, 2) == best[g, key] else text

    for m in ev.methods:
        lines.append(f"| {m.name} | " + " | ".join(f"{cell(m, g, 'fmax')} / {cell(m, g, 'auc')}" for g in GROUPS) + " |")
    return "\n".join(lines)


def details_markdown(ev):
    """Overall details per method: Fmax with its threshold, precision, recall, coverage, AUC,
    AUPR, Smin, genes predicted."""
    lines = ["| Method | Fmax | t | precision | recall | coverage | AUC | AUPR | Smin | genes predicted |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in ev.methods:
        r = m.row("all")
        lines.append(f"| {m.name} | {_fmt(r['fmax'], 4)} | {_fmt(r['threshold'], 2)} | {_fmt(r['precision'], 4)} | "
                     f"{_fmt(r['recall'], 4)} | {_fmt(r['coverage'], 4)} | {_fmt(r['auc'], 4)} | {_fmt(r['aupr'], 4)} | "
                     f"{_fmt(r['smin'], 3)} | {m.genes_predicted} / {ev.n_genes} |")
    return "\n".join(lines)


def counts_markdown(ev):
    return ("| | " + " | ".join(_label(g) for g in GROUPS) + " |\n|---|" + "---:|" * len(GROUPS) + "\n"
            "| terms | " + " | ".join(str(ev.terms_per_group[g]) for g in GROUPS) + " |\n"
            "| genes with ≥ 1 true term | " + " | ".join(str(ev.genes_per_group[g]) for g in GROUPS) + " |")


NOTES = """\
- **Fmax** (gene-centric, CAFA): for t = 0.00, 0.01, …, 1.00 a term is predicted when its score ≥ t;
  precision is averaged over the genes with ≥ 1 prediction at t, recall over all genes with ≥ 1 true
  term in the column's terms; Fmax = max over t of 2·P·R/(P+R), reported at the lowest t reaching it.
  Genes without a true term in the column are left out; a gene without any prediction counts as
  recall 0 (coverage = fraction of genes predicted at that t).
- **AUC** (phenotype-centric): ROC-AUC of each term over all genes of the split (a missing score
  counts as 0), averaged over the terms that have both positive and negative genes.
- **AUPR**: micro-averaged average precision over all (gene, term) pairs. **Smin**: minimum over t of
  √(ru² + mi²), remaining uncertainty and misinformation weighted by information accretion
  IA(t) = −log2 P(t | parents) estimated on the training labels.
- **Bins** group terms by the number of annotated genes in the whole dataset; a bin's Fmax uses only
  that bin's terms and the genes with a true term among them; "All" uses every term.
- Scores are max-propagated over the term hierarchy before scoring (an ancestor scores at least its
  best descendant); labels are true-path propagated; the subtree root is not a term of the dataset.
- Table values are percentages; `metrics.tsv` holds the same numbers as fractions."""


def report_markdown(ev, title=None, plots=(PR_PLOT, BARS_PLOT)):
    """The full report.md text."""
    parts = [f"# {title or 'Evaluation of phenotype predictions'}", "",
             f"Dataset **{ev.dataset}** (`{ev.dataset_path}`), split **{ev.split}**: {ev.n_genes} genes, "
             f"{ev.n_terms} terms. Methods: {len(ev.methods)}.", "",
             "## Fmax / AUC (%) per term-frequency bin", "", table1_markdown(ev), "",
             "Bold: the best value of the column (Fmax and AUC separately).", "",
             "## Overall details", "", details_markdown(ev), "", "## Evaluated terms and genes", "",
             counts_markdown(ev), "", "## Sources", ""]
    parts += [f"- {m.name}: `{m.source}`" for m in ev.methods]
    if plots:
        parts += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    parts += ["", "## Definitions", "", NOTES, ""]
    return "\n".join(parts)


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())


def plot_pr_curves(ev, path):
    """Precision-recall curves over the threshold grid, each method's Fmax point marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 5))
    for m in ev.methods:
        c = m.curve
        ok = ~np.isnan(c.precisions)
        (line,) = ax.plot(c.recalls[ok], c.precisions[ok], lw=1.5, label=f"{m.name} (Fmax {c.fmax:.3f}, t={c.threshold:.2f})")
        if not np.isnan(c.fmax):
            ax.plot([c.recall], [c.precision], "o", color=line.get_color(), ms=7, mec="black")
    r = np.linspace(0.01, 1, 200)
    for f in (0.2, 0.4, 0.6, 0.8):  # iso-F lines
        p = f * r / (2 * r - f)
        keep = (p > 0) & (p <= 1)
        ax.plot(r[keep], p[keep], color="0.85", lw=0.8, zorder=0)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="recall", ylabel="precision",
           title=f"{ev.dataset} {ev.split}: precision-recall (gene-centric)")
    ax.legend(fontsize=8, loc="upper right")
    _save(fig, path)
    plt.close(fig)


def plot_bins(ev, path):
    """Grouped bars of Fmax and AUC per frequency bin, one bar per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(GROUPS))
    w = 0.8 / max(1, len(ev.methods))
    for ax, key, label in zip(axes, ("fmax", "auc"), ("Fmax", "AUC")):
        for k, m in enumerate(ev.methods):
            vals = [np.nan_to_num(m.row(g)[key]) for g in GROUPS]
            ax.bar(x - 0.4 + w * (k + 0.5), vals, w, label=m.name)
        if key == "auc":
            ax.axhline(0.5, color="0.5", ls="--", lw=0.8)
        ax.set_xticks(x, [_label(g) for g in GROUPS])
        ax.set(ylim=(0, 1), ylabel=label, xlabel="term frequency bin (annotated genes)", title=label)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{ev.dataset} {ev.split}")
    _save(fig, path)
    plt.close(fig)


def write_report(ev, out_dir, title=None, plots=True):
    """Write metrics.tsv, report.md and (with ``plots``) the two PNGs into ``out_dir`` (created if
    needed; each file replaced atomically). Returns {kind: path}."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GenephenoError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.tsv", "report": out / "report.md"}
    write_metrics_tsv(ev, paths["metrics"])
    if plots and ev.methods:
        paths["pr"], paths["bins"] = out / PR_PLOT, out / BARS_PLOT
        plot_pr_curves(ev, paths["pr"])
        plot_bins(ev, paths["bins"])
    with atomic_write(paths["report"]) as fh:
        fh.write(report_markdown(ev, title, (PR_PLOT, BARS_PLOT) if plots and ev.methods else ()))
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths


def run_evaluate(predictions, dataset, split="test", output=".", names=None, title=None):
    """`genepheno evaluate`: evaluate the files and write the report folder into ``output``;
    returns the :class:`Evaluation` (``.records()`` for flat rows)."""
    ev = evaluate_files(predictions, dataset, split, names)
    write_report(ev, output, title)
    return ev
