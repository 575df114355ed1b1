"""What one SA-Transformer layer (+ad graph) costs next to a plain transformer layer.

    python tests/benchmarks/bench_layers.py [--dim 768 --ffn 3072 --heads 12] [--lengths 64 128 256 384]
        [--batches 1 4] [--device cuda] [--fp16] [--sdpa math] [--threads 1] [--baseline CHECKOUT]
        [--output tests/benchmarks/RESULTS.md]
    python tests/benchmarks/bench_layers.py --bias-step [--threads 1] [--baseline CHECKOUT] ...

``--baseline CHECKOUT`` also times the SA layer of another checkout's modules (same weights),
interleaved with the others.  ``--bias-step``: inference (eval, no grad) of what the graph adds to
one SA layer, the bias ``G``
(eq. 6-11, clamped) and the biased attention with the padding mask, next to the plain layer's
attention; ``--baseline CHECKOUT`` times the same step of another checkout's modules, interleaved.

Both layers run forward + backward on the same ``2l`` tokens of ``[S; T]``.  Words cover 1.3 tokens
on average (a typical SentencePiece rate), every source word has one alignment link, each language
has a dependency tree (words - 1 arcs).  Reported: median time, activation memory (CUDA: peak
allocated; CPU: bytes autograd saves for the backward pass), the measured time ratio and the
ratio that counting FLOPs predicts (see ``flops``), and the floor the SA-Graph's six ``d x d``
maps set by themselves (timed alone, interleaved with the layers).
"""
import argparse
import os
import statistics
import time

import torch

from fairseq_grafusion.modules import TransformerLayer

TOKENS_PER_WORD = 1.3


def graph_batch(bsz, length, device, seed=0):
    """word_ids over [S; T] (2l tokens) and padded alignment / dependency edges."""
    g = torch.Generator().manual_seed(seed)
    seq = 2 * length
    words_per_side = int(length / TOKENS_PER_WORD)
    # token t of a side belongs to word floor(t * words / l): ~1.3 tokens per word
    side = (torch.arange(length) * words_per_side // length)
    word_ids = torch.cat([side, side + words_per_side]).repeat(bsz, 1)
    src = torch.arange(words_per_side)
    align = torch.stack([src, words_per_side + torch.randperm(words_per_side, generator=g)], 1)
    parents = [torch.randint(0, max(i, 1), (1,), generator=g).item() for i in range(1, words_per_side)]
    tree = torch.tensor([[i, p] for i, p in zip(range(1, words_per_side), parents)])
    dep = torch.cat([tree, tree + words_per_side])
    return (word_ids.to(device), align.repeat(bsz, 1, 1).to(device),
            dep.repeat(bsz, 1, 1).to(device), seq, 2 * words_per_side)


def flops(seq, words, dim, ffn, align_edges, dep_edges):
    """Forward multiply-adds x 2 of one plain layer and of the SA-Graph's extra work (eq. 7-11).

    Plain: Q, K, V, out projections 8Td^2, attention scores and weighted sum 4T^2d, FFN 4Tdf.
    Graph: eq. 9's four d x d maps 8Wd^2, eq. 10's W3 2Wd^2 and W4 scores 4(W + 2E_d)d, eq. 7's
    W_att 2Wd^2, the message sums 2(2E_a + 2E_d + W)d, and G itself 2W^2d (one score matrix over
    word pairs, gathered to the token pairs).  Pooling and gathers are memory moves, not counted.
    """
    plain = 8 * seq * dim ** 2 + 4 * seq ** 2 * dim + 4 * seq * dim * ffn
    graph = (12 * words * dim ** 2 + 4 * (words + 2 * dep_edges) * dim
             + 2 * (2 * align_edges + 2 * dep_edges + words) * dim + 2 * words ** 2 * dim)
    return plain, graph


def measure(fn, device, repeats):
    """Median seconds of ``repeats`` calls after one warm-up, and the memory of the last call."""
    times, mem = [], 0
    for i in range(repeats + 1):
        saved = [0]

        def pack(t):
            saved[0] += t.numel() * t.element_size()
            return t

        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
            mem = torch.cuda.max_memory_allocated() - base
        else:
            mem = saved[0]
        if i:  # the first run warms up
            times.append(time.perf_counter() - start)
    return (statistics.median(times) if times else None), mem


def profile(fn, device, title, rows=25):
    """Print the operators that take the most device time in one call of ``fn``."""
    fn()
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"== {title}\n" + prof.key_averages().table(sort_by=key, row_limit=rows), flush=True)


def run(args):
    """Forward + backward of the plain and the SA layer (and, with ``--baseline``, the SA layer of
    another checkout's modules, same weights), timed interleaved: each repeat runs every layer
    once, alternating the order; ratios are per repeat, then the median."""
    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    import fairseq_grafusion.modules as current

    def build_sa(modules):
        return modules.SATransformerLayer(args.dim, args.ffn, args.heads,
                                          graph=modules.SAGraph(args.dim, True, True)).to(device, dtype)

    plain = TransformerLayer(args.dim, args.ffn, args.heads).to(device, dtype)
    layers = {"sa": build_sa(current)}
    layers["sa"].load_state_dict(plain.state_dict(), strict=False)
    if args.baseline:
        layers["baseline"] = build_sa(load_modules(args.baseline))
        layers["baseline"].load_state_dict(layers["sa"].state_dict())
    rows = []
    for length in args.lengths:
        for bsz in args.batches:
            word_ids, align, dep, seq, words = graph_batch(bsz, length, device)
            x = torch.randn(bsz, seq, args.dim, device=device, dtype=dtype, requires_grad=True)
            pad = torch.zeros(bsz, seq, dtype=torch.bool, device=device)
            graph_input = dict(word_ids=word_ids, align_edges=align, dep_edges=dep)

            def step_plain():
                out, _ = plain(x, pad)
                out.float().sum().backward()

            def step_sa(layer):
                def step():
                    out, _, _ = layer(x, pad, graph_input)
                    out.float().sum().backward()
                return step

            maps = [torch.nn.Linear(args.dim, args.dim, bias=False).to(device, dtype) for _ in range(6)]
            h = torch.randn(bsz * (words + 1), args.dim, device=device, dtype=dtype, requires_grad=True)

            def step_maps():  # the six d x d maps of eq. 7, 9, 10 over the word rows, nothing else
                sum(m(h).float().sum() for m in maps).backward()

            steps = {"plain": step_plain, **{name: step_sa(layer) for name, layer in layers.items()},
                     "maps": step_maps}
            if args.profile:
                profile(steps["sa"], device, f"SA layer +ad, l={length} B={bsz}")
            mem = {name: measure(fn, device, 0)[1] for name, fn in steps.items()}  # also warms up
            times = {name: [] for name in steps}
            for r in range(args.repeats):
                for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    steps[name]()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[name].append(time.perf_counter() - start)
            med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
            ratio = {name: statistics.median(a / b for a, b in zip(times[name], times["plain"]))
                     for name in [*layers, "maps"]}
            f_plain, f_graph = flops(seq, words, args.dim, args.ffn, align.size(1), dep.size(1))
            row = (length, bsz, med["plain"], med["sa"], ratio["sa"], 1 + ratio["maps"],
                   (f_plain + f_graph) / f_plain, mem["plain"] / 2 ** 20, mem["sa"] / 2 ** 20)
            if args.baseline:
                row += (med["baseline"], ratio["baseline"])
            rows.append(row)
            print("l=%d B=%d plain %.1f ms  SA %.1f ms  ratio %.2f (the six maps' floor %.2f, FLOPs "
                  "predict %.2f)  mem %.1f / %.1f MiB" % row[:9]
                  + ("  baseline SA %.1f ms, ratio %.2f" % row[9:] if args.baseline else ""), flush=True)
    return rows


def load_modules(checkout):
    """``fairseq_grafusion.modules`` of another checkout, as a separate package (its modules import
    only each other, torch and fairseq, so nothing is registered twice)."""
    import importlib.util
    import sys

    path = os.path.join(checkout, "fairseq_grafusion", "modules")
    spec = importlib.util.spec_from_file_location("baseline_modules", os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_modules"] = module
    spec.loader.exec_module(module)
    return module


def run_bias_step(args):
    """Inference time of ``G`` + the biased attention (the SA layer's extra work) per layer; with
    ``--baseline``, interleaved with the same step of another checkout's modules."""
    import inspect

    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32

    def build(modules):
        torch.manual_seed(0)
        layer = modules.SATransformerLayer(args.dim, args.ffn, args.heads,
                                           graph=modules.SAGraph(args.dim, True, True))
        return layer.to(device, dtype).eval()

    import fairseq_grafusion.modules as current

    layers = {"current": build(current)}
    if args.baseline:
        layers["baseline"] = build(load_modules(args.baseline))
        layers["baseline"].load_state_dict(layers["current"].state_dict())
    rows = []
    for length in args.lengths:
        for bsz in args.batches:
            word_ids, align, dep, seq, _ = graph_batch(bsz, length, device)
            x = torch.randn(bsz, seq, args.dim, device=device, dtype=dtype)
            pad = torch.zeros(bsz, seq, dtype=torch.bool, device=device)
            pad[1:, seq - seq // 10:] = True  # some padding in every example but the first
            graph_input = dict(word_ids=word_ids.masked_fill(pad, -1), align_edges=align,
                               dep_edges=dep)

            def step(sa):
                scratch = "bias_is_scratch" in inspect.signature(sa.self_attn.forward).parameters

                def bias_and_attention():
                    with torch.no_grad():
                        G = sa.graph(x, **graph_input)
                        if scratch:
                            sa.self_attn(x, pad, G, False, True)
                        else:
                            sa.self_attn(x, pad, G)
                return bias_and_attention

            def attention_only():
                with torch.no_grad():
                    layers["current"].self_attn(x, pad)

            steps = {name: step(sa) for name, sa in layers.items()}
            steps["plain"] = attention_only
            times = {name: [] for name in steps}
            for fn in steps.values():  # warm-up
                fn()
            for r in range(args.repeats):
                for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
                    start = time.perf_counter()
                    steps[name]()
                    times[name].append(time.perf_counter() - start)
            med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
            row = (length, bsz, med["plain"], med["current"])
            if args.baseline:
                ratios = [a / b for a, b in zip(times["current"], times["baseline"])]
                row += (med["baseline"], statistics.median(ratios), min(ratios))
            rows.append(row)
            print("l=%d B=%d: " % row[:2] + ", ".join("%s %.1f ms" % kv for kv in med.items()),
                  flush=True)
    return rows


def run_bias_copies(args):
    """The bias construction alone, written out: ``G = p p^T`` (bmm), clamp, -inf on padded keys
    (+ the attention), with copies (training's path) and in place (inference's)."""
    import torch.nn.functional as F

    rows = []
    head_dim = args.dim // args.heads
    for length in args.lengths:
        for bsz in args.batches:
            seq = 2 * length
            q, k, v = (torch.randn(bsz, args.heads, seq, head_dim) for _ in range(3))
            p_tok = torch.randn(bsz, seq, args.dim) * 0.05
            pad = torch.zeros(bsz, seq, dtype=torch.bool)
            pad[1:, seq - seq // 10:] = True
            pad = pad[:, None, None, :]

            def build(in_place, attend):
                def step():
                    with torch.no_grad():
                        G = torch.bmm(p_tok, p_tok.transpose(1, 2))
                        G = G.clamp_(-50, 50) if in_place else G.clamp(-50, 50)
                        mask = G.unsqueeze(1)
                        mask = (mask.masked_fill_ if in_place else mask.masked_fill)(pad, float("-inf"))
                        if attend:
                            F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                return step

            row = [length, bsz]
            for attend in (False, True):
                steps = [build(False, attend), build(True, attend)]
                times = [[], []]
                for fn in steps:
                    fn()
                for r in range(args.repeats):
                    for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                        start = time.perf_counter()
                        steps[i]()
                        times[i].append(time.perf_counter() - start)
                ratios = [b / a for a, b in zip(*times)]
                row += [statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3,
                        statistics.median(ratios)]
            rows.append(tuple(row))
            print("l=%d B=%d: construction %.1f -> %.1f ms (%.2f), with attention %.1f -> %.1f ms "
                  "(%.2f)" % rows[-1], flush=True)
    lines = ["| l | batch | G, clamp, mask: copies (ms) | in place (ms) | ratio | "
             "+ attention: copies (ms) | in place (ms) | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += ["| %d | %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |" % r for r in rows]
    return "\n".join(lines)


def bias_table(rows, args):
    import fairseq_grafusion

    where = os.path.dirname(os.path.dirname(fairseq_grafusion.__file__))
    lines = [f"(current: fairseq_grafusion from {where}"
             + (f"; baseline: {args.baseline}" if args.baseline else "")
             + f"; {torch.get_num_threads()} thread(s); median of {args.repeats} interleaved runs)", ""]
    head = "| l | batch | plain attention (ms) | G + biased attention (ms) |"
    rule = "| --- | --- | --- | --- |"
    fmt = "| %d | %d | %.1f | %.1f |"
    if args.baseline:
        head += " baseline: G + biased attention (ms) | ratio median | ratio min |"
        rule += " --- | --- | --- |"
        fmt += " %.1f | %.2f | %.2f |"
    lines += [head, rule] + [fmt % r for r in rows]
    return "\n".join(lines)


def table(rows, args):
    mem = "peak CUDA memory (MiB)" if args.device.startswith("cuda") else "saved activations (MiB)"
    head = (f"| l | batch | plain layer (ms) | SA layer +ad (ms) | time ratio | floor: 1 + six maps "
            f"/ plain | FLOP ratio | {mem}: plain | SA |")
    rule = "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    fmt = "| %d | %d | %.1f | %.1f | %.2f | %.2f | %.2f | %.1f | %.1f |"
    if args.baseline:
        head += " baseline SA layer (ms) | baseline time ratio |"
        rule += " --- | --- |"
        fmt += " %.1f | %.2f |"
    lines = [f"({torch.get_num_threads()} thread(s); median of {args.repeats} interleaved runs; "
             f"time ratio = median over the runs of SA / plain; floor: 1 + the median ratio of the six "
             f"d x d maps of eq. 7, 9 and 10 alone (forward + backward over the word rows) to the "
             f"plain layer, what SA / plain cannot go below while they are computed"
             + (f"; baseline: the SA layer of {args.baseline}" if args.baseline else "") + ")", "",
             head, rule]
    lines += [fmt % r for r in rows]
    return "\n".join(lines)


def sdpa_backend(name):
    """A context forcing one backend of ``F.scaled_dot_product_attention`` (or none)."""
    import contextlib

    if name == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel({"math": SDPBackend.MATH, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                        "flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}[name])


def emit(text, output=None, end="\n"):
    """Print a result table and append it to ``output`` (markdown) if given."""
    print(text)
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(text + end)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--ffn", type=int, default=3072)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 384])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--profile", action="store_true", help="print the costliest operators of "
                   "one SA-layer step per size")
    p.add_argument("--sdpa", choices=["default", "math", "efficient", "flash", "cudnn"],
                   default="default", help="force one scaled-dot-product-attention backend")
    p.add_argument("--output", help="append the table (markdown) to this file")
    p.add_argument("--bias-step", action="store_true",
                   help="inference of G + biased attention instead of forward + backward")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--baseline", metavar="CHECKOUT",
                   help="also time the SA layer (or, with --bias-step, G + the biased attention) of "
                   "another checkout's modules, interleaved")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.bias_step:
        emit(bias_table(run_bias_step(args), args), args.output)
        emit("\n" + run_bias_copies(args), args.output)
        return
    with sdpa_backend(args.sdpa):
        rows = run(args)
    title = f"{args.device}{' fp16' if args.fp16 else ''}, attention backend: {args.sdpa}"
    if args.device.startswith("cuda"):
        title = f"{torch.cuda.get_device_name()} ({title})"
    emit(title + "\n\n" + table(rows, args), args.output, end="\n\n")


if __name__ == "__main__":
    main()
