#!/usr/bin/env python
"""Controlled cross-lingual ablation of GraFusion-MRC on synthetic bilingual QA (issue 6, item 2).

The task (``fairseq_grafusion.synthetic.SyntheticXMRC(task="key", homonyms=True)``):
English words ``e1..e59``; the target language is a deterministic transformation of the English
text: a word substitution that maps *pairs* of English words onto one target word (homonyms) plus
local reordering (adjacent words swapped with probability ``--reorder``), so the gold word
alignment is known.  The question names a key word of the passage; the answer is the one or two
words after it.  Every passage also holds the key's homonym partner, so in the target language
the key occurs twice and only the English side tells which occurrence the question means: a
target-only reader (``--no-fusion``) can at best guess (about 50% EM).  Alignment noise at rate
``p``: a fraction ``p`` of the gold links is replaced, half by a link to a random wrong target
word, half dropped.  Dependency edges are chains of neighbouring words within each question and
passage (exact: they are not noised), so a word whose own link is wrong or missing can be
located through its aligned neighbours, which is the robustness the paper claims for them.

For each noise level the data is written once with the same generator seed; the noise has its own
random stream, so every noise level holds the same texts and differs only in its alignment links;
then ``grafusion_tiny`` is trained for every variant x seed with the same budget (updates, lr,
batch, data) by ``fairseq-train`` in a subprocess, and the target-language validation answers are
scored at the end of training (the log's ``--eval-span-f1`` values: SQuAD v1.1 F1 / EM of the
target stream's answers, the same numbers ``grafusion-predict`` + ``grafusion-evaluate`` give).

Writes ``--out``/RESULTS.md (mean +- std over seeds per variant x noise, with the command, budget
and machine) and ``--out``/runs.json (every run).  ``--mini``: 1 seed, tiny data, few updates
(for the test; the numbers mean nothing).

    .venv/bin/python examples/ablation/run.py                 # the full ablation (~1 h, 2 cores)
    .venv/bin/python examples/ablation/run.py --mini --out /tmp/abl
"""
import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
USER_DIR = os.path.join(REPO, "fairseq_grafusion")

VARIANTS = {  # name -> fairseq-train flags
    "no-fusion": ["--no-fusion"],
    "none": ["--graph", "none"],
    "align": ["--graph", "align"],
    "align,dep": ["--graph", "align,dep"],
}
COLUMNS = ("variant", "noise", "F1", "EM", "seeds", "F1 per seed", "EM per seed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=HERE, help="where RESULTS.md and runs.json go")
    p.add_argument("--work", default=None, help="data and checkpoints (default: a temp dir)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   help="which variants to train")
    p.add_argument("--noise", default="0,0.3", help="alignment noise rates, comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per variant x noise")
    p.add_argument("--updates", type=int, default=4000, help="--max-update of every run")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up updates (then inverse sqrt decay)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--train-size", type=int, default=4000)
    p.add_argument("--valid-size", type=int, default=500)
    p.add_argument("--vocab", type=int, default=24, help="English words (target: about half)")
    p.add_argument("--passage-words", type=int, nargs=2, default=(8, 12), metavar=("MIN", "MAX"),
                   help="passage length in words, MIN <= n < MAX (MIN >= 7)")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--reorder", type=float, default=0.3, help="adjacent-swap probability")
    p.add_argument("--data-seed", type=int, default=0, help="vocabulary / substitution seed")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (each OMP_NUM_THREADS=1)")
    p.add_argument("--mini", action="store_true",
                   help="1 seed, tiny data, few updates (smoke test; meaningless numbers)")
    args = p.parse_args(argv)
    if args.mini:
        args.seeds, args.updates, args.warmup = 1, 6, 2
        args.train_size, args.valid_size, args.batch_size = 64, 16, 16
    args.noise = [float(x) for x in args.noise.split(",") if x.strip()]
    return args


def write_data(args, noise, path):
    from fairseq_grafusion.synthetic import SyntheticXMRC

    if not os.path.exists(os.path.join(path, "valid.tgt.json")):
        SyntheticXMRC(vocab=args.vocab, seed=args.data_seed, reorder=args.reorder,
                      align_noise=noise, task="key", homonyms=True,
                      passage_words=tuple(args.passage_words)).write(
            path, splits=(("train", args.train_size), ("valid", args.valid_size)), seed=1)
    return path


def train_command(args, data, variant, seed, save_dir):
    return [sys.executable, "-m", "fairseq_cli.train", data, "--user-dir", USER_DIR,
            "--task", "xmrc_span", "--criterion", "xmrc_span", "--arch", "grafusion_tiny",
            "--cpu", "--optimizer", "adam", "--lr", str(args.lr),
            "--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(args.warmup),
            "--batch-size", str(args.batch_size), "--max-update", str(args.updates),
            "--validate-interval", "100000", "--eval-span-f1", "--no-save",
            "--save-dir", save_dir, "--log-format", "simple", "--log-interval", "100",
            "--no-progress-bar", "--seed", str(seed), "--num-workers", "0",
            "--dropout", str(args.dropout), "--attention-dropout", str(args.dropout),
            *VARIANTS[variant]]


def last_logged(output, key):
    values = [float(m.group(1)) for line in output.splitlines() if "| valid |" in line
              for m in [re.search(rf"\| {key} ([0-9.]+)", line)] if m]
    return values[-1] if values else None


def train_one(args, data, variant, noise, seed, work):
    save = os.path.join(work, f"ck-{variant.replace(',', '+')}-{noise}-{seed}")
    cmd = train_command(args, data, variant, seed, save)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    run = dict(variant=variant, noise=noise, seed=seed, seconds=round(time.time() - start, 1),
               returncode=proc.returncode, f1=last_logged(log, "f1"), em=last_logged(log, "em"),
               train_loss=last_logged(log.replace("| train |", "| valid |"), "loss"))
    with open(save + ".log", "w", encoding="utf-8") as f:
        f.write(" ".join(map(shlex.quote, cmd)) + "\n" + log)
    if proc.returncode != 0 or run["f1"] is None:
        raise RuntimeError(f"{variant} noise={noise} seed={seed} failed ({proc.returncode}):\n"
                           + log[-3000:])
    print(f"[{variant:9s} noise={noise:.2f} seed={seed}] F1 {run['f1']:6.2f} EM {run['em']:6.2f} "
          f"({run['seconds']:.0f}s)", flush=True)
    return run


def summarise(runs, variants, noises):
    rows = []
    for noise in noises:
        for variant in variants:
            mine = [r for r in runs if r["variant"] == variant and r["noise"] == noise]
            f1, em = [r["f1"] for r in mine], [r["em"] for r in mine]
            sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
            rows.append({"variant": variant, "noise": noise, "F1": f"{statistics.mean(f1):.1f} ± {sd(f1):.1f}",
                         "EM": f"{statistics.mean(em):.1f} ± {sd(em):.1f}", "seeds": len(mine),
                         "F1 per seed": " / ".join(f"{x:.1f}" for x in f1),
                         "EM per seed": " / ".join(f"{x:.1f}" for x in em),
                         "f1_mean": statistics.mean(f1), "em_mean": statistics.mean(em)})
    return rows


def markdown_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [r["variant"], f"{r['noise']:.0%}"] + [str(r[c]) for c in COLUMNS[2:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return f"{os.cpu_count()} CPU cores ({cpu}), no GPU; Python {platform.python_version()}, torch {torch.__version__}"


def write_results(args, runs, rows, command, wall, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "runs.json"), "w", encoding="utf-8") as f:
        json.dump({"command": command, "budget": budget(args), "machine": machine(),
                   "wall_seconds": round(wall), "runs": runs,
                   "table": [{k: v for k, v in r.items()} for r in rows]}, f, indent=1)
    text = [f"# GraFusion-MRC ablation on synthetic bilingual QA{' (MINI: smoke test, meaningless numbers)' if args.mini else ''}",
            "", "Command (from the repository root):", "", f"    {command}", "",
            f"Budget per run (identical for every variant): {budget(args)}.", "",
            f"Machine: {machine()}. Wall time of the whole ablation: {wall / 60:.1f} min "
            f"({args.jobs} runs in parallel).", "",
            "F1 / EM (SQuAD v1.1 metric, %) of the target-language answers on the validation "
            "split at the end of training; mean ± sample std over seeds.", "",
            markdown_table(rows), ""]
    path = os.path.join(out, "RESULTS.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(text))
    return path


def budget(args):
    return (f"grafusion_tiny, {args.updates} updates, batch {args.batch_size}, Adam lr {args.lr} "
            f"(inverse sqrt after {args.warmup} linear warm-up updates), dropout {args.dropout}; data: {args.train_size} train / "
            f"{args.valid_size} valid examples, vocab {args.vocab} English words (homonym pairs), "
            f"passages of {args.passage_words[0]}-{args.passage_words[1] - 1} words, "
            f"reorder {args.reorder}, data seed {args.data_seed}; training seeds 1..{args.seeds}")


def main(argv=None):
    args = parse_args(argv)
    command = " ".join(["python", "examples/ablation/run.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])])
    work = args.work or tempfile.mkdtemp(prefix="grafusion-ablation-")
    os.makedirs(work, exist_ok=True)
    start = time.time()
    data = {n: write_data(args, n, os.path.join(work, f"data-noise{n}")) for n in args.noise}
    jobs = [(v, n, s) for n in args.noise for s in range(1, args.seeds + 1) for v in args.variants]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda j: train_one(args, data[j[1]], j[0], j[1], j[2], work), jobs))
    rows = summarise(runs, args.variants, args.noise)
    path = write_results(args, runs, rows, command, time.time() - start, args.out)
    print(markdown_table(rows))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
