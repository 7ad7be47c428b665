"""ESM-2 (fair-esm) embeddings: loading weights safely, and a fast inference path.

Loading. Any ESM-2 model by name, from torch's hub cache (``torch.hub.get_dir()/checkpoints``,
where fair-esm's own hub loader puts the files it downloads), or a local checkpoint in the
released layout (``{"model": state dict, "cfg": {"model": argparse.Namespace(...)}}``; the
``-contact-regression.pt`` file is not needed: embeddings do not use the contact head). Since
torch 2.6, ``torch.load`` refuses the ``argparse.Namespace`` in those files; we load them with
``weights_only=True`` and an explicit allow-list of that one class (never ``weights_only=False``).

Inference. fair-esm's stock attention computes and head-averages the full attention matrices in
every layer even when nobody asks for them; on a CPU this allocation traffic makes batching slower
than one-by-one. ``ESMEncoder`` runs the same weights through its own forward: one fused q/k/v
product (q and k features reordered per head so rotary is a single complex product, with tables in
fp32), ``scaled_dot_product_attention``, no LM head, and only up to the requested layer. In fp32
it equals the stock forward to ~1e-6 (tested <= 1e-4). Batches are filled up to a token budget
from length-sorted sequences.

On a CPU the linears are oneDNN-prepacked with GELU and the residual adds fused in; the sequences
of a batch are packed into one row (no padding but a short tail), attention runs per sequence in
fp32 (torch's CPU flash kernel is faster in fp32 than in bf16 at ESM's head size 24, and needs no
mask); and two batches run at once, each in a worker thread with half of torch's threads, which
on a few cores beats splitting every operation. On a GPU: padded rows, one masked attention call
per batch in the model dtype, plain ``F.linear``.

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
PACKED_QUANTUM = 64  # packed (CPU) batch rows are multiples of this


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


def plan_packed(lengths, budget, quantum=PACKED_QUANTUM):
    """Batches ``(N, [indices])`` of residue ``lengths``, longest first, for the packed CPU layout:
    the pieces (each with BOS and EOS) follow one another in a single row of N tokens, N their sum
    rounded up to a multiple of ``quantum`` (few distinct shapes, as in ``plan_batches``), at most
    ``budget`` tokens unless one piece alone is longer."""
    order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
    batches, cur, used = [], [], 0
    for j in order:
        if cur and used + lengths[j] + 2 > budget:
            batches.append((-(-used // quantum) * quantum, cur))
            cur, used = [], 0
        cur.append(j)
        used += lengths[j] + 2
    if cur:
        batches.append((-(-used // quantum) * quantum, cur))
    return batches


# ---------------------------------------------------------------- encoder

class _Linears:
    """The four linear maps of one transformer layer, run the fastest way the device allows.

    On a CPU with oneDNN the weights are pre-packed once into its blocked layout and GELU (fc1)
    and the residual additions (out_proj, fc2) are fused into the matrix products; elsewhere plain
    ``F.linear``. q/k/v use one fused (3E, E) product.
    """

    def __init__(self, layer, packed, heads):
        a = layer.self_attn
        # q and k output features reordered within each head from halves (x_0..x_11, x_12..x_23) to
        # pairs (x_0, x_12, x_1, x_13, ...): rotary becomes one complex product. q.k is unchanged
        # because q and k get the same order.
        order = _pair_order(a.q_proj.weight.shape[0], heads)
        with torch.no_grad():
            self.qkv = (torch.cat([a.q_proj.weight[order], a.k_proj.weight[order], a.v_proj.weight]),
                        torch.cat([a.q_proj.bias[order], a.k_proj.bias[order], a.v_proj.bias]))
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


def _pair_order(E, heads):
    """Feature order putting rotary partners (i, i + D/2) of each head next to each other."""
    D = E // heads
    within = torch.stack([torch.arange(D // 2), torch.arange(D // 2, D)], dim=1).flatten()
    return (torch.arange(heads)[:, None] * D + within).flatten()


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
    the packed ones; by default they are released after packing to save memory. ``workers``
    (CPU only; default: 2 when torch has at least 2 threads) runs that many batches at once, each
    on its share of torch's threads: on a few cores this beats splitting every small operation.
    """

    name = "esm2"

    def __init__(self, model, alphabet, name, layer=None, device="auto", dtype="fp32", keep_stock=False,
                 workers=None):
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
        self.spec = {"encoder": "esm2", "model": name, "layer": self.layer, "num_layers": n, "pooling": "mean",
                     "dim": self.dim, "dtype": dtype, "window": WINDOW, "min_overlap": MIN_OVERLAP,
                     "weights": weights_fingerprint(model)}
        if not keep_stock:
            del model.layers[self.layer:]  # layers past the requested one are never run
        self.model = model.to(device=self.device, dtype=self.torch_dtype)
        packed = _can_pack(self.device, self.torch_dtype)
        self._linears = [_Linears(layer, packed, model.attention_heads) for layer in self.model.layers]
        self._stock_ok = keep_stock
        if packed and not keep_stock:
            for layer in self.model.layers:  # the packed copies replace these
                for mod in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                            layer.self_attn.out_proj, layer.fc1, layer.fc2):
                    mod.weight.data = torch.empty(0, dtype=self.torch_dtype)
        # CPU: attention per sequence (no padding, no mask) in fp32, which torch's CPU flash kernel
        # runs faster than bf16 at ESM's head size; GPU: one masked call per batch in the model dtype
        self._cpu = self.device.type == "cpu"
        threads = torch.get_num_threads()
        self.workers = 1 if not self._cpu else max(1, min(workers or 2, threads))
        self._threads_per_worker = max(1, threads // self.workers)
        self._letters = frozenset(t for t in alphabet.standard_toks if t.isalpha())
        lut = np.full(256, -1, dtype=np.int64)
        for t in self._letters:
            lut[ord(t)] = alphabet.tok_to_idx[t]
        self._lut = lut
        self._rope_table = self._rotary(WINDOW + 2 + LENGTH_QUANTUM)

    def unsupported_letters(self, sequence):
        return set(sequence) - self._letters

    # -- model -----------------------------------------------------------
    def _rotary(self, T):
        """e^{i t w_j} for positions t < T, as (T, 2, H, D/2) complex64 (q and k, every head)."""
        H, D = self.model.attention_heads, self.dim // self.model.attention_heads
        # fp32 positions and frequencies (bf16 cannot represent positions > 256 exactly), as fair-esm's
        # RotaryEmbedding: w_j = 10000^(-2j/D), pairing dims j and j + D/2 of each head
        inv = 1.0 / (10000 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        angles = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        table = torch.polar(torch.ones_like(angles), angles)[:, None, None, :].expand(T, 2, H, D // 2)
        return table.contiguous().to(self.device)

    def forward(self, tokens, segments=None):
        """Hidden states (R, W, E) of layer ``self.layer`` for a token matrix.

        ``segments``: one ``(row, start, length)`` per sequence (BOS and EOS included). Padded
        layout: a sequence per row from position 0 (the default, found from the padding). Packed
        layout (CPU): sequences one after another in a row. Attention stays within a segment;
        rotary positions restart at each segment's start."""
        m = self.model
        R, W = tokens.shape
        pad = tokens.eq(m.padding_idx)
        if segments is None:
            segments = [(r, 0, n) for r, n in enumerate((~pad).sum(1).tolist())]
        x = m.embed_tokens(tokens)
        if m.token_dropout:  # inputs never hold <mask>, so the stock rescaling is a constant
            x = x * (1 - 0.15 * 0.8)
        x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        E, H = m.embed_dim, m.attention_heads
        D = E // H
        longest = max(n for _, _, n in segments) if self._cpu else W
        if longest > self._rope_table.shape[0]:  # only for inputs longer than the windows we cut
            self._rope_table = self._rotary(longest)
        rope = self._rope_table  # (positions, 2, H, D/2): rotary on q and k at once, as one complex product
        mask = (~pad)[:, None, None, :] if not self._cpu and bool(pad.any()) else None
        o = torch.zeros(R, W, H, D, dtype=x.dtype, device=x.device) if self._cpu else None
        for layer, lin in zip(m.layers, self._linears):
            qkv = lin("qkv", layer.self_attn_layer_norm(x)).view(R, W, 3, H, D)
            if self._cpu:  # per sequence, in fp32: small cache-resident copies, positions from 0
                for r, s, n in segments:
                    seg = qkv[r, s:s + n].float()  # (n, 3, H, D); a copy unless the model is fp32
                    torch.view_as_complex(seg[:, :2].unflatten(-1, (D // 2, 2))).mul_(rope[:n])
                    q, k, v = (seg[None, :, j].transpose(1, 2) for j in range(3))
                    o[r, s:s + n] = F.scaled_dot_product_attention(q, k, v)[0].transpose(0, 1)  # 1/sqrt(D)
                out = o.view(R, W, E)
            else:
                qk = qkv[:, :, :2].float()
                torch.view_as_complex(qk.unflatten(-1, (D // 2, 2))).mul_(rope[:W])
                q, k = (qk[:, :, j].to(x.dtype).transpose(1, 2) for j in (0, 1))
                out = F.scaled_dot_product_attention(q, k, qkv[:, :, 2].transpose(1, 2), attn_mask=mask)
                out = out.transpose(1, 2).reshape(R, W, E)
            x = lin("out", out, add=x)
            x = lin("fc2", lin("fc1", layer.final_layer_norm(x), gelu=True), add=x)
        if self.layer == m.num_layers:
            x = m.emb_layer_norm_after(x)
        return x

    def stock_forward(self, tokens, segments=None):
        """fair-esm's own forward (for checks and benchmarks; needs ``keep_stock=True`` on a CPU;
        padded layout only)."""
        if not self._stock_ok:
            raise RuntimeError("stock weights were released; build the encoder with keep_stock=True")
        return self.model(tokens, repr_layers=[self.layer])["representations"][self.layer]

    # -- batching --------------------------------------------------------
    def _layout(self, strings, width, packed):
        """Token matrix and segments ``(row, start, length)``: packed, all strings in one row of
        ``width``; padded, one string per row of ``width``."""
        rows = 1 if packed else len(strings)
        toks = np.full((rows, width), self.alphabet.padding_idx, dtype=np.int64)
        segments, start = [], 0
        for j, p in enumerate(strings):
            r, s = (0, start) if packed else (j, 0)
            toks[r, s] = self.alphabet.cls_idx
            toks[r, s + 1:s + len(p) + 1] = self._lut[np.frombuffer(p.encode("ascii"), dtype=np.uint8)]
            toks[r, s + len(p) + 1] = self.alphabet.eos_idx
            segments.append((r, s, len(p) + 2))
            start += len(p) + 2
        return torch.from_numpy(toks), segments

    def _run_batch(self, forward, strings, width, weights, packed):
        """Pooled vectors (B, E) float32 of one batch: per string, the weighted sum of its residues."""
        tokens, segments = self._layout(strings, width, packed)
        tokens = tokens.to(self.device, non_blocking=True)
        w = torch.zeros(len(strings), tokens.numel(), dtype=torch.float32)  # (strings, all positions)
        for j, ((r, s, n), wj) in enumerate(zip(segments, weights)):
            w[j, r * width + s + 1:r * width + s + n - 1] = torch.from_numpy(wj)
        with torch.inference_mode():
            try:
                hidden = forward(tokens, segments)
            except torch.cuda.OutOfMemoryError:
                raise GenephenoError(f"out of GPU memory with {tokens.numel()} tokens per batch; "
                                     "try a smaller --toks-per-batch") from None
            return (w.to(self.device) @ hidden.reshape(-1, self.dim).float()).cpu().numpy()

    def _batch_results(self, jobs, forward, workers):
        """Run ``jobs`` (args of ``_run_batch``) and yield their results in order, up to
        ``workers`` batches at a time, each worker thread on its share of torch's threads."""
        if workers == 1:
            for job in jobs:
                yield self._run_batch(forward, *job)
            return
        from concurrent.futures import ThreadPoolExecutor

        # torch's thread count is per calling thread: set it in each worker
        with ThreadPoolExecutor(workers, thread_name_prefix="esm",
                                initializer=torch.set_num_threads, initargs=(self._threads_per_worker,)) as pool:
            pending = []
            try:
                for job in jobs:
                    pending.append(pool.submit(self._run_batch, forward, *job))
                    if len(pending) > workers:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:
                for f in pending:
                    f.cancel()

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
        packed = self._cpu and not stock  # fair-esm's own forward needs one sequence per row
        plan = (plan_packed if packed else plan_batches)([p[0] for p in pieces], budget)
        jobs = (([sequences[pieces[j][1]][pieces[j][2]:pieces[j][3]] for j in members], width,
                 [pieces[j][4] for j in members], packed) for width, members in plan)
        sums = {}
        # fair-esm's rotary module caches its tables per length: not safe to share between threads
        results = self._batch_results(jobs, self.stock_forward if stock else self.forward, 1 if stock else self.workers)
        for (_, members), pooled in zip(plan, results):
            done = []
            for j, row in zip(members, pooled):
                i = pieces[j][1]
                sums[i] = sums[i] + row if i in sums else row.astype(np.float64)
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
