"""The model folder written by `genepheno train` and read by `predict` / `explain`:

- ``weights.safetensors``: the network's tensors (no pickle);
- ``go_concepts.tsv.gz``: GO term -> concepts it reaches (from the dataset), so the GO annotations
  of new genes become the same kind of GO input the model was trained on;
- ``model.yaml``: the training config, network sizes, the embedding it expects (encoder name,
  layer, pooling, dimension), the vocabularies (phenotype terms with names and parents, GO
  concepts, GO input terms), the dataset's name and manifest SHA-256, the calibration, the
  training summary and history, and the package version.
"""

from pathlib import Path

import yaml
from safetensors.torch import load_file, save_file

from genepheno import __version__
from genepheno.errors import InputError
from genepheno.io import atomic_dir, read_tsv, sha256_file, write_tsv
from genepheno.model.config import config_from_dict
from genepheno.model.train import build_network

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class Model:
    """A loaded model folder: the network plus everything needed to use it."""

    def __init__(self, net, meta, path=None):
        self.net, self.meta, self.path = net, meta, path
        self.config = config_from_dict(meta["config"], where=f"{path}/model.yaml")
        self.term_ids = [t["id"] for t in meta["terms"]]
        self.term_names = [t["name"] for t in meta["terms"]]
        index = {t: i for i, t in enumerate(self.term_ids)}
        self.term_parents = [[index[p] for p in t["parents"]] for t in meta["terms"]]
        self.concept_ids = [c["id"] for c in meta["concepts"]]
        self.concept_names = [c["name"] for c in meta["concepts"]]
        self.go_vocab = meta["go_vocab"]
        self.embedding = meta["embedding"]
        self._go_concepts = None

    def term_depth(self):
        """Levels below the top of the kept hierarchy (terms without kept parents are 0)."""
        if getattr(self, "_depth", None) is None:
            from genepheno.predictions import topological_order
            depth = [0] * len(self.term_ids)
            for j in reversed(topological_order(self.term_parents)):  # parents first
                depth[j] = max((depth[p] + 1 for p in self.term_parents[j]), default=0)
            self._depth = depth
        return self._depth

    def go_tokens(self, go_ids):
        """GO input for a gene annotated with ``go_ids``: the terms plus the concepts they reach."""
        if self._go_concepts is None:
            self._go_concepts = {}
            path = None if self.path is None else Path(self.path) / "go_concepts.tsv.gz"
            if path is not None and path.exists():
                for r in read_tsv(path, required=("go_id", "concept_id")):
                    self._go_concepts.setdefault(r["go_id"], []).append(r["concept_id"])
        extra = [c for t in go_ids for c in self._go_concepts.get(t, ())]
        return list(dict.fromkeys(list(go_ids) + extra))

    def check_embedding(self, spec, where="embeddings"):
        """Refuse embeddings made by another encoder, version, layer, pooling, weights or of another
        dimension (the compute dtype may differ)."""
        from genepheno.embed import spec_mismatch
        spec = spec.get("spec", spec)  # a store's meta nests the encoder's full spec
        diff = spec_mismatch(self.embedding, spec, ignore=("dtype",))
        if diff:
            want = self.embedding
            raise InputError(where, f"embeddings do not match the model ({diff}; model first)",
                             f"embed with `genepheno embed --model {want.get('model')}`"
                             + (f" --layer {want['layer']}" if want.get("layer") is not None else ""))


def save_model(path, net, config, embedding, dataset, inputs, history, summary, force=False):
    meta = {
        "genepheno_version": __version__,
        "method": "GenePheno",
        "config": config.to_dict(),
        "network": {"seq_dim": int(inputs.X.shape[1]), "n_go": len(inputs.go_vocab),
                    "n_concepts": len(dataset.concept_ids), "n_terms": len(dataset.term_ids)},
        "embedding": dict(embedding.get("spec", embedding)),
        "dataset": {"name": dataset.name, "path": str(dataset.path),
                    "manifest_sha256": sha256_file(Path(dataset.path) / "manifest.yaml"),
                    "ontology": dataset.manifest.get("ontology", {}).get("version")},
        "summary": summary,
        "history": [{k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
        "terms": [{"id": t, "name": n, "parents": [dataset.term_ids[p] for p in ps]}
                  for t, n, ps in zip(dataset.term_ids, dataset.term_names, dataset.term_parents)],
        "concepts": [{"id": c, "name": n, "namespace": ns}
                     for c, n, ns in zip(dataset.concept_ids, dataset.concept_names, dataset.concept_namespaces)],
        "go_vocab": list(inputs.go_vocab),
    }
    with atomic_dir(path, overwrite=force) as tmp:
        write_tsv(tmp / "go_concepts.tsv.gz", ("go_id", "concept_id"),
                  ((t, c) for t, cs in dataset.go_concept_map().items() for c in cs))
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                  str(tmp / "weights.safetensors"), metadata={"format": "genepheno", "version": __version__})
        with open(tmp / "model.yaml", "w", encoding="utf-8") as fh:
            yaml.dump(meta, fh, Dumper=SafeDumper, sort_keys=False, allow_unicode=True, width=1000)
    return meta


def load_model(path):
    path = Path(path)
    for f in ("model.yaml", "weights.safetensors"):
        if not (path / f).exists():
            raise InputError(path, f"is not a genepheno model folder (missing {f})", "train one with `genepheno train`")
    with open(path / "model.yaml", encoding="utf-8") as fh:
        meta = yaml.load(fh, Loader=SafeLoader)
    try:
        config = config_from_dict(meta["config"], where=f"{path}/model.yaml")
        n = meta["network"]
        net = build_network(config, n["seq_dim"], n["n_go"], n["n_concepts"], n["n_terms"])
        net.load_state_dict(load_file(str(path / "weights.safetensors")), strict=True)
    except (KeyError, RuntimeError, TypeError) as e:
        raise InputError(path, f"model folder is damaged or from an incompatible version ({type(e).__name__}: {e})") from None
    net.eval()
    return Model(net, meta, path)

