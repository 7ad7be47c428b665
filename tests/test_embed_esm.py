"""ESM-2 path: loading released-layout checkpoints safely, fast forward == stock, pooling, windows."""

import argparse
import urllib.error

import numpy as np
import pytest
import torch

from genepheno.embed import embed_sequences, esm_weights_available, load_encoder
from genepheno.embed import esm2 as E
from genepheno.errors import GenephenoError, InputError

AA = "ACDEFGHIKLMNPQRSTVWY"


class Payload:
    """Any class outside the allow-list: unpickling it could run code, so it must be refused."""


def make_checkpoint(path, layers=2, dim=32, heads=4, seed=0, regression=True):
    """A random-weight ESM-2 saved as fair-esm releases them: {"model": prefixed state, "cfg": {...}}."""
    from esm.data import Alphabet
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    m = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=Alphabet.from_architecture("ESM-1b"))
    with torch.no_grad():
        for name, p in m.named_parameters():  # layer norms and biases away from 1 / 0
            if "norm" in name or name.endswith("bias"):
                p.add_(0.2 * torch.randn_like(p))
    state = {("encoder." if k.startswith("lm_head") else "encoder.sentence_encoder.") + k: v
             for k, v in m.state_dict().items() if not k.startswith("contact_head")}
    cfg = argparse.Namespace(encoder_layers=layers, encoder_embed_dim=dim, encoder_attention_heads=heads,
                             token_dropout=True)
    torch.save({"model": state, "cfg": {"model": cfg}}, path)
    if regression:
        torch.save({"model": {k: v for k, v in m.state_dict().items() if k.startswith("contact_head")}},
                   str(path)[:-3] + "-contact-regression.pt")
    return path


def random_seqs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(AA), n)) for n in lengths]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("esm") / "esm2_t2_tiny.pt")


@pytest.fixture(scope="module")
def enc(ckpt):
    return load_encoder(weights=ckpt, device="cpu")


@pytest.fixture(scope="module")
def stock(ckpt):
    """fair-esm's own model and alphabet from the same file, through its local loader."""
    import esm

    with torch.serialization.safe_globals([argparse.Namespace]):
        model, alphabet = esm.pretrained.load_model_and_alphabet_local(str(ckpt))
    return model.eval(), alphabet


def stock_mean(stock, seq, layer=2):
    """fair-esm's own way: batch converter, model(..., repr_layers), mean over 1..len."""
    model, alphabet = stock
    _, _, toks = alphabet.get_batch_converter()([("x", seq)])
    with torch.no_grad():
        rep = model(toks, repr_layers=[layer])["representations"][layer]
    return rep[0, 1:len(seq) + 1].mean(0).numpy()


def test_released_layout_loads_like_fair_esm_local_loader(enc, stock):
    seq = random_seqs([40])[0]
    assert enc.spec["model"] == "esm2_t2_tiny" and enc.spec["dim"] == 32 and enc.spec["layer"] == 2
    assert enc.spec["pooling"] == "mean" and len(enc.spec["weights"]) == 16
    np.testing.assert_allclose(embed_sequences(enc, [seq])[0], stock_mean(stock, seq), atol=1e-5)


def test_contact_regression_file_is_optional(tmp_path):
    p = make_checkpoint(tmp_path / "esm2_noreg.pt", regression=False)
    assert load_encoder(weights=p, device="cpu").dim == 32


def test_fast_fp32_equals_stock_and_batching_is_padding_independent(ckpt, enc, stock):
    assert enc._linears[0].packed or not torch.backends.mkldnn.is_available()  # the oneDNN path on CPUs
    seqs = random_seqs([1, 7, 30, 64, 65, 200, 333, 1022], seed=1)
    one_by_one = embed_sequences(enc, seqs, toks_per_batch=1)
    batched = embed_sequences(enc, seqs, toks_per_batch=4096)
    reference = np.stack([stock_mean(stock, s) for s in seqs])
    assert np.abs(batched - reference).max() <= 1e-4
    assert np.abs(batched - one_by_one).max() <= 1e-5
    # fair-esm's forward through our batcher (padding, pooling) agrees too
    both = E.ESMEncoder(*stock, "esm2_t2_tiny", device="cpu", keep_stock=True)
    via_stock = np.empty_like(batched)
    for idx, v in both.iter_embed(seqs, 4096, stock=True):
        via_stock[idx] = v
    assert np.abs(via_stock - reference).max() <= 1e-5
    assert np.abs(both.embed(seqs) - reference).max() <= 1e-4


def test_gpu_path_matches_too(ckpt, stock, monkeypatch):
    """What runs on CUDA, run on the CPU: plain F.linear, one masked attention call per batch in
    the model dtype, one worker."""
    monkeypatch.setattr(E, "_can_pack", lambda device, dtype: False)
    plain = load_encoder(weights=ckpt, device="cpu")
    plain._cpu, plain.workers = False, 1
    assert not plain._linears[0].packed
    seqs = random_seqs([3, 90, 500], seed=8)
    reference = np.stack([stock_mean(stock, s) for s in seqs])
    assert np.abs(embed_sequences(plain, seqs) - reference).max() <= 1e-4


def test_worker_threads_give_the_same_vectors(ckpt):
    seqs = random_seqs([5, 40, 41, 300, 700, 1500, 2600, 64, 65], seed=9)  # several batches, windowed ones
    threads = torch.get_num_threads()
    one = E.ESMEncoder(*E.load_esm2(weights=ckpt)[:2], "esm2_t2_tiny", device="cpu", workers=1)
    two = E.ESMEncoder(*E.load_esm2(weights=ckpt)[:2], "esm2_t2_tiny", device="cpu", workers=2)
    assert one.workers == 1 and two.workers == min(2, torch.get_num_threads())
    a, b = one.embed(seqs, toks_per_batch=700), two.embed(seqs, toks_per_batch=700)
    assert len(E.plan_batches([min(len(s), 1022) for s in seqs], 700)) >= 6
    assert np.abs(a - b).max() <= 1e-5
    assert torch.get_num_threads() == threads  # workers set their own thread count, not the caller's


def test_forward_beyond_the_window_extends_the_rotary_table(enc, stock):
    """Called directly (no windows), a 1,200-residue input still gets correct rotary positions."""
    seq = random_seqs([1200], seed=12)[0]
    tokens, segments = enc._layout([seq], 1202, packed=True)
    with torch.inference_mode():
        ours = enc.forward(tokens, segments)[0, 1:-1].mean(0).numpy()
    assert enc._rope_table.shape[0] >= 1202
    np.testing.assert_allclose(ours, stock_mean(stock, seq), atol=1e-4)


def test_rotary_pair_order_interleaves_each_head():
    assert E._pair_order(8, 2).tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_bf16_is_close_to_fp32(ckpt, enc):
    seqs = random_seqs([50, 400, 900], seed=2)
    ref = embed_sequences(enc, seqs)
    low = embed_sequences(load_encoder(weights=ckpt, device="cpu", dtype="bf16"), seqs)
    cos = (low * ref).sum(1) / np.linalg.norm(low, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.999


def test_layer_choice(ckpt, stock):
    seq = random_seqs([120], seed=3)[0]
    for layer in (0, 1):
        enc = load_encoder(weights=ckpt, layer=layer, device="cpu")
        assert enc.spec["layer"] == layer
        np.testing.assert_allclose(embed_sequences(enc, [seq])[0], stock_mean(stock, seq, layer=layer), atol=1e-5)
    assert load_encoder(weights=ckpt, layer=-1, device="cpu").spec["layer"] == 2
    with pytest.raises(GenephenoError, match="layers 0..2"):
        load_encoder(weights=ckpt, layer=5, device="cpu")


def test_windows_cover_everything_with_overlap():
    assert E.windows(1022) == [(0, 1022)]
    for n in (1023, 1500, 2500, 5000, 35000):
        spans = E.windows(n)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(e - s == 1022 for s, e in spans)
        assert all(a[1] - b[0] >= 256 for a, b in zip(spans, spans[1:]))  # overlap
        w = E.residue_weights(n, spans)
        assert abs(sum(x.sum() for x in w) - 1.0) < 1e-9


def test_batches_follow_the_token_budget_with_few_shapes():
    lengths = np.random.default_rng(0).integers(1, 1023, 400).tolist()
    batches = E.plan_batches(lengths, 4096)
    assert sorted(j for _, m in batches for j in m) == list(range(400))
    for T, members in batches:
        assert T % 32 == 0 and all(lengths[j] + 2 <= T < lengths[j] + 2 + 32 for j in members)
        assert len(members) * T <= 4096 or len(members) == 1
    assert [T for T, _ in batches] == sorted((T for T, _ in batches), reverse=True)  # longest first
    assert len({(T, len(m)) for T, m in batches}) <= 2 * 32  # one full and one partial shape per length
    assert E.plan_batches([5000], 100) == [(5024, [0])]


def test_packed_batches_fill_the_budget_in_few_shapes():
    lengths = np.random.default_rng(0).integers(1, 1023, 400).tolist()
    batches = E.plan_packed(lengths, 4096)
    assert sorted(j for _, m in batches for j in m) == list(range(400))
    for N, members in batches:
        used = sum(lengths[j] + 2 for j in members)
        assert N % 64 == 0 and used <= N < used + 64 and used <= 4096
    assert all(sum(lengths[j] + 2 for j in m) > 4096 - 1024 for _, m in batches[:-1])  # nearly full
    assert len({N for N, _ in batches}) <= 4096 // 64
    assert E.plan_packed([5000, 10], 100) == [(5056, [0]), (64, [1])]


def test_packed_layout_keeps_sequences_apart(enc):
    """Packed into one row, each sequence sees only itself: equal to running it alone."""
    seqs = random_seqs([30, 17, 200, 1], seed=11)
    tokens, segments = enc._layout(seqs, 320, packed=True)
    assert segments == [(0, 0, 32), (0, 32, 19), (0, 51, 202), (0, 253, 3)] and tokens.shape == (1, 320)
    with torch.inference_mode():
        row = enc.forward(tokens, segments)[0]
        for (_, s, n), seq in zip(segments, seqs):
            alone = enc.forward(*enc._layout([seq], n, packed=True))[0]
            assert torch.allclose(row[s:s + n], alone, atol=1e-5)


def test_long_protein_is_windowed_not_truncated(enc, stock):
    seq = random_seqs([2500], seed=4)[0]
    spans = E.windows(len(seq))
    assert len(spans) == 3
    # reference: per-residue stock representations averaged over the windows covering each residue
    total, cover = np.zeros((len(seq), 32)), np.zeros(len(seq))
    for s, e in spans:
        _, _, toks = stock[1].get_batch_converter()([("x", seq[s:e])])
        with torch.no_grad():
            rep = stock[0](toks, repr_layers=[2])["representations"][2][0, 1:e - s + 1].numpy()
        total[s:e] += rep
        cover[s:e] += 1
    ref = (total / cover[:, None]).mean(0)
    got = embed_sequences(enc, [seq, seq[:1022], seq[1000:1300]], toks_per_batch=3000)
    np.testing.assert_allclose(got[0], ref, atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-3  # the tail beyond 1,022 residues counts


def test_input_cleaning_and_unsupported_letters(enc):
    seq = random_seqs([60], seed=5)[0]
    a = embed_sequences(enc, [seq.lower() + "*", seq])
    np.testing.assert_allclose(a[0], a[1], atol=1e-6)
    with pytest.raises(InputError) as e:
        embed_sequences(enc, ["MKJL", seq, "MJJ"], ids=["g1", "g2", "g3"])
    assert "g1 ('J')" in str(e.value) and "g3" in str(e.value) and "2 sequence(s)" in str(e.value)


def test_missing_weights_offline_is_one_line(tmp_path, monkeypatch):
    import esm.pretrained

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(esm.pretrained, "load_hub_workaround", offline)
    assert not esm_weights_available("esm2_t6_8M_UR50D") and esm_weights_available("kmer")
    with pytest.raises(GenephenoError) as e:
        load_encoder("esm2_t6_8M_UR50D", device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "esm2_t6_8M_UR50D.pt" in msg and "--weights PATH" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    with pytest.raises(GenephenoError, match="unknown model 'esm3'"):
        load_encoder("esm3")


def test_hub_cache_is_used_and_architecture_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    make_checkpoint(tmp_path / "checkpoints" / "esm2_t6_8M_UR50D.pt", layers=6, dim=320, heads=20, regression=False)
    assert esm_weights_available("esm2_t6_8M_UR50D")
    enc = load_encoder("esm2_t6_8M_UR50D", device="cpu")
    assert enc.spec["model"] == "esm2_t6_8M_UR50D" and enc.dim == 320 and enc.spec["layer"] == 6
    tiny = make_checkpoint(tmp_path / "tiny.pt")
    with pytest.raises(InputError, match="has 2 layers, dim 32"):
        load_encoder("esm2_t6_8M_UR50D", weights=tiny)


def test_unsafe_or_broken_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "esm2_bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable PyTorch checkpoint"):
        load_encoder(weights=bad)
    evil = tmp_path / "esm2_evil.pt"
    torch.save({"model": {}, "cfg": {"model": Payload()}}, evil)
    with pytest.raises(InputError, match="refused by the safe checkpoint loader"):
        load_encoder(weights=evil)
    wrong = tmp_path / "esm2_wrong.pt"
    torch.save({"weights": torch.zeros(2)}, wrong)
    with pytest.raises(InputError, match="not an ESM-2 checkpoint"):
        load_encoder(weights=wrong)
    with pytest.raises(InputError, match="file not found"):
        load_encoder(weights=tmp_path / "missing.pt")


def test_device_and_dtype_choices(ckpt):
    with pytest.raises(GenephenoError, match="fp16 is for CUDA"):
        load_encoder(weights=ckpt, device="cpu", dtype="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(GenephenoError, match="no CUDA device"):
            load_encoder(weights=ckpt, device="cuda:0")
    with pytest.raises(GenephenoError, match="expected auto, cpu"):
        load_encoder(weights=ckpt, device="tpu")
    assert load_encoder(weights=ckpt, device="auto").device.type in ("cpu", "cuda")
