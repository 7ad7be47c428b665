"""genepheno: predict knockout phenotype abnormalities from gene sequences (GenePheno)."""

import os

__version__ = "0.1.0"

# OpenMP threads that spin while waiting make small torch operations ~10-30x slower when the
# cores are shared (busy workstations, HPC nodes); must be set before torch starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
