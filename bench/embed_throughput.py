"""ESM-2 embedding throughput: fair-esm's stock path versus `genepheno embed`'s path, side by side.

Same random-weight ESM-2 models (t6 and t12 architectures, saved in fair-esm's released checkpoint
layout), same sequences (log-normal lengths, median 400, sigma 0.8, clipped to 30..1022, residues
drawn from the human background composition). Each path runs in its own subprocess, so its peak
RSS is its own:

- stock: what fair-esm's scripts/extract.py does, one sequence at a time, fp32: the local loader
  (under the weights-only allow-list torch >= 2.6 needs), the batch converter, ``model(toks,
  repr_layers=[L])`` under ``torch.no_grad()``, mean over residue positions.
- genepheno: ``load_encoder(weights=...)`` + ``embed_sequences`` (length-sorted token-budget
  batches, SDPA attention), in --dtype (bf16 by default) and again in fp32 for the equality check.

Prints residues/s, seconds, CPU seconds and peak RSS of each path, the max abs difference of the
embeddings against stock, the load average (the machine may be shared), and last
``speedup_t12=<genepheno residues/s / stock residues/s>``.

    python bench/embed_throughput.py [--n 200] [--archs t6,t12] [--dtype bf16] [--toks-per-batch 4096]
    python bench/embed_throughput.py --device cuda --archs t33 --toks-per-batch 16384   # GPU check
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARCHS = {"t6": ("esm2_t6_8M_UR50D", 6, 320, 20), "t12": ("esm2_t12_35M_UR50D", 12, 480, 20),
         "t30": ("esm2_t30_150M_UR50D", 30, 640, 20), "t33": ("esm2_t33_650M_UR50D", 33, 1280, 20)}


def make_sequences(n, seed):
    from genepheno.embed.kmer import _BACKGROUND, STANDARD

    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(np.exp(rng.normal(math.log(400), 0.8, n))), 30, 1022).astype(int)
    letters = np.array(list(STANDARD))
    p = _BACKGROUND / _BACKGROUND.sum()
    return ["".join(rng.choice(letters, size=L, p=p)) for L in lengths]


def save_checkpoint(path, layers, dim, heads, seed):
    """A random-weight ESM-2 in fair-esm's released layout (+ its contact-regression file)."""
    import torch
    from esm.data import Alphabet
    from esm.model.esm2 import ESM2

    torch.manual_seed(seed)
    m = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=Alphabet.from_architecture("ESM-1b"))
    with torch.no_grad():
        for name, p in m.named_parameters():  # move layer norms and biases off their 1/0 initial values
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    state = {}
    for k, v in m.state_dict().items():
        if not k.startswith("contact_head"):
            state[("encoder." if k.startswith("lm_head") else "encoder.sentence_encoder.") + k] = v
    cfg = argparse.Namespace(encoder_layers=layers, encoder_embed_dim=dim, encoder_attention_heads=heads,
                             token_dropout=True)
    torch.save({"model": state, "cfg": {"model": cfg}}, path)
    reg = {k: v for k, v in m.state_dict().items() if k.startswith("contact_head")}
    torch.save({"model": reg}, str(path)[:-3] + "-contact-regression.pt")


# ---------------------------------------------------------------- workers (subprocesses)

def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker_stock(ckpt, seqs, layers, device):
    import argparse as ap

    import esm
    import torch

    t = time.time()
    with torch.serialization.safe_globals([ap.Namespace]):
        model, alphabet = esm.pretrained.load_model_and_alphabet_local(ckpt)
    model.eval().to(device)
    batch_converter = alphabet.get_batch_converter(1022)
    load_s = time.time() - t
    out = np.empty((len(seqs), model.embed_dim), dtype=np.float32)
    c0, t0 = os.times(), time.time()
    with torch.no_grad():
        for i, s in enumerate(seqs):
            _, _, toks = batch_converter([(str(i), s)])
            rep = model(toks.to(device), repr_layers=[layers], return_contacts=False)["representations"][layers]
            out[i] = rep[0, 1:len(s) + 1].mean(0).cpu().numpy()
    _sync(device)
    return out, load_s, time.time() - t0, os.times(), c0


def worker_ours(ckpt, seqs, dtype, toks_per_batch, device):
    from genepheno.embed import embed_sequences, load_encoder

    t = time.time()
    enc = load_encoder(weights=ckpt, dtype=dtype, device=device)
    load_s = time.time() - t
    if device.startswith("cuda"):  # warm-up (CUDA context, kernels) outside the timing
        embed_sequences(enc, seqs[:8], toks_per_batch=toks_per_batch)
        _sync(device)
    c0, t0 = os.times(), time.time()
    out = embed_sequences(enc, seqs, toks_per_batch=toks_per_batch)
    _sync(device)
    return out, load_s, time.time() - t0, os.times(), c0


def run_worker(args):
    seqs = json.loads(Path(args.seqs).read_text())
    if args.worker == "stock":
        out, load_s, sec, c1, c0 = worker_stock(args.ckpt, seqs, args.layers, args.device)
    else:
        out, load_s, sec, c1, c0 = worker_ours(args.ckpt, seqs, args.dtype, args.toks_per_batch, args.device)
    np.save(args.out, out)
    res = sum(map(len, seqs))
    if args.device.startswith("cuda"):
        import torch
        print(f"# {args.worker} {args.dtype}: peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB",
              file=sys.stderr)
    print(json.dumps(dict(seconds=sec, load_s=load_s, residues=res, res_per_s=res / sec,
                          cpu_s=(c1.user - c0.user) + (c1.system - c0.system), sys_s=c1.system - c0.system,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


# ---------------------------------------------------------------- driver

def spawn(tmp, name, worker, ckpt, seqs_path, layers, dtype, tpb, device):
    out = Path(tmp) / f"{name}.npy"
    cmd = [sys.executable, __file__, "--worker", worker, "--ckpt", str(ckpt), "--seqs", str(seqs_path),
           "--layers", str(layers), "--dtype", dtype, "--toks-per-batch", str(tpb), "--out", str(out),
           "--device", device]
    load = os.getloadavg()[0]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{name} failed:\n{r.stderr}")
    for line in r.stderr.splitlines():
        if line.startswith("# "):
            print(line)
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    stats["load_before"] = load
    return stats, np.load(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="sequences [200]")
    ap.add_argument("--archs", default="t6,t12")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp32", "fp16"], help="genepheno's dtype [bf16]")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (both paths) [cpu]")
    ap.add_argument("--toks-per-batch", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=["stock", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--ckpt", help=argparse.SUPPRESS)
    ap.add_argument("--seqs", help=argparse.SUPPRESS)
    ap.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return run_worker(args)

    import torch

    seqs = make_sequences(args.n, args.seed)
    lengths = np.array([len(s) for s in seqs])
    print(f"# {len(seqs)} sequences, {lengths.sum()} residues, length median {np.median(lengths):.0f}, "
          f"mean {lengths.mean():.0f}, max {lengths.max()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; device {args.device}; "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r}")
    print(f"# genepheno path: --dtype {args.dtype} --toks-per-batch {args.toks_per_batch}; stock path: one "
          f"sequence at a time, fp32")
    speedups = {}
    with tempfile.TemporaryDirectory() as tmp:
        seqs_path = Path(tmp) / "seqs.json"
        seqs_path.write_text(json.dumps(seqs))
        for arch in args.archs.split(","):
            name, layers, dim, heads = ARCHS[arch]
            ckpt = Path(tmp) / f"{name}.pt"
            save_checkpoint(ckpt, layers, dim, heads, args.seed)
            runs = [("stock", "stock", "fp32"), (f"genepheno-{args.dtype}", "ours", args.dtype)]
            if args.dtype != "fp32":
                runs.append(("genepheno-fp32", "ours", "fp32"))
            results = {}
            for label, worker, dtype in runs:
                results[label] = spawn(tmp, f"{arch}-{label}", worker, ckpt, seqs_path, layers, dtype,
                                       args.toks_per_batch, args.device)
            ref = results["stock"][1]
            print(f"\n{arch} ({name} architecture, random weights, {dim}-d, layer {layers})")
            print(f"  {'path':18s} {'res/s':>8s} {'seconds':>8s} {'cpu_s':>7s} {'sys_s':>6s} {'peak_rss_MB':>11s} "
                  f"{'max_abs_diff':>12s} {'load_avg':>8s}")
            for label, (st, emb) in results.items():
                diff = float(np.abs(emb - ref).max())
                print(f"  {label:18s} {st['res_per_s']:8.0f} {st['seconds']:8.1f} {st['cpu_s']:7.1f} "
                      f"{st['sys_s']:6.1f} {st['peak_rss_mb']:11.0f} {diff:12.2e} {st['load_before']:8.2f}")
            cos = np.sum(results[f"genepheno-{args.dtype}"][1] * ref, 1) / (
                np.linalg.norm(results[f"genepheno-{args.dtype}"][1], axis=1) * np.linalg.norm(ref, axis=1))
            print(f"  genepheno-{args.dtype} vs stock: min cosine {cos.min():.6f}")
            speedups[arch] = results[f"genepheno-{args.dtype}"][0]["res_per_s"] / results["stock"][0]["res_per_s"]
            print(f"  speedup_{arch}={speedups[arch]:.2f}")
    print(f"# load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"speedup_t12={speedups.get('t12', float('nan')):.2f}")  # nan when t12 was not run


if __name__ == "__main__":
    main()
