"""ESM-2 (fair-esm) embeddings: loading weights safely, and a fast inference path.

Loading. Any ESM-2 model by name, from torch's hub cache (``torch.hub.get_dir()/checkpoints``,
where fair-esm's own hub loader puts the files it downloads), or a local checkpoint in the
released layout (``{"model": state dict, "cfg": {"model": argparse.Namespace(...)}}``; the
``-contact-regression.pt`` file is not needed: embeddings do not use the contact head). Since
torch 2.6, ``torch.load`` refuses the ``argparse.Namespace`` in those files; we load them with
``weights_only=True`` and an explicit allow-list of that one class (never ``weights_only=False``).

Inference. fair-esm's stock attention computes and head-averages the full attention matrices in
every layer even when nobody asks for them; on a CPU this allocation traffic makes batching slower
than one-by-one. ``ESMEncoder`` runs the same modules (same weights, same parameters) through its own
forward: fused q/k/v projection (the q/k/v weights become views of one tensor, so no copy and the
stock model still works), rotary tables computed in fp32, ``scaled_dot_product_attention`` with a
key-padding mask, no LM head, and only up to the requested layer. In fp32 it equals the stock
forward to ~1e-6 (tested <= 1e-4). Batches are filled up to a token budget from length-sorted
sequences, so padding is small.

Pooling: the mean over residue positions only (BOS, EOS and padding excluded) of the chosen layer
(default the last, which has ``emb_layer_norm_after`` applied, as in fair-esm). Proteins longer than
``WINDOW`` (1,022) residues are cut into evenly spaced windows overlapping by at least
``MIN_OVERLAP`` residues; each residue's vector is the mean over the windows that contain it, and
the protein's vector the mean over its residues. Nothing is truncated.
"""

import argparse
import contextlib
import hashlib
import io
import math
import pickle
import socket
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genepheno.errors import GenephenoError, InputError
from genepheno.log import logger

# name -> (layers, embedding dim, attention heads)
ESM2_MODELS = {
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
    "esm2_t36_3B_UR50D": (36, 2560, 40),
    "esm2_t48_15B_UR50D": (48, 5120, 40),
}
DEFAULT_MODEL = "esm2_t33_650M_UR50D"
WINDOW = 1022        # residues per window (1,024 tokens with BOS and EOS: ESM-2's training length)
MIN_OVERLAP = 256    # residues shared by neighbouring windows at least
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_TOKS_PER_BATCH = {"cpu": 4096, "cuda": 16384}
LENGTH_QUANTUM = 32  # padded batch lengths are multiples of this


# ---------------------------------------------------------------- weights

def hub_checkpoint_dir():
    return Path(torch.hub.get_dir()) / "checkpoints"


def esm_weights_available(name):
    """True when fair-esm's hub cache already holds ``name``.pt (no download needed)."""
    if name == "kmer":
        return True
    return (hub_checkpoint_dir() / f"{name}.pt").is_file()


def safe_torch_load(path):
    """``torch.load`` with ``weights_only=True``, allowing only what ESM checkpoints contain."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "is not a file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "")
        if detail:
            raise InputError(path, f"refused by the safe checkpoint loader ({detail[:160]})",
                             "only ESM-2 checkpoints in the released layout are accepted") from None
        raise InputError(path, f"not a readable PyTorch checkpoint ({str(e).splitlines()[-1][:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise InputError(path, f"not a readable PyTorch checkpoint ({str(e).splitlines()[0][:160]})") from None


def _fetch_from_hub(name, timeout=60):
    """Download ``name`` with fair-esm's own hub loader (into the hub cache) and return its data."""
    import esm.pretrained

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    logger.debug("fetching %s.pt into %s with fair-esm's hub loader", name, hub_checkpoint_dir())
    try:
        # torch.hub prints "Downloading ..." on stdout; keep stdout clean and stderr to our messages
        with torch.serialization.safe_globals([argparse.Namespace]), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            data = esm.pretrained.load_hub_workaround(f"https://dl.fbaipublicfiles.com/fair-esm/models/{name}.pt")
        logger.info("downloaded %s.pt into %s", name, hub_checkpoint_dir())
        return data
    except Exception as e:  # offline, HTTP error, interrupted download: all end the same way for the user
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise GenephenoError(
            f"ESM-2 weights {name}.pt are not in {hub_checkpoint_dir()} and could not be downloaded ({reason}); "
            f"pass --weights PATH to a local copy, or copy {name}.pt into {hub_checkpoint_dir()}") from None
    finally:
        socket.setdefaulttimeout(old)


def _build_model(data, name, source):
    import esm.pretrained

    if not isinstance(data, dict) or "model" not in data or "cfg" not in data:
        hint = "ESM-1 checkpoints are not supported" if isinstance(data, dict) and "args" in data else \
            "expected a dict with 'model' (state dict) and 'cfg' as fair-esm releases them"
        raise InputError(source, "is not an ESM-2 checkpoint in the released layout", hint)
    try:
        cfg = data["cfg"]["model"]
        arch = (int(cfg.encoder_layers), int(cfg.encoder_embed_dim), int(cfg.encoder_attention_heads))
    except (KeyError, TypeError, AttributeError):
        raise InputError(source, "checkpoint 'cfg' lacks encoder_layers / encoder_embed_dim / "
                                 "encoder_attention_heads") from None
    if name in ESM2_MODELS and ESM2_MODELS[name] != arch:
        raise InputError(source, f"has {arch[0]} layers, dim {arch[1]}, {arch[2]} heads, but {name} has "
                                 f"{ESM2_MODELS[name][0]} layers, dim {ESM2_MODELS[name][1]}",
                         "pass the matching --model name")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Regression weights not found")
        try:
            model, alphabet = esm.pretrained.load_model_and_alphabet_core("esm2", data, None)
        except RuntimeError as e:
            raise InputError(source, f"weights do not fit the ESM-2 architecture ({str(e).splitlines()[-1].strip()[:160]})") \
                from None
    return model.eval(), alphabet


def load_esm2(name=None, weights=None):
    """Return ``(model, alphabet, name)`` from a local checkpoint or the hub (cache first)."""
    if weights is not None:
        weights = Path(weights)
        name = name or weights.stem
        return (*_build_model(safe_torch_load(weights), name, weights), name)
    name = name or DEFAULT_MODEL
    if name not in ESM2_MODELS:
        raise GenephenoError(f"unknown model {name!r}; choose kmer, {', '.join(ESM2_MODELS)}, "
                             "or pass --weights PATH to an ESM-2 checkpoint")
    cached = hub_checkpoint_dir() / f"{name}.pt"
    data = safe_torch_load(cached) if cached.is_file() else _fetch_from_hub(name)
    return (*_build_model(data, name, cached), name)


def weights_fingerprint(model):
    """Short hash of a few weight tensors: tells checkpoints (e.g. a fine-tune) apart, cheaply."""
    sd = model.state_dict()
    h = hashlib.sha256()
    for key in ("embed_tokens.weight", f"layers.{model.num_layers - 1}.fc2.bias", "emb_layer_norm_after.weight"):
        h.update(sd[key].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- devices

def resolve_device(device="auto"):
    device = (device or "auto").strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise GenephenoError(f"--device {device}: this torch sees no CUDA device "
                                 f"(torch {torch.__version__}); use --device cpu")
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise GenephenoError(f"--device {device}: expected cuda or cuda:N") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GenephenoError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return dev
    raise GenephenoError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


def resolve_dtype(dtype, device):
    if dtype not in DTYPES:
        raise GenephenoError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if dtype == "fp16" and device.type == "cpu":
        raise GenephenoError("--dtype fp16 is for CUDA devices; on a CPU use bf16 or fp32")
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GenephenoError("--dtype bf16: this GPU has no bfloat16 support; use fp16 or fp32")
    return DTYPES[dtype]


# ---------------------------------------------------------------- windows

def windows(length, window=WINDOW, min_overlap=MIN_OVERLAP):
    """Evenly spaced ``(start, end)`` windows covering ``length`` residues, neighbours sharing at
    least ``min_overlap`` residues; one window when the protein fits."""
    if length <= window:
        return [(0, length)]
    n = math.ceil((length - min_overlap) / (window - min_overlap))
    starts = [round(i * (length - window) / (n - 1)) for i in range(n)]
    return [(s, s + window) for s in starts]


def residue_weights(length, spans):
    """Per window, the weight of each of its residues in the protein mean: 1 / (coverage * length)."""
    cover = np.zeros(length)
    for s, e in spans:
        cover[s:e] += 1
    return [1.0 / (cover[s:e] * length) for s, e in spans]


# ---------------------------------------------------------------- batches

def plan_batches(lengths, budget, quantum=LENGTH_QUANTUM):
    """Batches ``(T, [indices])`` of residue ``lengths``, longest first.

    Padded length T (residues + BOS + EOS) is rounded up to a multiple of ``quantum`` and a batch
    holds pieces of one T only, at most ``budget // T`` of them (at least one). Few distinct batch
    shapes means oneDNN's per-shape kernel caches stay small and warm (with a new shape for every
    batch, a CPU run's memory grows by ~1 MB per batch) at the price of a few % padding.
    """
    order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
    batches, cur, cur_T = [], [], None
    for j in order:
        T = -(-(lengths[j] + 2) // quantum) * quantum
        if cur and (T != cur_T or len(cur) >= max(1, budget // cur_T)):
            batches.append((cur_T, cur))
            cur = []
        cur_T = T if not cur else cur_T
        cur.append(j)
    if cur:
        batches.append((cur_T, cur))
    return batches


# ---------------------------------------------------------------- encoder

class _Linears:
    """The four linear maps of one transformer layer, run the fastest way the device allows.

    On a CPU with oneDNN the weights are pre-packed once into its blocked layout and GELU (fc1)
    and the residual additions (out_proj, fc2) are fused into the matrix products; elsewhere plain
    ``F.linear``. q/k/v use one fused (3E, E) product.
    """

    def __init__(self, layer, packed):
        a = layer.self_attn
        with torch.no_grad():
            self.qkv = (torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]),
                        torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
            self.out = (a.out_proj.weight.detach(), a.out_proj.bias.detach())
            self.fc1 = (layer.fc1.weight.detach(), layer.fc1.bias.detach())
            self.fc2 = (layer.fc2.weight.detach(), layer.fc2.bias.detach())
        self.packed = packed
        if packed:
            for name in ("qkv", "out", "fc1", "fc2"):
                w, b = getattr(self, name)
                setattr(self, name, (torch.ops.mkldnn._reorder_linear_weight(w, 4096), b))

    def __call__(self, name, x, gelu=False, add=None):
        w, b = getattr(self, name)
        if self.packed:
            if add is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(x, add, w, b, "add")
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
        y = F.linear(x, w, b)
        if gelu:
            y = F.gelu(y)
        return y if add is None else y.add_(add)


def _can_pack(device, dtype):
    """oneDNN pre-packed linears: CPU builds with mkldnn, fp32 or (where the CPU has it) bf16."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    try:  # a tiny trial: some builds lack these ops
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 4, dtype=dtype), 2)
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4, dtype=dtype), w, torch.zeros(4, dtype=dtype),
                                               "gelu", [], "none")
        z = torch.ops.mkldnn._linear_pointwise.binary(torch.ones(2, 4, dtype=dtype), y, w,
                                                      torch.zeros(4, dtype=dtype), "add")
        return bool(torch.allclose(z.float(), torch.full((2, 4), 4 + 3.9999, dtype=torch.float32), atol=0.1))
    except (RuntimeError, AttributeError):
        return False


class ESMEncoder:
    """Mean-pooled ESM-2 embeddings. ``spec`` must match between a store and the model using it.

    ``keep_stock=True`` keeps fair-esm's own linear weights usable (``stock_forward``) next to
    the packed ones; by default they are released after packing to save memory.
    """

    name = "esm2"

    def __init__(self, model, alphabet, name, layer=None, device="auto", dtype="fp32", keep_stock=False):
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        n = model.num_layers
        if layer is None:
            layer = n
        if not -(n + 1) <= layer <= n:
            raise GenephenoError(f"--layer {layer}: {name} has layers 0..{n} (negative counts from the end)")
        self.layer = layer % (n + 1)
        self.alphabet = alphabet
        self.dim = model.embed_dim
        self.spec = dict(encoder="esm2", model=name, layer=self.layer, num_layers=n, pooling="mean",
                         dim=self.dim, dtype=dtype, window=WINDOW, min_overlap=MIN_OVERLAP,
                         weights=weights_fingerprint(model))
        if not keep_stock:
            del model.layers[self.layer:]  # layers past the requested one are never run
        self.model = model.to(device=self.device, dtype=self.torch_dtype)
        packed = _can_pack(self.device, self.torch_dtype)
        self._linears = [_Linears(layer, packed) for layer in self.model.layers]
        self._stock_ok = keep_stock
        if packed and not keep_stock:
            for layer in self.model.layers:  # the packed copies replace these
                for mod in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                            layer.self_attn.out_proj, layer.fc1, layer.fc2):
                    mod.weight.data = torch.empty(0, dtype=self.torch_dtype)
        self._letters = frozenset(t for t in alphabet.standard_toks if t.isalpha())
        lut = np.full(256, -1, dtype=np.int64)
        for t in self._letters:
            lut[ord(t)] = alphabet.tok_to_idx[t]
        self._lut = lut
        self._rope_cache = {}

    def unsupported_letters(self, sequence):
        return set(sequence) - self._letters

    # -- model -----------------------------------------------------------
    def _rope(self, T, head_dim):
        key = (T, head_dim)
        if key not in self._rope_cache:
            # fp32 positions and frequencies, then cast: bf16 cannot represent positions > 256 exactly
            inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
            freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
            emb = torch.cat((freqs, freqs), dim=-1)[:, None, None, :]  # (T, 1, 1, D) against (B, T, 2, H, D)
            # rotate_half(x) = swap the halves of x and negate the first: fold that sign into sin
            sign = torch.cat((-torch.ones(head_dim // 2), torch.ones(head_dim // 2)))
            self._rope_cache = {key: (emb.cos().to(self.device, self.torch_dtype),
                                      (emb.sin() * sign).to(self.device, self.torch_dtype))}
        return self._rope_cache[key]

    def forward(self, tokens):
        """Hidden states (B, T, E) of layer ``self.layer`` for a padded token batch."""
        m = self.model
        B, T = tokens.shape
        pad = tokens.eq(m.padding_idx)
        x = m.embed_tokens(tokens)
        if m.token_dropout:  # inputs never hold <mask>, so the stock rescaling is a constant
            x = x * (1 - 0.15 * 0.8)
        x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        mask = (~pad)[:, None, None, :] if bool(pad.any()) else None
        E, H = m.embed_dim, m.attention_heads
        D = E // H
        cos, sin = self._rope(T, D)
        for layer, lin in zip(m.layers, self._linears):
            qkv = lin("qkv", layer.self_attn_layer_norm(x)).view(B, T, 3, H, D)
            qk = qkv[:, :, :2]
            swapped = qk.unflatten(-1, (2, D // 2)).flip(-2).flatten(-2)
            qk = torch.addcmul(qk * cos, swapped, sin)  # rotary embedding of q and k together
            q, k, v = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale 1/sqrt(D), as ESM
            x = lin("out", o.transpose(1, 2).reshape(B, T, E), add=x)
            x = lin("fc2", lin("fc1", layer.final_layer_norm(x), gelu=True), add=x)
        if self.layer == m.num_layers:
            x = m.emb_layer_norm_after(x)
        return x

    def stock_forward(self, tokens):
        """fair-esm's own forward (for checks and benchmarks; needs ``keep_stock=True`` on a CPU)."""
        if not self._stock_ok:
            raise RuntimeError("stock weights were released; build the encoder with keep_stock=True")
        return self.model(tokens, repr_layers=[self.layer])["representations"][self.layer]

    # -- batching --------------------------------------------------------
    def _tokens(self, pieces, T):
        toks = np.full((len(pieces), T), self.alphabet.padding_idx, dtype=np.int64)
        for i, p in enumerate(pieces):
            toks[i, 0] = self.alphabet.cls_idx
            toks[i, 1:len(p) + 1] = self._lut[np.frombuffer(p.encode("ascii"), dtype=np.uint8)]
            toks[i, len(p) + 1] = self.alphabet.eos_idx
        return torch.from_numpy(toks)

    def iter_embed(self, sequences, toks_per_batch=None, stock=False):
        """Yield ``(indices, vectors)`` as sequences complete, longest first, in token-budget batches."""
        budget = toks_per_batch or DEFAULT_TOKS_PER_BATCH[self.device.type]
        pieces = []  # (length, sequence index, start, end, weights)
        for i, seq in enumerate(sequences):
            bad = self.unsupported_letters(seq)
            if bad:
                raise InputError(f"sequence {i + 1}", f"letter(s) {''.join(sorted(bad))!r} not in the ESM-2 alphabet")
            spans = windows(len(seq))
            for (s, e), w in zip(spans, residue_weights(len(seq), spans)):
                pieces.append((e - s, i, s, e, w))
        remaining = np.zeros(len(sequences), dtype=np.int64)
        for p in pieces:
            remaining[p[1]] += 1
        sums = {}
        forward = self.stock_forward if stock else self.forward
        for T, members in plan_batches([p[0] for p in pieces], budget):
            batch = [pieces[j] for j in members]
            tokens = self._tokens([sequences[i][s:e] for _, i, s, e, _ in batch], T).to(self.device, non_blocking=True)
            weights = torch.zeros(tokens.shape, dtype=torch.float32)
            for j, (n, _, _, _, w) in enumerate(batch):
                weights[j, 1:n + 1] = torch.from_numpy(w)
            with torch.inference_mode():
                try:
                    hidden = forward(tokens)
                except torch.cuda.OutOfMemoryError:
                    raise GenephenoError(f"out of GPU memory with --toks-per-batch {budget}; "
                                         "try a smaller value") from None
                pooled = torch.bmm(weights.to(self.device)[:, None, :], hidden.float())[:, 0].cpu().numpy()
            done = []
            for j, (_, i, _, _, _) in enumerate(batch):
                sums[i] = sums[i] + pooled[j] if i in sums else pooled[j].astype(np.float64)
                remaining[i] -= 1
                if remaining[i] == 0:
                    done.append(i)
            if done:
                yield done, np.stack([sums.pop(i) for i in done]).astype(np.float32)

    def embed(self, sequences, toks_per_batch=None):
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        for idx, vec in self.iter_embed(sequences, toks_per_batch):
            out[idx] = vec
        return out
