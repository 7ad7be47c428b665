import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import FIXTURES
from genepheno.errors import GenephenoError, InputError
from genepheno.model import losses
from genepheno.model.checkpoint import load_model, save_model
from genepheno.model.config import TrainConfig, config_from_dict, load_config
from genepheno.model.module import GenePhenoNet
from genepheno.model.train import Inputs, fit, prepare_inputs
from genepheno.predict import explain_rows, predict


def reference_mlc(s, y, tau=1.0, anchor=False):
    """The loss written out term by term (DESIGN.md), for one gene."""
    a = [v / tau for v in s]
    P = [i for i in range(len(s)) if y[i]]
    N = [j for j in range(len(s)) if not y[j]]
    extra = [0.0] if anchor else []
    lse = lambda xs: float(np.log(np.sum(np.exp(xs))))  # noqa: E731
    total = sum(lse([a[i]] + [a[j] for j in N] + extra) - a[i] for i in P)
    total += sum(lse([-a[j]] + [-a[i] for i in P] + extra) + a[j] for j in N)
    return total / len(s)


@pytest.mark.parametrize("anchor", [False, True])
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_contrastive_loss_matches_definition(anchor, tau):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 7, generator=g) * 3
    y = torch.rand(4, 7, generator=g) < 0.4
    y[0] = False                       # a gene without positives
    y[1] = True                        # a gene without negatives
    got = losses.contrastive_mlc_loss(s, y, tau, anchor)
    want = np.mean([reference_mlc(s[k].tolist(), y[k].tolist(), tau, anchor) for k in range(4)])
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_contrastive_loss_bounded_below_and_falls_as_positives_rise():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(16, 50, generator=g)
    y = torch.rand(16, 50, generator=g) < 0.2
    values = [losses.contrastive_mlc_loss(s + d * (y.float() * 2 - 1), y).item() for d in np.linspace(-3, 12, 16)]
    assert all(v >= 0 for v in values)
    assert all(b < a for a, b in zip(values, values[1:]))       # strictly falling
    assert values[-1] < 1e-3                                   # approaches its lower bound 0
    # without the anchor only the ranking matters: shifting every logit changes nothing
    base = losses.contrastive_mlc_loss(s, y, anchor=False)
    assert losses.contrastive_mlc_loss(s + 5.0, y, anchor=False).item() == pytest.approx(base.item(), rel=1e-5)


def test_exclusive_loss_value():
    s = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    pairs = torch.tensor([[0, 1], [1, 2]])
    want = np.mean([np.log1p(np.exp(v)) for v in (1.0, -0.5, 0.0, 3.0)])
    assert losses.exclusive_loss(s, pairs).item() == pytest.approx(want, rel=1e-6)


def test_attributions_sum_to_logit_minus_bias():
    torch.manual_seed(0)
    net = GenePhenoNet(seq_dim=6, n_go=5, n_concepts=4, n_terms=3, hidden_dim=8, go_dim=4).eval()
    out = net(torch.randn(5, 6), torch.tensor([[0, 1, 5], [5, 5, 5], [2, 3, 4], [4, 5, 5], [1, 5, 5]]))
    A = net.attributions(out.concepts)
    assert A.shape == (5, 3, 4)
    torch.testing.assert_close(A.sum(-1), out.logits - net.phenotype.bias, rtol=1e-6, atol=1e-6)


def synthetic(n=300, d=8, seed=0, exclusive=True):
    """Labels 0 and 1 never co-occur; which one a positive gene gets is hidden noise, so a model
    without the exclusive loss tends to give both the same middling score."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    on = X[:, 0] > 0
    coin = rng.random(n) < 0.5
    Y = np.zeros((n, 4), dtype=bool)
    Y[:, 0], Y[:, 1] = on & coin, on & ~coin
    Y[:, 2] = Y[:, 0] | Y[:, 1]                                # parent of 0 and 1
    Y[:, 3] = X[:, 1] > 0.5
    C = np.stack([X[:, 0] > 0, X[:, 1] > 0], axis=1)
    splits = np.array(["train"] * int(n * 0.8) + ["val"] * (n - int(n * 0.8)))
    ds = SimpleNamespace(name="synthetic", labels=Y, term_parents=[[2], [2], [], []], splits=splits,
                         split_indices=lambda s: np.flatnonzero(splits == s))
    inp = Inputs(X=X, go_idx=np.zeros((n, 1), dtype=np.int64), go_vocab=[], labels=Y, concept_labels=C,
                 concept_known=np.ones(n, dtype=bool), pairs=np.array([[0, 1]]) if exclusive else np.zeros((0, 2), int))
    return ds, inp


def small_config(**kw):
    base = dict(epochs=40, patience=40, hidden_dim=16, batch_size=64, lr=3e-3, use_go=False, calibrate=False,
                dropout=0.0, lambda_exclusive=0.0)
    base.update(kw)
    return config_from_dict(base)


def test_exclusive_loss_lowers_joint_activation():
    """Labels 0 and 1 never co-occur. Under the ranking-only contrastive loss (no anchor) nothing
    stops both from scoring > 0.5 on unseen genes; the exclusive penalty does."""
    ds, inp = synthetic(n=400)
    _, test = synthetic(n=2000, seed=5)
    X, Y, Xt = torch.as_tensor(inp.X), torch.as_tensor(inp.labels), torch.as_tensor(test.X)
    pairs = torch.tensor([[0, 1]])
    both = []
    for lam in (0.0, 1.0):
        torch.manual_seed(0)
        net = GenePhenoNet(8, 0, 2, 4, hidden_dim=32, use_go=False, dropout=0.0)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(300):
            s = net(X).logits
            loss = losses.contrastive_mlc_loss(s, Y, anchor=False) + lam * losses.exclusive_loss(s, pairs)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            p = torch.sigmoid(net(Xt).logits).numpy()
        both.append(float(((p[:, 0] > 0.5) & (p[:, 1] > 0.5)).mean()))
    assert both[0] > 0.3          # measured 0.58
    assert both[1] < 0.01         # measured 0.0


def test_training_is_seeded_and_repeatable():
    ds, inp = synthetic()
    runs = [fit(ds, inp, small_config(epochs=5, seed=s)) for s in (3, 3, 4)]
    h = [[r["loss"] for r in run[1]] for run in runs]
    assert h[0] == h[1] and h[0] != h[2]
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values()):
        assert torch.equal(a, b)


def test_config_errors(tmp_path):
    with pytest.raises(InputError, match="unknown key 'lamda_concept'.*lambda_concept"):
        config_from_dict({"lamda_concept": 0.1})
    with pytest.raises(InputError, match="epochs: 'ten' is not a int"):
        config_from_dict({"epochs": "ten"})
    with pytest.raises(InputError, match="loss: 'hinge'"):
        config_from_dict({"loss": "hinge"})
    bad = tmp_path / "c.yaml"
    bad.write_text("epochs: 3\nlr: [1\n")
    with pytest.raises(InputError, match=r"c.yaml:\d+: is not valid YAML"):
        load_config(bad)
    assert load_config(FIXTURES.parents[1] / "configs" / "genepheno.yaml") == TrainConfig()


# ---------------------------------------------------------------- a real (tiny) dataset
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from genepheno.cli import main
    from genepheno.data import load_dataset
    B = FIXTURES / "real"
    out = tmp_path_factory.mktemp("m") / "ds"
    res = CliRunner().invoke(main, ["-q", "datasets", "build", "--ontology", str(B / "hp_small.obo"),
                                    "--annotations", str(B / "genes_to_phenotype.txt"), "--sequences", str(B / "human.fasta"),
                                    "--id-map", str(B / "entrez_uniprot.tsv"), "--go-ontology", str(B / "go_small.obo"),
                                    "--go-annotations", str(B / "goa_human_small.gaf"), "--min-genes", "3",
                                    "--min-concept-genes", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    ds = load_dataset(out)
    X = np.random.default_rng(0).normal(size=(len(ds.gene_ids), 12)).astype(np.float32)
    return ds, X


def test_save_load_identical_and_hierarchy(tiny, tmp_path):
    ds, X = tiny
    cfg = config_from_dict({"epochs": 3, "hidden_dim": 16, "go_dim": 8, "min_go_genes": 1})
    inp = prepare_inputs(ds, X, cfg)
    assert inp.go_vocab                                        # the GO branch is in use
    net, history, summary = fit(ds, inp, cfg)
    assert len(history) == 3 and "calibration" in summary
    spec = {"encoder": "random", "model": "random", "version": 1, "layer": None, "pooling": "mean", "dim": 12}
    save_model(tmp_path / "model", net, cfg, spec, ds, inp, history, summary)
    model = load_model(tmp_path / "model")
    go = {g: ds.go_tokens(i) for i, g in enumerate(ds.gene_ids)}
    p1 = predict(model, ds.gene_ids, X, go)
    model2 = load_model(tmp_path / "model")
    p2 = predict(model2, ds.gene_ids, X, go)
    assert np.array_equal(p1.scores, p2.scores)
    with torch.no_grad():                                      # same as the in-memory network
        ref = torch.sigmoid(net(torch.as_tensor(X), torch.as_tensor(inp.go_idx)).logits).numpy()
    assert (p1.scores >= ref - 1e-6).all()                     # propagation only raises scores
    own = p1.source == np.arange(ref.shape[1])                 # cells whose own logit won
    assert own.any() and np.allclose(p1.scores[own], ref[own], atol=1e-6)
    # hierarchy: no ancestor below a descendant, for every gene and every ancestor pair
    pairs = ds.ancestor_pairs()
    assert pairs
    assert sum(int((p1.scores[:, a] < p1.scores[:, d]).sum()) for d, a in pairs) == 0
    # genes without GO input still get scores (sequence-only path)
    alone = predict(model, ds.gene_ids, X, None)
    assert np.isfinite(alone.scores).all() and not np.array_equal(alone.scores, p1.scores)
    # explanations: contributions equal weight x activation and add up to logit - bias
    rows = explain_rows(model, p1, ds.gene_ids[0], top_terms=2, top_concepts=len(model.concept_ids))
    b = model.net.phenotype.bias.detach().numpy()
    t0 = rows[0][0]
    j = model.term_ids.index(t0)
    src = p1.source[0, j]
    assert sum(r[7] for r in rows if r[0] == t0) == pytest.approx(float(p1.logits[0, src] - b[src]), abs=1e-4)
    assert all(r[7] == pytest.approx(r[5] * r[6], abs=1e-6) for r in rows)
    with pytest.raises(GenephenoError, match="not among the predicted genes"):
        explain_rows(model, p1, "NCBIGene:0")
    with pytest.raises(InputError, match="embeddings do not match the model .*model: 'random' vs 'kmer'"):
        model.check_embedding({**spec, "model": "kmer"})
    model.check_embedding({"spec": {**spec, "dtype": "bf16"}})   # a store's meta; dtype may differ
    with pytest.raises(GenephenoError, match="dimension 5"):
        predict(model, ds.gene_ids, X[:, :5])


def test_ablation_switches_run(tiny):
    ds, X = tiny
    for over in ({"loss": "bce"}, {"lambda_exclusive": 0.0}, {"lambda_concept": 0.0}, {"use_go": False},
                 {"use_sequence": False, "min_go_genes": 1}):
        cfg = config_from_dict({"epochs": 1, "hidden_dim": 8, "go_dim": 4, **over})
        net, hist, _ = fit(ds, prepare_inputs(ds, X, cfg), cfg)
        assert np.isfinite(hist[0]["loss"])
        assert net.use_go == (over.get("use_go", True))


def test_every_pair_of_losses_is_finite_on_edge_rows():
    s = torch.tensor([[50.0, -50.0, 0.0], [0.0, 0.0, 0.0]])
    for y in itertools.product([0, 1], repeat=3):
        t = torch.tensor([y, y], dtype=torch.bool)
        assert torch.isfinite(losses.contrastive_mlc_loss(s, t)).item()
        assert torch.isfinite(losses.contrastive_mlc_loss(s, t, anchor=False)).item()
