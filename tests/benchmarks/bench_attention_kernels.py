"""Which scaled-dot-product-attention kernel runs with the SA-Graph's additive bias ``G``, and
what each kernel costs (forward + backward, the bias included in the gradient).

    python tests/benchmarks/bench_attention_kernels.py [--lengths 768 761] [--batch 4]
        [--heads 12 --head-dim 64] [--dtype fp16 bf16] [--output RESULTS.md]

The inputs are those of ``SelfAttention`` in a training step: Q, K, V (B, H, T, d_k), the mask
``G`` (B, 1, T, T) broadcast over heads with -inf on padded keys, attention dropout 0.1.  For every
backend (flash, memory-efficient, cuDNN, math) the script says whether it accepts these inputs
and times it; ``default`` is what ``F.scaled_dot_product_attention`` picks by itself, and the
kernel names the profiler sees tell which one that is.  It also runs one real
:class:`~fairseq_grafusion.modules.SATransformerLayer` (graph included) under the profiler.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
KERNEL_HINTS = (("flash", "flash"), ("efficient", "fmha"), ("efficient", "efficient"),
                ("cudnn", "cudnn"), ("math", "softmax"))


def inputs(bsz, heads, length, head_dim, dtype, device, pad=16):
    torch.manual_seed(0)
    q, k, v = (torch.randn(bsz, heads, length, head_dim, device=device, dtype=dtype,
                           requires_grad=True) for _ in range(3))
    bias = (torch.randn(bsz, length, length, device=device, dtype=dtype) * 0.5).requires_grad_()
    padding = torch.zeros(bsz, 1, 1, length, dtype=torch.bool, device=device)
    padding[1:, ..., length - pad:] = True  # some examples shorter, as in a real batch
    return q, k, v, bias, padding


def step(q, k, v, bias, padding, dropout):
    mask = bias.unsqueeze(1).masked_fill(padding, float("-inf"))  # as SelfAttention builds it
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    out.float().sum().backward()


def timed(fn, repeats):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def kernel_names(fn):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [e.key for e in prof.key_averages()]


def which(names):
    low = " ".join(names).lower()
    for name, hint in KERNEL_HINTS:
        if hint in low:
            return name
    return "?"


def run(args):
    rows = []
    for dtype_name in args.dtype:
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
        for length in args.lengths:
            tensors = inputs(args.batch, args.heads, length, args.head_dim, dtype, "cuda")
            fn = lambda: step(*tensors, args.dropout)  # noqa: E731
            for name in ["default"] + list(BACKENDS):
                ctx = sdpa_kernel(BACKENDS[name]) if name in BACKENDS else None
                try:
                    if ctx:
                        with ctx:
                            ms = timed(fn, args.repeats)
                            names = kernel_names(fn)
                    else:
                        ms = timed(fn, args.repeats)
                        names = kernel_names(fn)
                    status = "runs"
                except RuntimeError as e:
                    ms, names, status = float("nan"), [], "refused: " + str(e).splitlines()[0][:90]
                picked = which(names) if names else "-"
                rows.append((dtype_name, length, name, status, picked, ms))
                print(rows[-1], flush=True)
    return rows


def layer_profile(args):
    """The real SA layer (+ad graph) in a training step: the attention kernel it runs."""
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_layers import graph_batch

    from fairseq_grafusion.modules import SAGraph, SATransformerLayer

    dim = args.heads * args.head_dim
    out = []
    for dtype in (torch.float16, torch.bfloat16):
        layer = SATransformerLayer(dim, 4 * dim, args.heads, graph=SAGraph(dim)).cuda().to(dtype)
        word_ids, align, dep, seq, _ = graph_batch(args.batch, args.lengths[0] // 2, "cuda")
        x = torch.randn(args.batch, seq, dim, device="cuda", dtype=dtype, requires_grad=True)
        pad = torch.zeros(args.batch, seq, dtype=torch.bool, device="cuda")
        graph_input = dict(word_ids=word_ids, align_edges=align, dep_edges=dep)

        def fn():
            y, _, _ = layer(x, pad, graph_input)
            y.float().sum().backward()

        fn()
        names = kernel_names(fn)
        attn = [n for n in names if any(h in n.lower() for _, h in KERNEL_HINTS[:-1])]
        out.append((str(dtype), which(names), attn[:3]))
        print("SA layer", out[-1], flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[768, 761])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--dtype", nargs="+", default=["fp16", "bf16"])
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--output", help="append the table (markdown) to this file")
    args = p.parse_args()
    rows = run(args)
    layers = layer_profile(args)
    lines = [f"{torch.cuda.get_device_name()}, torch {torch.__version__}, B={args.batch}, "
             f"H={args.heads}, d_k={args.head_dim}, dropout {args.dropout}, bias (B,1,T,T) with "
             "-inf padding, forward + backward:", "",
             "| dtype | T | backend asked | status | kernel seen | fwd+bwd (ms) |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| %s | %d | %s | %s | %s | %.2f |" % r for r in rows]
    lines += ["", "SA layer (+ad) in a training step: " + "; ".join(
        f"{d}: {k} ({', '.join(n)})" for d, k, n in layers)]
    text = "\n".join(lines)
    print(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(text + "\n\n")


if __name__ == "__main__":
    main()
