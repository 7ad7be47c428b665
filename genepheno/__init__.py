"""genepheno: predict knockout phenotype abnormalities from gene sequences (GenePheno)."""

__version__ = "0.1.0"
