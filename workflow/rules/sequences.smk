# Sequences -> embeddings: fetch (query genes only), embed scattered over N shards, merge.


def fetch_inputs(wildcards):
    q = config["query"]
    files = {"ids": q["ids"]}
    if q["source"].startswith("fasta:"):
        files["source_fasta"] = q["source"][len("fasta:"):]  # a local FASTA is an input: edits rerun fetch
    return files


rule fetch:
    """Query gene IDs -> one canonical protein per gene (record ID = the gene ID)."""
    input:
        unpack(fetch_inputs),
    output:
        fasta=f"{RES}/fetch/query.fasta",
        manifest=f"{RES}/fetch/query.manifest.tsv",
        missing=f"{RES}/fetch/query.missing.tsv",
    log:
        f"{LOGS}/fetch.log",
    params:
        source=config["query"]["source"],
        organism=config["query"]["organism"],
        allow_missing="yes" if str(config["query"]["allow_missing"]).lower() == "true" else "no",
        options=config["query"]["options"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    # exit 3 = some IDs not found or ambiguous (listed in the missing TSV): tolerated when
    # query.allow_missing is true; any other non-zero exit fails the job.
    shell:
        "genepheno fetch -i {input.ids:q} --source {params.source:q} --organism {params.organism:q}"
        " -o {output.fasta:q} --manifest {output.manifest:q} --missing {output.missing:q} {params.options}"
        " 2> {log:q}"
        " || {{ rc=$?; [ $rc -eq 3 ] && [ {params.allow_missing} = yes ] || exit $rc;"
        " echo 'workflow: fetch exit 3 tolerated (query.allow_missing): see {output.missing}' >> {log:q}; }}"


def embed_source(wildcards):
    # the dataset's folder (its sequences.fasta.gz; a folder because it may be a rule's directory output)
    return DATASET if wildcards.set == "dataset" else f"{RES}/fetch/query.fasta"


def embed_fasta(wildcards, input):
    return os.path.join(input.src, "sequences.fasta.gz") if wildcards.set == "dataset" else input.src


rule embed_shard:
    """Slice K of N of a FASTA (by sequence hash) -> one embeddings store. GPU: see the profiles."""
    input:
        src=embed_source,
    output:
        f"{RES}/embeddings/{{set}}/shard-{{k}}-of-{{n}}.sqlite",
    log:
        f"{LOGS}/embed/{{set}}.shard-{{k}}-of-{{n}}.log",
    params:
        fasta=embed_fasta,
        model=config["embed"]["model"],
        device=config["embed"]["device"],
        options=config["embed"]["options"],
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "genepheno embed fasta {params.fasta:q} -o {output:q} --model {params.model:q} --device {params.device:q}"
        " --shard {wildcards.k}/{wildcards.n} {params.options} 2> {log:q}"


rule embed_merge:
    """Gather the N shard stores into one (refuses stores from different encoders)."""
    input:
        lambda wc: expand(f"{RES}/embeddings/{wc.set}/shard-{{k}}-of-{N_SHARDS}.sqlite", k=range(1, N_SHARDS + 1)),
    output:
        f"{RES}/embeddings/{{set}}.sqlite",
    log:
        f"{LOGS}/embed_merge/{{set}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "genepheno embed merge -o {output:q} {input:q} 2> {log:q}"
