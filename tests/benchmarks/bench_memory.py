"""Peak memory of a training step: the estimate of :mod:`fairseq_grafusion.memory` and, with
``--measure`` on a GPU, the peak that real steps allocate.

    python tests/benchmarks/bench_memory.py                      # the estimate table
    python tests/benchmarks/bench_memory.py --measure --archs grafusion_base grafusion_large \\
        --batches 1 4 8 [--output tests/benchmarks/RESULTS.md]

The table gives, at ``l`` tokens per stream (2l = 768 by default, the paper's setting), the
activation memory per example with and without ``--checkpoint-activations``, the memory of
parameters + gradients + Adam state under fairseq's ``--fp16`` (FP16Optimizer: fp32 master copy)
and the largest ``--batch-size`` per GPU that fits 16, 40 and 80 GB (10% kept free).  Use
``--update-freq`` to reach the paper's batch (32 / 64) from there.

``--measure`` trains as fairseq's ``--fp16`` does (fp16 model, fp32 master weights and Adam
moments, loss scaling left out), vocabulary 250002, the graph shapes of ``bench_layers``, and
reports ``torch.cuda.max_memory_allocated`` of the second step next to the estimate.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layers import emit, graph_batch  # noqa: E402
from bench_step import build  # noqa: E402

from fairseq_grafusion import memory  # noqa: E402

GIB = 2 ** 30
VARIANT_ARGS = {"align,dep": {}, "none": {"graph": False}, "no-fusion": {"fusion": False}}


def param_count(arch, variant, vocab):
    model = build(arch, variant, vocab)
    return sum(p.numel() for p in model.parameters())


def estimate_table(args):
    lines = [f"Estimate at l = {args.length} tokens per stream (2l = {2 * args.length}), fairseq "
             "--fp16 (fp16 activations, boolean dropout masks, fused attention):", "",
             "| arch | variant | parameters (M) | optimizer | params + grads + Adam (GiB) | "
             "checkpointing | activations per example (GiB) | max batch 16 GB | 40 GB | 80 GB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arch in args.archs:
        for variant in args.variants:
            params = param_count(arch, variant, args.vocab)
            for optimizer in ("fp16", "memory-efficient-fp16"):
                for ckpt in (False, True):
                    kw = dict(arch=arch, checkpoint=ckpt, **VARIANT_ARGS[variant])
                    act = memory.activation_bytes(
                        args.length, prec=memory.Precision(2, 1, "fused"), checkpoint=ckpt,
                        sizes=memory.ARCH_SIZES[arch], **VARIANT_ARGS[variant])
                    fits = [memory.max_batch(gb * 10 ** 9, params, args.length, optimizer, **kw)
                            for gb in (16, 40, 80)]
                    lines.append("| %s | %s | %.1f | --%s | %.2f | %s | %.3f | %d | %d | %d |" % (
                        arch, variant, params / 1e6, optimizer,
                        memory.state_bytes(params, optimizer) / GIB, "yes" if ckpt else "no",
                        act / GIB, *fits))
    return "\n".join(lines)


def measure(args):
    rows = []
    for arch in args.archs:
        for ckpt in (False, True):
            for bsz in args.batches:
                torch.cuda.empty_cache()
                torch.manual_seed(0)
                model = build(arch, "align,dep", args.vocab)
                model.cfg.checkpoint_activations = ckpt
                model = model.cuda().half().train()
                master = [p.detach().float().clone().requires_grad_() for p in model.parameters()]
                optimizer = torch.optim.Adam(master, lr=1e-5)
                word_ids, align, dep, _, _ = graph_batch(bsz, args.length, "cuda")
                tokens = torch.randint(4, args.vocab, (bsz, args.length), device="cuda")
                batch = dict(src_tokens=tokens, tgt_tokens=tokens.flip(1), word_ids=word_ids,
                             align_edges=align, dep_edges=dep)
                target = torch.randint(0, args.length, (bsz,), device="cuda")
                try:
                    for i in range(2):
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        out = model(**batch)
                        loss = sum(torch.nn.functional.cross_entropy(out[k].float(), target)
                                   for k in ("tgt_start", "tgt_end", "src_start", "src_end"))
                        loss.backward()
                        for p, m in zip(model.parameters(), master):
                            m.grad = p.grad.float()
                            p.grad = None
                        optimizer.step()
                        with torch.no_grad():
                            for p, m in zip(model.parameters(), master):
                                p.copy_(m)
                        del out, loss
                        torch.cuda.synchronize()
                    peak = torch.cuda.max_memory_allocated()
                except torch.cuda.OutOfMemoryError:
                    peak = float("nan")
                params = sum(p.numel() for p in model.parameters())
                est = memory.state_bytes(params) + bsz * memory.activation_bytes(
                    args.length, arch, prec=memory.Precision(2, 1, "fused"), checkpoint=ckpt,
                    align_edges=align.size(1), dep_edges=dep.size(1))
                rows.append((arch, "yes" if ckpt else "no", bsz, peak / GIB, est / GIB, peak / est))
                print("%s ckpt=%s B=%d measured %.2f GiB estimate %.2f GiB ratio %.2f" % rows[-1],
                      flush=True)
                del model, master, optimizer
    lines = [f"Measured on {torch.cuda.get_device_name()} (torch {torch.__version__}), l = "
             f"{args.length}, +ad, vocab {args.vocab}, fp16 model + fp32 master and Adam:", "",
             "| arch | checkpointing | batch | peak allocated (GiB) | estimate (GiB) | measured / estimate |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += ["| %s | %s | %d | %.2f | %.2f | %.2f |" % r for r in rows]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", nargs="+", default=["grafusion_base", "grafusion_large"])
    p.add_argument("--variants", nargs="+", default=["align,dep"], choices=list(VARIANT_ARGS))
    p.add_argument("--length", type=int, default=384, help="l, tokens per language stream")
    p.add_argument("--vocab", type=int, default=250002)
    p.add_argument("--measure", action="store_true", help="also measure real steps (CUDA)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--output", help="append the tables (markdown) to this file")
    args = p.parse_args()
    import fairseq_grafusion  # noqa: F401

    emit(estimate_table(args), args.output, end="\n\n")
    if args.measure:
        emit(measure(args), args.output, end="\n\n")


if __name__ == "__main__":
    main()
