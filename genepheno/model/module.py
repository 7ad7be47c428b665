"""GenePheno network: sequence embedding (+ optional GO-term set) -> MLP -> GO-concept bottleneck
-> phenotype logits. Pure ``nn.Module``; no I/O.

The phenotype layer reads the bottleneck only, through one linear map, so for every gene
``logit_j = sum_i W[j, i] * g_i + b_j`` exactly, where ``g = sigmoid(concept logits)``; the
contribution of concept i to phenotype j is ``W[j, i] * g_i`` (see ``attributions``).
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Output:
    concept_logits: torch.Tensor  # (B, n_concepts)
    concepts: torch.Tensor        # (B, n_concepts), sigmoid of the above: the bottleneck
    logits: torch.Tensor          # (B, n_terms)


class GOSetEncoder(nn.Module):
    """A learned vector per GO term; a gene's set is pooled by attention with the sequence
    vector as the query, concatenated with the plain sum (the paper concatenates an attention
    pooling and a mean pooling; the sum keeps how many terms a gene has, which a multi-hot input
    layer would see too). Empty sets pool to zeros."""

    def __init__(self, n_go, dim, query_dim):
        super().__init__()
        self.embed = nn.Embedding(n_go + 1, dim, padding_idx=n_go)  # last row = padding
        self.query = nn.Linear(query_dim, dim) if query_dim else None
        self.default_query = nn.Parameter(torch.zeros(dim))
        self.dim = dim

    def forward(self, go_idx, query=None):
        mask = go_idx != self.embed.padding_idx                        # (B, L)
        e = self.embed(go_idx)                                         # (B, L, d)
        total = (e * mask.unsqueeze(-1)).sum(1)
        q = self.query(query) if (self.query is not None and query is not None) else self.default_query.expand(len(e), -1)
        att = (e @ q.unsqueeze(-1)).squeeze(-1) / self.dim ** 0.5
        att = att.masked_fill(~mask, float("-inf"))
        w = torch.softmax(att, dim=1).nan_to_num(0.0)                  # all-padding rows -> zeros
        pooled = (w.unsqueeze(-1) * e).sum(1)
        return torch.cat([pooled, total], dim=1), mask.any(1, keepdim=True).float()


class GenePhenoNet(nn.Module):
    def __init__(self, seq_dim, n_go, n_concepts, n_terms, hidden_dim=512, go_dim=128, dropout=0.3,
                 use_sequence=True, use_go=True, hidden_layers=2):
        super().__init__()
        if not (use_sequence or use_go):
            raise ValueError("the network needs sequence input, GO input, or both")
        self.use_sequence, self.use_go = use_sequence, use_go and n_go > 0
        # Input standardisation, set from the training genes (saved with the weights).
        self.register_buffer("seq_mean", torch.zeros(seq_dim))
        self.register_buffer("seq_std", torch.ones(seq_dim))
        in_dim = seq_dim if use_sequence else 0
        if self.use_go:
            self.go = GOSetEncoder(n_go, go_dim, seq_dim if use_sequence else 0)
            in_dim += 2 * go_dim + 1                                   # attention + sum + has-GO flag
        layers = []
        for k in range(hidden_layers):
            layers += [nn.Linear(in_dim if k == 0 else hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.GELU(),
                       nn.Dropout(dropout)]
        self.trunk = nn.Sequential(*layers)
        self.concept_head = nn.Linear(hidden_dim, n_concepts)
        self.phenotype = nn.Linear(n_concepts, n_terms)                # reads the bottleneck only

    def forward(self, x_seq, go_idx=None):
        x = (x_seq - self.seq_mean) / self.seq_std
        parts = [x] if self.use_sequence else []
        if self.use_go:
            if go_idx is None:
                go_idx = torch.full((len(x), 1), self.go.embed.padding_idx, dtype=torch.long, device=x.device)
            pooled, has_go = self.go(go_idx, x if self.use_sequence else None)
            parts += [pooled, has_go]
        h = self.trunk(torch.cat(parts, dim=1))
        c = self.concept_head(h)
        g = torch.sigmoid(c)
        return Output(c, g, self.phenotype(g))

    def attributions(self, concepts, terms=None):
        """Contributions W[j, i] * g_i, shape (B, n_terms or len(terms), n_concepts); summed over
        concepts they equal logit - bias exactly."""
        W = self.phenotype.weight if terms is None else self.phenotype.weight[terms]
        return concepts.unsqueeze(1) * W.unsqueeze(0)
