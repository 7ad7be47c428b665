"""Training configuration: every hyperparameter, its default and meaning. A YAML file may set any
subset; an unknown key or a value of the wrong type is an error naming the key."""

import dataclasses
import difflib
from dataclasses import dataclass, fields

import yaml

from genepheno.errors import InputError


@dataclass
class TrainConfig:
    seed: int = 0                    # seeds torch, numpy and the batch order
    epochs: int = 60                 # upper bound; early stopping usually ends sooner
    patience: int = 8                # epochs without a better validation Fmax before stopping
    batch_size: int = 128
    lr: float = 1.0e-3               # AdamW
    weight_decay: float = 1.0e-4
    hidden_dim: int = 512
    hidden_layers: int = 1           # MLP layers between the inputs and the concept bottleneck
    dropout: float = 0.5
    go_dim: int = 256                # size of each GO term's learned vector
    min_go_genes: int = 2            # GO input vocabulary: fine terms on >= this many training genes
    go_dropout: float = 0.1          # chance of hiding a gene's whole GO input during training
    go_term_dropout: float = 0.1     # chance of hiding each GO term during training
    loss: str = "contrastive"        # contrastive | bce (the "w/o contrastive loss" ablation)
    tau: float = 1.0                 # temperature of the contrastive loss
    anchor: bool = True              # zero-logit anchor in the contrastive loss (calibrated threshold)
    lambda_exclusive: float = 0.1    # weight of the exclusive-pair penalty (0 = ablation)
    lambda_concept: float = 0.5      # weight of the GO-concept bottleneck loss (0 = ablation)
    use_sequence: bool = True        # False = "w/o sequence input" ablation
    use_go: bool = True              # False = "w/o GO input" ablation
    calibrate: bool = True           # fit logit scale/shift on validation genes after training
    threads: int = 0                 # CPU threads for torch (0 = torch's default)
    device: str = "auto"             # auto | cpu | cuda | cuda:N

    def check(self, where="config"):
        if self.loss not in ("contrastive", "bce"):
            raise InputError(where, f"loss: {self.loss!r} must be 'contrastive' or 'bce'")
        if not (self.use_sequence or self.use_go):
            raise InputError(where, "use_sequence and use_go cannot both be false")
        for name in ("epochs", "batch_size", "hidden_dim", "hidden_layers", "go_dim"):
            if getattr(self, name) < 1:
                raise InputError(where, f"{name}: must be at least 1")
        for name in ("dropout", "go_dropout", "go_term_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise InputError(where, f"{name}: must be in [0, 1)")
        if self.tau <= 0:
            raise InputError(where, "tau: must be positive")
        return self

    def to_dict(self):
        return dataclasses.asdict(self)


def config_from_dict(data, where="config"):
    known = {f.name: f for f in fields(TrainConfig)}
    values = {}
    for key, value in (data or {}).items():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise InputError(where, f"unknown key {key!r}", hint)
        want = known[key].type
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise InputError(where, f"{key}: {value!r} is not a {want.__name__}")
        values[key] = value
    return TrainConfig(**values).check(where)


def load_config(path=None):
    """TrainConfig from a YAML file (or the defaults when ``path`` is None)."""
    if path is None:
        return TrainConfig().check()
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise InputError(where, f"is not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is not None and not isinstance(data, dict):
        raise InputError(path, "must be a YAML mapping of key: value")
    return config_from_dict(data, where=str(path))
