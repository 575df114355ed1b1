"""Validation at MLQA's size (issue 22): the per-language F1 / EM decoding of ``valid_step``
against the forward passes it rides on.

    python tests/benchmarks/bench_valid_decoding.py --data combined [--arch grafusion_base]
        [--forward-batches 6] [--device cuda]

``--data`` is a ``combine`` directory whose ``valid`` split holds several languages (issue 22:
7 x about 1,000 questions).  Built as ``fairseq-train --eval-span-f1`` builds it (the task's
``LanguageSpanScorer``), the script times

* **decoding** of the whole split: every validation batch (``--batch-size 8``) through
  ``scorer.decode_and_score`` with start / end logits of the right shapes (random: decoding does
  the same work whatever the values), i.e. all of one validation's decoding;
* **forward passes** of the model (random weights, eval mode, no grad) on the first
  ``--forward-batches`` batches, per window, extrapolated to the split's windows.
"""
import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--arch", default="grafusion_base")
    p.add_argument("--graph", default="align,dep")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--forward-batches", type=int, default=6)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = p.parse_args()
    sys.path.insert(0, REPO)
    import torch
    from fairseq import options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_grafusion.plugin  # noqa: F401

    ns = options.parse_args_and_arch(options.get_training_parser(), [
        args.data, "--user-dir", os.path.join(REPO, "fairseq_grafusion"), "--task", "xmrc_span",
        "--criterion", "xmrc_span", "--arch", args.arch, "--graph", args.graph, "--eval-span-f1",
        "--batch-size", str(args.batch_size), *(["--cpu"] if args.device == "cpu" else [])])
    cfg = convert_namespace_to_omegaconf(ns)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("valid", combine=False, epoch=1)
    dataset = task.dataset("valid")
    scorer = task.span_scorers["valid"]
    batches = list(task.get_batch_iterator(
        dataset=dataset, max_sentences=args.batch_size, max_positions=None, ignore_invalid_inputs=True,
        seed=1, num_workers=0, epoch=1).next_epoch_itr(shuffle=False))
    gen = torch.Generator().manual_seed(0)
    decode = 0.0
    windows = 0
    for batch in batches:
        tokens = batch["net_input"]["tgt_tokens"]
        out = {k: torch.randn(tokens.shape, generator=gen) for k in ("tgt_start", "tgt_end")}
        pad = tokens.eq(task.dictionary.pad())
        for k in out:
            out[k] = out[k].masked_fill(pad, float("-inf"))
        start = time.perf_counter()
        scorer.decode_and_score(batch, out)
        decode += time.perf_counter() - start
        windows += tokens.size(0)
    model = task.build_model(cfg.model).eval()
    if args.device == "cuda":
        model = model.cuda()
    forward, timed = 0.0, 0
    with torch.no_grad():
        for batch in batches[:args.forward_batches]:
            net_input = batch["net_input"]
            if args.device == "cuda":
                net_input = utils.move_to_cuda(net_input)
            start = time.perf_counter()
            model(**net_input)
            if args.device == "cuda":
                torch.cuda.synchronize()
            forward += time.perf_counter() - start
            timed += net_input["tgt_tokens"].size(0)
    per_window = forward / timed
    total_forward = per_window * windows
    langs = list(getattr(scorer, "languages", []))
    print(f"{args.data}: valid split, {windows} windows"
          f"{', languages ' + ' '.join(map(str, langs)) if langs else ''}; {args.arch} {args.graph} on {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"decoding (decode_and_score, every batch of the split): {decode:.2f} s "
          f"({1000 * decode / windows:.2f} ms per window)")
    print(f"forward: {per_window:.3f} s per window over {timed} windows -> {total_forward:.0f} s for the split")
    print(f"decoding / (forward + decoding) = {100 * decode / (total_forward + decode):.2f}%")


if __name__ == "__main__":
    main()
