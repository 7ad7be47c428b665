"""Bridges to CAFA-evaluator (``cafaeval``): an OBO copy it can read, and a cross-check runner.

cafaeval's OBO parser keeps only terms that carry their own ``namespace:`` line; hp.obo and mp.obo
declare the namespace once in the header (``default-namespace:``), so cafaeval silently drops every
term and reports "Empty prediction". :func:`write_namespaced_obo` writes a copy with the namespace
on each term. :func:`run_cafaeval` scores matrices with cafaeval under the settings that match
:func:`genepheno.metrics.fmax` (max propagation, "cafa" normalisation, thresholds 0.01..0.99).
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np

from genepheno.errors import GenephenoError, InputError
from genepheno.io import atomic_write, open_text

_EDGE_PREFIXES = ("is_a:", "relationship: part_of ")


def _stanzas(path):
    """Split an OBO file into (header lines, [(stanza type, lines)]), lines without newlines."""
    header, stanzas = [], []
    with open_text(path) as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.startswith("[") and line.rstrip().endswith("]"):
                stanzas.append((line.strip()[1:-1], []))
            elif stanzas:
                stanzas[-1][1].append(line)
            else:
                header.append(line)
    return header, stanzas


def _edge_target(line):
    rest = line.split(":", 1)[1].strip() if line.startswith("is_a:") else line.split()[2]
    return rest.split("!")[0].split()[0]


def write_namespaced_obo(src, dst, namespace=None, terms=None):
    """Copy OBO ``src`` (plain or gzip) to ``dst`` with a ``namespace:`` line in every [Term].

    ``namespace`` defaults to the header's ``default-namespace``. ``terms``: optional set of term
    IDs to keep (e.g. an evaluated subtree); ``is_a`` / ``part_of`` lines to terms outside it are
    dropped, so the subtree's root becomes a root for cafaeval (and ``no_orphans`` excludes it).
    Only [Term] stanzas are written (cafaeval reads nothing else). Returns the number of terms written.
    """
    header, stanzas = _stanzas(src)
    if namespace is None:
        namespace = next((h.split(":", 1)[1].strip() for h in header
                          if h.startswith("default-namespace:")), None)
    keep = None if terms is None else set(terms)
    out, n = [], 0
    for kind, lines in stanzas:
        if kind != "Term":
            continue
        tid = next((ln[3:].strip() for ln in lines if ln.startswith("id:")), None)
        if tid is None or (keep is not None and tid not in keep):
            continue
        has_ns = any(ln.startswith("namespace:") for ln in lines)
        if not has_ns and namespace is None:
            raise InputError(src, f"record {tid}: no namespace and no default-namespace in the header",
                             "pass a namespace explicitly")
        body = []
        for ln in lines:
            if keep is not None and ln.startswith(_EDGE_PREFIXES) and _edge_target(ln) not in keep:
                continue
            body.append(ln)
            if ln.startswith("id:") and not has_ns:
                body.append(f"namespace: {namespace}")
        while body and not body[-1].strip():
            body.pop()
        out.append("[Term]\n" + "\n".join(body) + "\n")
        n += 1
    with atomic_write(dst) as fh:
        fh.write("\n".join(h for h in header if h.strip()) + "\n\n" + "\n".join(out))
    return n


def run_cafaeval(obo, gene_ids, term_ids, y_true, y_score, ia=None, no_orphans=False,
                 th_step=0.01, workdir=None):
    """Score (genes x terms) matrices with CAFA-evaluator; returns a dict of its best-F row.

    Writes a namespaced copy of ``obo`` restricted to ``term_ids``, the ground truth (``gene term``
    for each true cell), the predictions (``gene term score`` for each non-NaN cell, exact float
    repr) and, when given, the IA file. Pass max-propagated matrices: cafaeval propagates both again
    (max over is_a/part_of), which is then a no-op. ``no_orphans=True`` leaves out the roots of the
    copy -- the evaluated subtree's root -- like ``exclude`` in :func:`genepheno.metrics.evaluate`.

    Keys: fmax, threshold, precision, recall, coverage (cafaeval's f, tau, pr, rc, cov) and, with
    ``ia``, smin_w / smin_w_threshold (cafaeval's IA-weighted S, minimised over its thresholds).
    """
    try:
        from cafaeval.evaluation import cafa_eval
    except ImportError:
        raise GenephenoError("cafaeval is not installed: pip install cafaeval") from None
    y_true = np.asarray(y_true, dtype=bool)
    y_score = np.asarray(y_score, dtype=float)
    gene_ids, term_ids = list(gene_ids), list(term_ids)
    spaced = [i for i in gene_ids + term_ids if len(str(i).split()) != 1]
    if spaced:
        raise GenephenoError(f"cafaeval splits on whitespace; ID {spaced[0]!r} cannot be written for it")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        write_namespaced_obo(obo, tmp / "ontology.obo", terms=term_ids)
        with open(tmp / "gt.tsv", "w") as fh:
            for g, j in zip(*np.nonzero(y_true)):
                fh.write(f"{gene_ids[g]}\t{term_ids[j]}\n")
        (tmp / "pred").mkdir()
        with open(tmp / "pred" / "predictions.tsv", "w") as fh:
            for g, j in zip(*np.nonzero(~np.isnan(y_score))):
                fh.write(f"{gene_ids[g]}\t{term_ids[j]}\t{float(y_score[g, j])!r}\n")
        ia_file = None
        if ia is not None:
            ia_file = tmp / "ia.tsv"
            with open(ia_file, "w") as fh:
                fh.writelines(f"{t}\t{float(v)!r}\n" for t, v in zip(term_ids, ia))
        with warnings.catch_warnings():  # pandas deprecation noise from inside cafaeval
            warnings.simplefilter("ignore")
            df, best = cafa_eval(str(tmp / "ontology.obo"), str(tmp / "pred"), str(tmp / "gt.tsv"),
                                 ia=None if ia_file is None else str(ia_file), no_orphans=no_orphans,
                                 norm="cafa", prop="max", th_step=th_step, n_cpu=1)
    if df is None or "f" not in best:
        raise GenephenoError("cafaeval evaluated nothing (no predicted gene or term matches the truth)")
    row = best["f"].iloc[0]
    out = dict(fmax=float(row["f"]), threshold=float(row.name[-1]), precision=float(row["pr"]),
               recall=float(row["rc"]), coverage=float(row["cov"]))
    if ia is not None and "s_w" in df.columns:
        k = int(np.argmin(df["s_w"].to_numpy()))
        out.update(smin_w=float(df["s_w"].iloc[k]), smin_w_threshold=float(df.index[k][-1]))
    return out
