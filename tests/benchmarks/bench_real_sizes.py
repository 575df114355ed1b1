"""Real sizes on one machine (issue 22): ``fairseq-train`` from a release of XLM-R's exact shape
(``make_xlmr_release.py``) for a few updates, its wall time, CPU time and peak RSS, per phase,
against the fp32 parameter + gradient + Adam size.

    python tests/benchmarks/make_xlmr_release.py --size base --out xlmr.base-random
    grafusion-preprocess all --out pair --src-lang en --tgt-lang de \\
        --qa train examples/sample/qa/train.en.json examples/sample/qa/train.de.json \\
        --spm xlmr.base-random --dict xlmr.base-random --max-len 384
    python tests/benchmarks/bench_real_sizes.py --release xlmr.base-random --data pair/qa-bin \\
        --arch grafusion_base [--device cuda] [--updates 2]

Phases, from the time stamps of fairseq's own log lines and an RSS sample every 50 ms of the
process (``/proc/PID/status``): *load* (start to "training on"), *first step* (to the first
update's log line), *save* (the update's end to "saved checkpoint"), then a second run that
resumes from ``checkpoint_last.pt`` (*checkpoint load*: start to "loaded checkpoint"; the file
is evicted from the page cache first, as it is before ``torch.load``'s timing), then
``grafusion-predict`` on the data's ``--predict-split`` (its model load and its answers), and
``GraFusionModel.from_pretrained`` plus one ``answer()`` on the split's first question (with
``--priors``, the training run's ``work/alignment.priors``, for a graph model).  The
bound is ``1.3 x (parameters x 16 bytes) + activations`` (fp32 weights, gradients, Adam's two
moments; activations from :mod:`fairseq_grafusion.memory` for batch 1, CPU precision).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from bench_squad_scale import tree_rss  # the benchmarks' one /proc sampler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GIB = 2 ** 30


def run_sampled(cmd, marks):
    """Run ``cmd``; returns (wall s, CPU s, peak RSS, {mark: (seconds, peak RSS up to it)}, output).
    ``marks``: {name: regex} looked for in each output line."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            # VmHWM: the command's own peak so far (per address space, so reset by exec; a child's
            # ru_maxrss is not: it starts from this benchmark's own peak)
            peak[0] = max(peak[0], tree_rss(proc.pid, "VmHWM:"))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seen, lines = {}, []
    for line in proc.stdout:
        lines.append(f"{time.time() - start:7.1f} s | {line}")
        for name, pattern in marks.items():
            if name not in seen and re.search(pattern, line):
                seen[name] = (time.time() - start, peak[0])
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{''.join(lines[-30:])}")
    return time.time() - start, usage.ru_utime + usage.ru_stime, peak[0], seen, lines


def evict(path):
    """Drop ``path`` from the page cache (best effort: a VM's host may still cache it), so that the
    timed reads of a checkpoint all start cold, whatever ran before them."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def train_command(args, save_dir, updates):
    return [sys.executable, "-m", "fairseq_cli.train", args.data, "--user-dir", os.path.join(REPO, "fairseq_grafusion"),
            "--task", "xmrc_span", "--criterion", "xmrc_span", "--arch", args.arch, "--graph", args.graph,
            "--pretrained-xlmr", args.release, "--batch-size", "1", "--optimizer", "adam", "--lr", "1e-5",
            "--max-update", str(updates), "--save-dir", save_dir, "--no-epoch-checkpoints",
            "--disable-validation", "--log-format", "simple", "--log-interval", "1", "--no-progress-bar",
            "--num-workers", "0", "--seed", "1", "--train-subset", "train",
            *(["--cpu"] if args.device == "cpu" else [])]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--release", required=True, help="make_xlmr_release.py's directory")
    p.add_argument("--data", required=True, help="qa-bin binarized with the release's dict.txt")
    p.add_argument("--arch", default="grafusion_base")
    p.add_argument("--graph", default="align,dep")
    p.add_argument("--updates", type=int, default=2)
    p.add_argument("--length", type=int, default=384)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--predict-split", default="valid", help="split of --data for grafusion-predict and the hub")
    p.add_argument("--tgt-lang", default="de", help="the data's target language (for the hub)")
    p.add_argument("--priors", help="alignment.priors of the data's preprocessing (for the hub, graph models)")
    args = p.parse_args()
    sys.path.insert(0, REPO)
    from fairseq_grafusion import memory

    save = tempfile.mkdtemp(prefix="bench-real-sizes-")
    marks = {"loaded": r"training on", "step": r"\| epoch 001:\s+1 /|num_updates 1\b|train_inner",
             "saved": r"(?i)saved checkpoint"}
    wall, cpu, peak, seen, lines = run_sampled(train_command(args, save, args.updates), marks)
    import torch

    ckpt = os.path.join(save, "checkpoint_last.pt")
    state_dict = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["model"]
    params = sum(v.numel() for k, v in state_dict.items() if v.is_floating_point())
    state = params * 16
    act = memory.activation_bytes(args.length, prec=memory.Precision.of("cpu", 4), checkpoint=False,
                                  sizes=memory.ARCH_SIZES[args.arch])
    bound = 1.3 * state + act
    ckpt_size = os.path.getsize(ckpt)
    # checkpoint load: the same command resumes (fairseq reads checkpoint_last.pt), one more update
    evict(ckpt)
    wall2, cpu2, peak2, seen2, lines2 = run_sampled(train_command(args, save, args.updates + 1),
                                               {"restored": r"(?i)loaded checkpoint"})
    del state_dict
    # torch.save / torch.load of the same checkpoint dict, for the 2x target (after the runs:
    # this process's own size is not in their figures anyway, VmHWM being per process)
    whole = torch.load(ckpt, map_location="cpu", weights_only=False)
    t = time.time()
    torch.save(whole, os.path.join(save, "state.pt"))
    t_save = time.time() - t
    del whole
    evict(os.path.join(save, "state.pt"))
    t = time.time()
    torch.load(os.path.join(save, "state.pt"), map_location="cpu", weights_only=False)
    t_load = time.time() - t

    predict = [sys.executable, "-m", "fairseq_grafusion.cli.predict", "--path", ckpt, "--data", args.data,
               "--split", args.predict_split, "--output", os.path.join(save, "predictions.json"),
               "--batch-size", "8", *(["--cpu"] if args.device == "cpu" else [])]
    wall3, cpu3, peak3, seen3, lines3 = run_sampled(predict, {"loaded": r"(?i)loaded|answering|windows"})
    answered = len(__import__("json").load(open(os.path.join(save, "predictions.json"))))
    hub = f"""
import json, os, time
t0 = time.time()
from fairseq_grafusion.models import GraFusionModel
qa = GraFusionModel.from_pretrained({save!r}, checkpoint_file="checkpoint_last.pt", data_name_or_path={args.data!r},
    spm=os.path.join({args.release!r}, "sentencepiece.bpe.model"), src_lang="en", tgt_lang={args.tgt_lang!r},
    align_priors={args.priors!r})
t1 = time.time()
print("HUB loaded", flush=True)
def first(side):
    path = os.path.join({args.data!r}, "{args.predict_split}." + side + ".json")
    p = json.load(open(path))["data"][0]["paragraphs"][0]
    return p["qas"][0]["question"], p["context"]
(q, c), (sq, sc) = first("tgt"), first("src")
answer = qa.answer(q, c, source_question=sq, source_context=sc)
print(f"HUB {{t1 - t0:.1f}} {{time.time() - t1:.2f}} {{answer['text']!r}}", flush=True)
"""
    wall4, cpu4, peak4, seen4, lines4 = run_sampled([sys.executable, "-c", hub], {"loaded": r"^HUB loaded"})
    hub_line = next(line for line in lines4 if re.search(r"\| HUB \d", line)).split("| HUB ")[1].split()

    def at(name, table=seen):
        s, rss = table.get(name, (float("nan"), 0))
        return f"{s:.1f} s, peak RSS so far {rss / GIB:.2f} GiB"

    print(f"{args.arch} {args.graph}, l = {args.length}, batch 1, {args.updates} updates on {args.device}")
    print(f"parameters {params / 1e6:.1f}M: fp32 params + grads + Adam {state / GIB:.2f} GiB, "
          f"activations (memory.py, batch 1) {act / GIB:.2f} GiB, "
          f"bound 1.3 x state + activations {bound / GIB:.2f} GiB")
    print(f"train: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak / GIB:.2f} GiB ({peak / bound:.2f} x bound)")
    print(f"  load + XLM-R init: {at('loaded')}")
    print(f"  first step logged: {at('step')}")
    print(f"  checkpoint saved:  {at('saved')}  ({ckpt_size / GIB:.2f} GiB)")
    print(f"resume: wall {wall2:.1f} s, CPU {cpu2:.1f} s, peak RSS {peak2 / GIB:.2f} GiB; checkpoint loaded at "
          f"{at('restored', seen2)}")
    print(f"torch.save / torch.load (from a cold page cache, as the resume's) of the same checkpoint dict: "
          f"{t_save:.1f} / {t_load:.1f} s")
    print(f"grafusion-predict --split {args.predict_split}: {answered} questions, wall {wall3:.1f} s, "
          f"CPU {cpu3:.1f} s, peak RSS {peak3 / GIB:.2f} GiB")
    print(f"from_pretrained + one answer(): wall {wall4:.1f} s (from_pretrained {hub_line[0]} s, "
          f"answer {hub_line[1]} s), CPU {cpu4:.1f} s, peak RSS {peak4 / GIB:.2f} GiB")
    for line in lines + lines2:
        if re.search(r"(?i)preparing to load checkpoint|loaded checkpoint|saved checkpoint|initialised from", line):
            print("  " + line.rstrip())


if __name__ == "__main__":
    main()
