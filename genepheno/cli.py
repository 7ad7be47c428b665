"""The ``genepheno`` command line: click wiring only. Every command parses its options, calls
library functions, and reports. Errors a user can fix are printed as one line (exit code 1)."""

import sys

import click

from genepheno import __version__, log
from genepheno.annotations import EVIDENCE_FILTERS, PHENOTYPE_FORMATS
from genepheno.errors import GenephenoError


class _Group(click.Group):
    """Turns GenephenoError into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GenephenoError as e:
            click.echo("genepheno: error: " + " ".join(str(e).split()), err=True)  # always one line
            ctx.exit(e.exit_code)
        except BrokenPipeError:  # e.g. `genepheno predict ... -o - | head`
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("genepheno: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genepheno")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
def main(verbose, quiet):
    """Predict knockout phenotype abnormalities (HPO / MP terms) from gene sequences, explained
    through Gene Ontology concepts (the GenePheno method)."""
    log.setup(-1 if quiet else verbose)


# ---------------------------------------------------------------- datasets
@main.group()
def datasets():
    """Build, list and describe training datasets."""


@datasets.command("list")
def datasets_list():
    """List the bundled datasets (and those under $GENEPHENO_DATASETS)."""
    from genepheno.data import list_datasets
    for name, path in list_datasets().items():
        click.echo(f"{name}\t{path}")


@datasets.command("info")
@click.argument("dataset")
def datasets_info(dataset):
    """Counts of a dataset (NAME or PATH): genes, terms per bin, concepts, pairs, splits."""
    import yaml

    from genepheno.data import load_dataset
    click.echo(yaml.safe_dump(load_dataset(dataset).info(), sort_keys=False).rstrip())


@datasets.command("build")
@click.option("--ontology", required=True, type=click.Path(dir_okay=False), help="Phenotype ontology .obo(.gz): hp.obo or mp.obo.")
@click.option("--annotations", required=True, type=click.Path(dir_okay=False), help="Gene->phenotype file (HPO/MGI formats).")
@click.option("--annotation-format", type=click.Choice(PHENOTYPE_FORMATS), help="Format of --annotations (default: detected).")
@click.option("--sequences", required=True, type=click.Path(dir_okay=False), help="Protein FASTA (UniProt headers or bare accessions).")
@click.option("--id-map", type=click.Path(dir_okay=False), help="Gene ID -> sequence accession table (e.g. Entrez -> UniProt).")
@click.option("--gene-symbols", type=click.Path(dir_okay=False), help="Gene ID -> symbol table (for genes whose file lacks symbols).")
@click.option("--go-ontology", type=click.Path(dir_okay=False), help="GO .obo matching --go-annotations.")
@click.option("--go-annotations", type=click.Path(dir_okay=False), help="GO annotations: GAF 2.x or gene2go-style TSV.")
@click.option("--go-evidence", type=click.Choice(EVIDENCE_FILTERS), default="all", show_default=True,
              help="GO evidence filter: experimental = experimental codes + TAS/IC.")
@click.option("--subtree-root", help="Restrict labels below this term (default HP:0000118 / MP:0000001).")
@click.option("--min-genes", type=int, default=11, show_default=True, help="Keep terms annotating at least this many genes.")
@click.option("--min-concept-genes", type=int, default=10, show_default=True, help="Keep GO concepts annotating at least this many genes.")
@click.option("--split", "fractions", default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--test-genes", type=click.Path(dir_okay=False), help="File of gene IDs that form the test split exactly.")
@click.option("--exclusive-pairs", type=click.Path(dir_okay=False), help="Use this pair TSV (term_a, term_b) instead of mining pairs.")
@click.option("--max-unknown-fraction", type=float, default=0.05, show_default=True,
              help="Fail when more annotation rows than this use term IDs unknown to the ontology.")
@click.option("--description", default="", help="Free text stored in manifest.yaml.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Dataset folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def datasets_build(fractions, **kw):
    """Build a dataset folder from an ontology, a gene->phenotype file, GO files and sequences."""
    from genepheno.data.build import BuildOptions, build_dataset
    try:
        kw["fractions"] = tuple(float(x) for x in fractions.split(","))
    except ValueError:
        raise click.BadParameter(f"{fractions!r} is not three comma-separated numbers", param_hint="--split") from None
    build_dataset(BuildOptions(**kw))


# ---------------------------------------------------------------- fetch (sequences)
@main.command(epilog="Exit codes: 0 all resolved; 1 error (nothing written); 2 usage error; "
              "3 some IDs not found or ambiguous; 4 some IDs failed because a source could not answer.")
@click.argument("ids", nargs=-1)
@click.option("-i", "--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="File of IDs, one per line or first column ('-' = stdin).")
@click.option("--column", help="Column of --input holding the IDs: 1-based number or header name.")
@click.option("--id-type", type=click.Choice(["symbol", "entrez", "ensembl", "uniprot", "mgi"]),
              help="Force one ID type instead of detecting each ID's type.")
@click.option("--organism", help="human, mouse or an NCBI taxon ID, for symbols (default human).")
@click.option("--source", default="uniprot", show_default=True, help="uniprot, ensembl, ncbi or fasta:PATH.")
@click.option("--molecule", type=click.Choice(["protein", "dna"]), default="protein", show_default=True,
              help="dna = coding sequence of the canonical transcript (ensembl only).")
@click.option("--id-map", type=click.Path(dir_okay=False), help="ID->UniProt accession table for fasta:PATH.")
@click.option("-o", "--output", default="-", show_default=True, help="FASTA to write ('-' = stdout).")
@click.option("--manifest", help="Manifest TSV [default: <output stem>.manifest.tsv].")
@click.option("--missing", help="Unresolved IDs TSV [default: <output stem>.missing.tsv].")
@click.option("--email", envvar="GENEPHENO_EMAIL", help="Contact e-mail for the User-Agent and NCBI.")
@click.option("--api-key", envvar="NCBI_API_KEY", help="NCBI API key (10 requests/s instead of 3).")
@click.option("--uniprot-url", envvar="GENEPHENO_UNIPROT_URL", help="UniProt REST base URL (mirror, test).")
@click.option("--ensembl-url", envvar="GENEPHENO_ENSEMBL_URL", help="Ensembl REST base URL.")
@click.option("--ncbi-url", envvar="GENEPHENO_NCBI_URL", help="NCBI E-utilities base URL.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Response cache [default: ~/.cache/genepheno/fetch].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--offline", is_flag=True, help="Answer from the cache only; no network.")
@click.option("--refresh", is_flag=True, help="Ignore cached answers (and replace them).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per request.")
@click.option("--retries", type=int, default=4, show_default=True, help="Retries on 429/5xx/network errors.")
@click.option("--backoff", type=float, default=1.0, show_default=True, help="First retry delay in seconds (doubles).")
def fetch(**kw):
    """Fetch one canonical sequence per gene (symbols, Entrez, Ensembl, UniProt or MGI IDs) as FASTA."""
    from genepheno.sequences.fetch import run_fetch
    click.get_current_context().exit(run_fetch(**kw))


# ---------------------------------------------------------------- embed
class _EmbedGroup(_Group):
    """`genepheno embed FASTA ...` runs the `fasta` subcommand; `genepheno embed merge ...` merges."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["fasta", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_EmbedGroup)
def embed():
    """Embed protein sequences into a store: `genepheno embed FASTA -o STORE [options]`
    (ESM-2 or the weight-free kmer encoder); `genepheno embed merge -o OUT STORE...` joins shards."""


@embed.command("fasta")
@click.argument("fasta", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", "store", required=True, type=click.Path(dir_okay=False),
              help="Store to create or extend (SQLite); sequences already in it are skipped.")
@click.option("--model", default=None, show_default="esm2_t33_650M_UR50D",
              help="kmer (weight-free, offline) or an ESM-2 name, e.g. esm2_t6_8M_UR50D.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Local ESM-2 checkpoint in fair-esm's released layout.")
@click.option("--layer", type=int, help="Representation layer (default: last; negative counts from the end).")
@click.option("--dtype", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--toks-per-batch", type=click.IntRange(min=1), help="Token budget per batch [CPU 4096, CUDA 16384].")
@click.option("--shard", metavar="K/N", help="Embed only slice K of N (by sequence hash; K = 1..N).")
def embed_fasta_cmd(fasta, store, model, weights, layer, dtype, device, toks_per_batch, shard):
    """Embed the records of FASTA into STORE (resumable; IDs and sequence hashes are keys)."""
    from genepheno import embed as E
    enc = E.load_encoder(model, weights=weights, layer=layer, device=device, dtype=dtype)
    E.embed_fasta(fasta, store, enc, shard=E.parse_shard(shard), toks_per_batch=toks_per_batch)


@embed.command("merge")
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="Merged store.")
@click.argument("stores", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def embed_merge_cmd(out, stores):
    """Join stores (e.g. shards) made with the same model, layer, pooling and dimension."""
    from genepheno import embed as E
    s = E.merge_stores(out, stores)
    log.logger.info("merged %d store(s) into %s: %d records, %d distinct sequences",
                    s["inputs"], out, s["records"], s["vectors"])


# ---------------------------------------------------------------- train / predict / explain
@main.command()
@click.option("--dataset", required=True, help="Dataset NAME (see `datasets list`) or PATH.")
@click.option("--embeddings", required=True, type=click.Path(dir_okay=False), help="Embeddings store of the dataset's genes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Training YAML (see configs/genepheno.yaml).")
@click.option("--seed", type=int, help="Override the config's seed.")
@click.option("--device", help="Override the config's device: auto, cpu, cuda, cuda:N.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Model folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
def train(dataset, embeddings, config_path, seed, device, output, force):
    """Train GenePheno on a dataset's train split (early stopping on its val split)."""
    from genepheno.model.config import load_config
    from genepheno.model.train import train_model
    config = load_config(config_path)
    config.seed = config.seed if seed is None else seed
    config.device = device or config.device
    train_model(dataset, embeddings, config, output, force)


def _prediction_options(f):
    for opt in reversed([
        click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False), help="Model folder from `genepheno train`."),
        click.option("--embeddings", required=True, type=click.Path(allow_dash=True),
                     help="Embeddings store, or a FASTA (.fa/.fasta[.gz]) embedded with the model's encoder."),
        click.option("--go-annotations", type=click.Path(dir_okay=False), help="TSV gene_id, go_id: GO input for the GO branch."),
        click.option("--dataset", help="Use this dataset's genes, symbols and GO annotations."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
    ]):
        f = opt(f)
    return f


@main.command()
@_prediction_options
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), help="With --dataset: only this split.")
@click.option("--min-score", type=float, default=0.0, show_default=True, help="Write only scores >= this.")
@click.option("--top-k", type=int, help="Write at most this many terms per gene.")
@click.option("--top-concepts", type=int, default=3, show_default=True, help="GO concepts listed per prediction (0: none).")
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True), help="predictions.tsv (.gz honoured, - for stdout).")
def predict(model_dir, embeddings, go_annotations, dataset, split, device, min_score, top_k, top_concepts, output):
    """Predict phenotype terms, with the GO concepts behind each score."""
    from genepheno.predict import run_predict
    run_predict(model_dir, embeddings, output, go_annotations, dataset, split, None, min_score, top_k, top_concepts, device)


@main.command()
@_prediction_options
@click.option("--gene", required=True, help="Gene ID to explain.")
@click.option("--term", help="Explain this term only (default: the gene's top-scored terms).")
@click.option("--top-terms", type=int, default=5, show_default=True)
@click.option("--top-concepts", type=int, default=5, show_default=True)
@click.option("--min-depth", type=int, default=0, show_default=True,
              help="Without --term: only terms at least this many levels below the top (more specific).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw a phenotypes x concepts heatmap (PNG).")
def explain(model_dir, embeddings, go_annotations, dataset, device, gene, term, top_terms, top_concepts,
            min_depth, plot):
    """Show which GO concepts drive a gene's predictions (contribution = weight x activation)."""
    from genepheno.predict import explain_gene
    for row in explain_gene(model_dir, embeddings, gene, term, go_annotations, dataset, top_terms, top_concepts, plot,
                            device, min_depth):
        click.echo("\t".join(row))


# ---------------------------------------------------------------- evaluate / baseline / run
@main.command()
@click.argument("name", type=click.Choice(["naive", "blast", "kmer-lr", "go-mlp"]))
@click.option("--dataset", required=True, help="Dataset NAME (see `datasets list`) or PATH.")
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="test", show_default=True,
              help="Genes to predict (training always uses the train split; val tunes kmer-lr / go-mlp).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="CPU threads (torch, blastp).")
@click.option("--blast-mode", type=click.Choice(["weighted", "max"]), default="weighted", show_default=True,
              help="blast: w-BLAST (bitscore-weighted) or max-BLAST (best identity).")
@click.option("--min-score", type=float, default=0.0, show_default=True, help="Write only scores >= this.")
@click.option("-o", "--output", required=True, type=click.Path(allow_dash=True), help="predictions.tsv (.gz honoured, - for stdout).")
def baseline(name, dataset, split, seed, threads, blast_mode, min_score, output):
    """Predict a split with a baseline: naive, blast (w-/max-BLAST), kmer-lr or go-mlp."""
    from genepheno.baselines import run_baseline, write_baseline
    from genepheno.data import load_dataset
    ds = load_dataset(dataset)
    scores = run_baseline(name, ds, split, seed=seed, threads=threads, blast_mode=blast_mode)
    write_baseline(output, ds, split, scores, min_score=min_score)


@main.command("evaluate")
@click.option("--predictions", "-p", required=True, multiple=True, type=click.Path(allow_dash=True),
              help="Predictions file (gene_id, term_id, score TSV); repeat for a side-by-side table.")
@click.option("--name", "names", multiple=True, help="Method name per --predictions, in order [default: file stem].")
@click.option("--dataset", required=True, help="Dataset NAME or PATH holding the true labels.")
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="test", show_default=True)
@click.option("--title", help="Report title.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for metrics.tsv, report.md and PNG plots (created; files replaced).")
def evaluate_cmd(predictions, names, dataset, split, title, output):
    """Score predictions: Fmax, AUC, AUPR, Smin overall and per term-frequency bin, with plots."""
    from genepheno.evaluate import run_evaluate
    run_evaluate(predictions, dataset, split, output, list(names) or None, title)



@main.command("run")
@click.option("--dataset", default="hpo-human", show_default=True, help="Dataset NAME or PATH.")
@click.option("-o", "--output", default="results", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--config", type=click.Path(dir_okay=False), help="Training YAML (default: built-in defaults).")
@click.option("--model", "encoder", default="auto", show_default=True,
              help="Encoder: auto (ESM-2 if its weights are on disk, else kmer), kmer, or an ESM-2 name.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Local ESM-2 checkpoint (released layout).")
@click.option("--baselines", default="naive,blast,kmer-lr,go-mlp", show_default=True, help="Comma-separated baselines ('' for none).")
@click.option("--seed", type=int, help="Override the config's seed.")
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def run_cmd(dataset, output, config, encoder, weights, baselines, seed, threads, device):
    """The main job: embed, train GenePheno, run the baselines, predict the test split, evaluate,
    and write OUTPUT/report.md (offline)."""
    from genepheno.run import run_pipeline
    run_pipeline(dataset, output, config, encoder, weights, tuple(b for b in baselines.split(",") if b),
                 seed, threads, device)


if __name__ == "__main__":
    main()
