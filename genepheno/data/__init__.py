"""Datasets: building a training dataset from published files, and loading bundled or built ones."""

from genepheno.data.dataset import Dataset, list_datasets, load_dataset, resolve_dataset  # noqa: F401
