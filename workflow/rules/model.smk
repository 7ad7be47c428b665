# Dataset -> model -> predictions -> evaluation.


def build_args(wildcards, input):
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(v)}" for k, v in input.items())


rule dataset_build:
    """Source files named in config dataset.build -> a dataset folder (only used when they are set)."""
    input:
        unpack(lambda wc: BUILD_FILES),
    output:
        directory(f"{RES}/dataset"),
    log:
        f"{LOGS}/dataset_build.log",
    params:
        args=build_args,
        options=BUILD.get("options", ""),
    threads: 1
    resources:
        mem_mb=16000,
        runtime=120,
    shell:
        "genepheno datasets build {params.args} {params.options} -o {output:q} 2> {log:q}"


def train_inputs(wildcards):
    files = {"dataset": DATASET, "embeddings": f"{RES}/embeddings/dataset.sqlite"}
    if config["train"]["config"]:
        files["config"] = config["train"]["config"]
    return files


rule train:
    """Dataset + its genes' embeddings -> a model folder (weights.safetensors, model.yaml)."""
    input:
        unpack(train_inputs),
    output:
        directory(f"{RES}/model"),
    log:
        f"{LOGS}/train.log",
    params:
        config=lambda wc, input: f"--config {shlex.quote(input.config)}" if "config" in input.keys() else "",
        options=config["train"]["options"],
    threads: 4
    resources:
        mem_mb=16000,
        runtime=480,
    shell:
        "genepheno train --dataset {input.dataset:q} --embeddings {input.embeddings:q} {params.config}"
        " {params.options} -o {output:q} 2> {log:q}"


rule predict_test:
    """The model's scores for the dataset's test genes (with their GO annotations)."""
    input:
        model=f"{RES}/model",
        embeddings=f"{RES}/embeddings/dataset.sqlite",
        dataset=DATASET,
    output:
        f"{RES}/predictions/test.tsv",
    log:
        f"{LOGS}/predict_test.log",
    params:
        options=config["predict"]["options"],
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "genepheno predict --model {input.model:q} --embeddings {input.embeddings:q} --dataset {input.dataset:q}"
        " --split test {params.options} -o {output:q} 2> {log:q}"


rule predict_query:
    """The model's scores for the fetched query genes (sequence only: no GO input)."""
    input:
        model=f"{RES}/model",
        embeddings=f"{RES}/embeddings/query.sqlite",
    output:
        f"{RES}/predictions/query.tsv",
    log:
        f"{LOGS}/predict_query.log",
    params:
        options=config["predict"]["options"],
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "genepheno predict --model {input.model:q} --embeddings {input.embeddings:q} {params.options}"
        " -o {output:q} 2> {log:q}"


rule evaluate:
    """Test-split predictions vs the dataset's labels -> metrics.tsv, report.md and plots."""
    input:
        predictions=f"{RES}/predictions/test.tsv",
        dataset=DATASET,
    output:
        metrics=f"{RES}/evaluation/metrics.tsv",
        report=f"{RES}/evaluation/report.md",
    log:
        f"{LOGS}/evaluate.log",
    params:
        outdir=f"{RES}/evaluation",
        name=config["evaluate"]["name"],
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "genepheno evaluate -p {input.predictions:q} --name {params.name:q} --dataset {input.dataset:q}"
        " --split test -o {params.outdir:q} 2> {log:q}"
