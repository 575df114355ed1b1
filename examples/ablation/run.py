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

The variants (``VARIANTS``), each a tiny model of 4 layers (d=64) trained from scratch:

* ``no-fusion``: the target stream alone (``grafusion_tiny --no-fusion``);
* ``xlmr-tt``: XLM-R translate-train, the English original and the translation as independent
  examples through one encoder and one span head (``xlmr_translate_train_tiny``);
* ``none`` / ``none-shared``: plain fusion, G = 0, with per-language bottom and top layers / with
  one bottom and top layer for both languages (``--share-lang-layers both``);
* ``filter`` / ``filter-st``: FILTER (``filter_tiny``, 1 local + 2 fusion + 1 domain layers,
  shared by the languages) without / with self-teaching (``--criterion xmrc_span_self_teaching``,
  the teacher being the ``filter`` run of the same noise level and seed, which is therefore run
  first);
* ``align``, ``align,dep``: +a, +ad; ``-shared``: with ``--share-sa-graph --share-lang-layers
  both`` (one SA-Graph for all SA layers, W_att per layer).

For each noise level the data is written once with the same generator seed; the noise has its own
random stream, so every noise level holds the same texts and differs only in its alignment links.
Every variant x seed is trained with the same budget (updates, lr, batch, data) by
``fairseq-train`` in a subprocess (``--jobs`` at a time, ``OMP_NUM_THREADS=1`` each), and the
target-language validation answers are scored at the end of training (the log's
``--eval-span-f1`` values: SQuAD v1.1 F1 / EM of the target stream's answers, the same numbers
``grafusion-predict`` + ``grafusion-evaluate`` give).  Variants that never read the alignment
are trained at the first noise level only, unless ``--repeat-invariant``.

Writes ``--out``/RESULTS.md (mean +- std over seeds per variant x noise, with the command, budget
and machine) and ``--out``/runs.json (every run).  ``--mini``: 1 seed, tiny data, few updates
(for the test; the numbers mean nothing).

    # the full grid on a 16-core machine (examples/ablation/RESULTS.md gives the command used)
    python examples/ablation/run.py --seeds 5 --jobs 16 --work /tmp/abl/work
    # a subset: some variants, seeds 4..5
    python examples/ablation/run.py --variants none filter-st align,dep --seeds 2 --first-seed 4
    python examples/ablation/run.py --mini --out /tmp/abl
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

SHARED = ["--share-sa-graph", "--share-lang-layers", "both"]
VARIANTS = {  # name -> fairseq-train flags (arch grafusion_tiny, criterion xmrc_span unless given)
    "no-fusion": ["--no-fusion"],
    "xlmr-tt": ["--arch", "xlmr_translate_train_tiny"],
    "none": ["--graph", "none"],
    "none-shared": ["--graph", "none", "--share-lang-layers", "both"],
    "filter": ["--arch", "filter_tiny"],
    "filter-st": ["--arch", "filter_tiny", "--criterion", "xmrc_span_self_teaching"],
    "align": ["--graph", "align"],
    "align-shared": ["--graph", "align", *SHARED],
    "align,dep": ["--graph", "align,dep"],
    "align,dep-shared": ["--graph", "align,dep", *SHARED],
}
DEFAULTS = {"--arch": "grafusion_tiny", "--criterion": "xmrc_span"}
TEACHER = {"filter-st": "filter"}  # FILTER's self-teaching: the teacher run of the same noise / seed
READS_ALIGNMENT = {"align", "align-shared", "align,dep", "align,dep-shared"}
COLUMNS = ("variant", "noise", "F1", "EM", "seeds", "CPU min/run", "F1 per seed", "EM per seed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=HERE, help="where RESULTS.md and runs.json go")
    p.add_argument("--work", default=None, help="data and checkpoints (default: a temp dir)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   help="which variants to train")
    p.add_argument("--noise", default="0,0.3", help="alignment noise rates, comma-separated")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per variant x noise")
    p.add_argument("--first-seed", type=int, default=1,
                   help="seeds are FIRST_SEED .. FIRST_SEED + SEEDS - 1 (to split a grid)")
    p.add_argument("--repeat-invariant", action="store_true",
                   help="also train the variants that never read the alignment at every noise "
                        "level (a determinism check); by default they are trained once, at the "
                        "first level, and their rows repeated")
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
    p.add_argument("--jobs", type=int, default=2,
                   help="runs in parallel, one process each with OMP_NUM_THREADS=1")
    p.add_argument("--mini", action="store_true",
                   help="1 seed, tiny data, few updates (smoke test; meaningless numbers)")
    args = p.parse_args(argv)
    if args.mini:
        args.seeds, args.first_seed, args.updates, args.warmup = 1, 1, 6, 2
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


def variant_flags(variant, teacher=None):
    """The variant's flags with the default arch / criterion where it names none; a teacher
    checkpoint for self-teaching."""
    flags = list(VARIANTS[variant])
    for option, value in DEFAULTS.items():
        if option not in flags:
            flags += [option, value]
    return flags + (["--self-teaching-teacher", teacher] if teacher else [])


def train_command(args, data, variant, seed, save_dir, teacher=None, save=False):
    return [sys.executable, "-m", "fairseq_cli.train", data, "--user-dir", USER_DIR,
            "--task", "xmrc_span", "--cpu", "--optimizer", "adam", "--lr", str(args.lr),
            "--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(args.warmup),
            "--batch-size", str(args.batch_size), "--max-update", str(args.updates),
            "--validate-interval", "100000", "--eval-span-f1",
            *(["--no-epoch-checkpoints"] if save else ["--no-save"]),
            "--save-dir", save_dir, "--log-format", "simple", "--log-interval", "100",
            "--no-progress-bar", "--seed", str(seed), "--num-workers", "0",
            "--dropout", str(args.dropout), "--attention-dropout", str(args.dropout),
            *variant_flags(variant, teacher)]


def last_logged(output, key):
    values = [float(m.group(1)) for line in output.splitlines() if "| valid |" in line
              for m in [re.search(rf"\| {key} ([0-9.]+)", line)] if m]
    return values[-1] if values else None


def train_one(args, data, variant, noise, seed, work, teacher=None):
    """One fairseq-train run; ``teacher``: the future of the teacher's run (self-teaching)."""
    save = os.path.join(work, f"ck-{variant.replace(',', '+')}-{noise}-{seed}")
    teacher_checkpoint = teacher.result()["checkpoint"] if teacher is not None else None
    is_teacher = variant in TEACHER.values()
    cmd = train_command(args, data, variant, seed, save, teacher_checkpoint, save=is_teacher)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    with open(save + ".log", "w", encoding="utf-8") as f:  # a file, not a pipe: wait4 reaps it
        f.write(" ".join(map(shlex.quote, cmd)) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # the CPU time of this run alone
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(save + ".log", encoding="utf-8") as f:
        log = f.read()
    run = dict(variant=variant, noise=noise, seed=seed, seconds=round(time.time() - start, 1),
               cpu_seconds=round(usage.ru_utime + usage.ru_stime, 1),
               returncode=proc.returncode, f1=last_logged(log, "f1"), em=last_logged(log, "em"),
               train_loss=last_logged(log.replace("| train |", "| valid |"), "loss"),
               checkpoint=os.path.join(save, "checkpoint_last.pt") if is_teacher else None)
    if proc.returncode != 0 or run["f1"] is None:
        raise RuntimeError(f"{variant} noise={noise} seed={seed} failed ({proc.returncode}):\n"
                           + log[-3000:])
    print(f"[{variant:16s} noise={noise:.2f} seed={seed}] F1 {run['f1']:6.2f} EM {run['em']:6.2f} "
          f"({run['seconds']:.0f}s, {run['cpu_seconds']:.0f}s CPU)", flush=True)
    return run


def summarise(runs, variants, noises):
    """Mean and std per variant x noise; a variant trained at one noise level only (it never
    reads the alignment) is shown with those runs at every level."""
    rows = []
    for noise in noises:
        for variant in variants:
            mine = [r for r in runs if r["variant"] == variant and r["noise"] == noise]
            mine = mine or [r for r in runs if r["variant"] == variant]
            f1, em = [r["f1"] for r in mine], [r["em"] for r in mine]
            sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
            rows.append({"variant": variant, "noise": noise, "F1": f"{statistics.mean(f1):.1f} ± {sd(f1):.1f}",
                         "EM": f"{statistics.mean(em):.1f} ± {sd(em):.1f}", "seeds": len(mine),
                         "CPU min/run": f"{statistics.mean(r['cpu_seconds'] for r in mine) / 60:.1f}",
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
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
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
    mini = " (MINI: smoke test, meaningless numbers)" if args.mini else ""
    text = [f"# GraFusion-MRC ablation on synthetic bilingual QA{mini}",
            "", "Command (from the repository root):", "", f"    {command}", "",
            f"Budget per run (identical for every variant): {budget(args)}.", "",
            f"Machine: {machine()}. Wall time of the whole ablation: {wall / 60:.1f} min "
            f"({args.jobs} runs in parallel).", "",
            "F1 / EM (SQuAD v1.1 metric, %) of the target-language answers on the validation "
            "split at the end of training; mean ± sample std over seeds."
            + ("" if args.repeat_invariant or len(args.noise) < 2 else
               " Variants that never read the alignment "
               f"({', '.join(v for v in VARIANTS if v not in READS_ALIGNMENT)}) "
               f"were trained at {args.noise[0]:.0%} noise only; their rows at other noise levels "
               "repeat those runs."), "",
            markdown_table(rows), ""]
    path = os.path.join(out, "RESULTS.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(text))
    return path


def budget(args):
    return (f"tiny models (d=64, 4 heads, FFN 128, 4 layers: grafusion_tiny 1 + 2 SA + 1, "
            f"filter_tiny 1 local + 2 fusion + 1 domain, xlmr_translate_train_tiny 4), "
            f"{args.updates} updates, batch {args.batch_size}, Adam lr {args.lr} "
            f"(inverse sqrt after {args.warmup} linear warm-up updates), dropout {args.dropout}; "
            f"data: {args.train_size} train / "
            f"{args.valid_size} valid examples, vocab {args.vocab} English words (homonym pairs), "
            f"passages of {args.passage_words[0]}-{args.passage_words[1] - 1} words, "
            f"reorder {args.reorder}, data seed {args.data_seed}; training seeds "
            f"{args.first_seed}..{args.first_seed + args.seeds - 1}; self-teaching: FILTER's "
            f"defaults (alpha 0.5, temperature 6, the KL reduced over the batch's tokens as FILTER's "
            f"code does), teacher = the filter run of the same seed")


def plan(args):
    """(variant, noise, seed) of every run: teachers first, so that a self-teaching run only
    waits for a run that has already started; variants that never read the alignment at the
    first noise level only (unless --repeat-invariant)."""
    variants = list(args.variants)
    for student, teacher in TEACHER.items():
        if student in variants and teacher not in variants:
            variants.insert(variants.index(student), teacher)
            print(f"{student} needs its teacher: {teacher} is trained too", flush=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(v, n, s) for n in args.noise for s in seeds for v in variants
            if args.repeat_invariant or v in READS_ALIGNMENT or n == args.noise[0]]
    return sorted(jobs, key=lambda job: job[0] not in TEACHER.values())


def run_jobs(args, data, work):
    """Every planned run, ``--jobs`` processes at a time (each OMP_NUM_THREADS=1)."""
    futures = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for variant, noise, seed in plan(args):
            teacher = futures[(TEACHER[variant], noise, seed)] if variant in TEACHER else None
            futures[(variant, noise, seed)] = pool.submit(
                train_one, args, data[noise], variant, noise, seed, work, teacher)
    return [future.result() for future in futures.values()]


def main(argv=None):
    args = parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python", "examples/ablation/run.py", *map(shlex.quote, given)])
    work = args.work or tempfile.mkdtemp(prefix="grafusion-ablation-")
    os.makedirs(work, exist_ok=True)
    start = time.time()
    data = {n: write_data(args, n, os.path.join(work, f"data-noise{n}")) for n in args.noise}
    runs = run_jobs(args, data, work)
    trained = {r["variant"] for r in runs}
    rows = summarise(runs, [v for v in VARIANTS if v in trained], args.noise)
    path = write_results(args, runs, rows, command, time.time() - start, args.out)
    print(markdown_table(rows))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
