"""Losses of GenePheno. All take logits ``s`` (B, C) and 0/1 targets (B, C).

Contrastive multi-label loss (sign-consistent form of the paper's Eq. 1-3, see DESIGN.md), per
gene with positives P, negatives N and a = s / tau::

    L = sum_{i in P} [LSE({a_i} U {a_j: j in N}) - a_i] + sum_{j in N} [LSE({-a_j} U {-a_i: i in P}) + a_j]

Every bracket is >= 0, so L >= 0, and L falls as positives rise above negatives. This form is
translation invariant (only the ranking inside a gene matters), so scores would have no absolute
threshold. With ``anchor=True`` a zero logit joins both sets — positives must also beat 0 and
negatives stay below it — which is ZLPR's threshold at tau = 1 (Su et al. 2022). Each gene's
sum is divided by its number of labels and genes are averaged, so the loss scale does not grow
with the vocabulary; rows with ``weight`` 0 (e.g. genes without GO for the concept loss) are
ignored. Computed in O(C) per gene with one log-sum-exp over N and one over P.
"""

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")


def _masked_lse(x, mask):
    return torch.logsumexp(x.masked_fill(~mask, NEG_INF), dim=1, keepdim=True)


def contrastive_mlc_loss(logits, targets, tau=1.0, anchor=True, weight=None):
    a = logits / tau
    pos = targets.bool()
    neg = ~pos
    lse_neg = _masked_lse(a, neg)                     # LSE over negatives of a_j      (B, 1)
    lse_pos = _masked_lse(-a, pos)                    # LSE over positives of -a_i     (B, 1)
    if anchor:
        zero = torch.zeros_like(lse_neg)
        lse_neg = torch.logaddexp(lse_neg, zero)
        lse_pos = torch.logaddexp(lse_pos, zero)
    pos_terms = torch.logaddexp(a, lse_neg) - a       # for i in P
    neg_terms = torch.logaddexp(-a, lse_pos) + a      # for j in N
    per_gene = torch.where(pos, pos_terms, neg_terms).sum(1) / a.shape[1]
    return _mean(per_gene, weight)


def bce_loss(logits, targets, weight=None):
    per_gene = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none").mean(1)
    return _mean(per_gene, weight)


def exclusive_loss(logits, pairs):
    """Mean over genes and pairs (i, j) of softplus(s_i + s_j) (paper Eq. 4): it is small only
    when at least one logit of each exclusive pair is negative."""
    if pairs is None or len(pairs) == 0:
        return logits.new_zeros(())
    return F.softplus(logits[:, pairs[:, 0]] + logits[:, pairs[:, 1]]).mean()


def _mean(per_gene, weight):
    if weight is None:
        return per_gene.mean()
    w = weight.float()
    return (per_gene * w).sum() / w.sum().clamp(min=1.0)
