"""A full training step (forward, loss of eq. 5, backward, Adam) of ``grafusion_base``-shaped models.

    python tests/benchmarks/bench_step.py [--arch grafusion_base] [--length 128] [--batch 2]
        [--vocab 250002] [--device cuda] [--fp16] [--output tests/benchmarks/RESULTS.md]

Variants: ``--no-fusion`` (the target stream alone), ``--graph none`` (fusion with G = 0),
``align`` (+a), ``align,dep`` (+ad).  Inputs are random tokens with the graph shapes of
``bench_layers.graph_batch`` (1.3 tokens per word, one alignment link per source word, a
dependency tree per language).
"""
import argparse
import os
import statistics
import sys
import time

import torch
from omegaconf import OmegaConf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layers import emit, graph_batch  # noqa: E402

VARIANTS = {"no-fusion": dict(no_fusion=True, graph="none"), "none": dict(graph="none"),
            "align": dict(graph="align"), "align,dep": dict(graph="align,dep")}


def build(arch, variant, vocab):
    import argparse as ap

    from fairseq.data import Dictionary
    from fairseq.models import ARCH_CONFIG_REGISTRY

    from fairseq_grafusion.models.grafusion import GraFusionConfig, GraFusionModel

    args = ap.Namespace(**VARIANTS[variant])
    ARCH_CONFIG_REGISTRY[arch](args)
    cfg = OmegaConf.merge(OmegaConf.structured(GraFusionConfig()), vars(args))
    d = Dictionary()
    for i in range(vocab - len(d)):
        d.add_symbol(f"w{i}")
    return GraFusionModel(cfg, d)


def step_fn(model, optimizer, batch, targets, dtype):
    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=batch["src_tokens"].device.type, dtype=dtype,
                            enabled=dtype != torch.float32):
            out = model(**batch)
            loss = sum(torch.nn.functional.cross_entropy(out[k].float(), targets)
                       for k in ("tgt_start", "tgt_end", "src_start", "src_end") if k in out)
        loss.backward()
        optimizer.step()
    return step


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="grafusion_base")
    p.add_argument("--length", type=int, default=128, help="l, tokens per language stream")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--vocab", type=int, default=250002)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--fp16", action="store_true", help="autocast to fp16 (CUDA)")
    p.add_argument("--output", help="append the table (markdown) to this file")
    args = p.parse_args()
    import fairseq_grafusion.plugin  # noqa: F401

    device = torch.device(args.device)
    dtype = torch.float16 if args.fp16 else torch.float32
    word_ids, align, dep, seq, _ = graph_batch(args.batch, args.length, device)
    tokens = torch.randint(4, args.vocab, (args.batch, args.length), device=device)
    batch = dict(src_tokens=tokens, tgt_tokens=tokens.flip(1), word_ids=word_ids,
                 align_edges=align, dep_edges=dep)
    targets = torch.randint(0, args.length, (args.batch,), device=device)
    rows = []
    for variant in VARIANTS:
        torch.manual_seed(0)
        model = build(args.arch, variant, args.vocab).to(device)
        params = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
        step = step_fn(model, optimizer, batch, targets, dtype)
        times = []
        for i in range(args.repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else float("nan")
        rows.append((variant, params / 1e6, statistics.median(times) * 1e3, peak))
        print("%-10s %7.1fM params  %8.1f ms/step  peak %.2f GiB" % rows[-1], flush=True)
        del model, optimizer
    base = rows[0][2]
    lines = [f"{args.arch}, l={args.length}, batch {args.batch}, vocab {args.vocab}, "
             f"{args.device}{' fp16' if args.fp16 else ''}:", "",
             "| variant | parameters (M) | step (ms) | vs --no-fusion | peak CUDA memory (GiB) |",
             "| --- | --- | --- | --- | --- |"]
    lines += ["| %s | %.1f | %.0f | %.2f | %.2f |" % (v, n, t, t / base, m) for v, n, t, m in rows]
    emit("\n".join(lines), args.output, end="\n\n")


if __name__ == "__main__":
    main()
