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

The grid is a job array: its cells (variant, noise, seed), in a fixed order with FILTER's runs
before their self-teaching students, are numbered 0..N-1 (``--count`` prints N).  ``--task-id I``
runs cell I alone, as one array task does (``examples/slurm/ablation.sbatch``), and records it in
``--work``/cells/; without it the same cells run here, ``--jobs`` at a time.  A recorded cell is
never run again (the grid resumes where it stopped), a lock keeps two tasks from training one cell
(a student trains its teacher if no one has), and a record of another budget is an error.

Writes ``--out``/RESULTS.md (mean +- std over seeds per variant x noise, paired wins per seed,
with the command, budget and machine) and ``--out``/runs.json (every run); ``--table`` writes them
from the recorded cells alone, as the array's dependent last job does (``--table --so-far``:
from those recorded so far, a progress report).  ``--mini``: 1 seed, tiny
data, few updates (for the test; the numbers mean nothing).

    # the full grid on a 16-core machine (examples/ablation/RESULTS.md gives the command used)
    python examples/ablation/run.py --seeds 5 --jobs 16 --work /tmp/abl/work
    # a subset: some variants, seeds 4..5
    python examples/ablation/run.py --variants none filter-st align,dep --seeds 2 --first-seed 4
    python examples/ablation/run.py --mini --out /tmp/abl
    # as an array: cell 7 of 140, then the table once all are recorded
    python examples/ablation/run.py --seeds 10 --work /shared/abl --task-id 7
    python examples/ablation/run.py --seeds 10 --work /shared/abl --table --out /shared/abl/out
    python examples/ablation/run.py --seeds 10 --work /shared/abl --table --so-far --out /tmp/progress
"""
import argparse
import collections
import contextlib
import fcntl
import json
import os
import platform
import re
import shlex
import shutil
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
    p.add_argument("--task-id", type=int, default=None,
                   help="run one cell of the grid (0-based; a job array's $SLURM_ARRAY_TASK_ID) "
                        "and record it in --work/cells; a recorded cell is skipped")
    p.add_argument("--count", action="store_true",
                   help="print the number of cells (a job array's size) and exit")
    p.add_argument("--table", action="store_true",
                   help="write the table from the cells recorded in --work (every one finished)")
    p.add_argument("--so-far", action="store_true",
                   help="with --table: write it from the cells recorded so far, naming how many "
                        "are missing (a progress report, not the grid's result)")
    p.add_argument("--mini", action="store_true",
                   help="1 seed, tiny data, few updates (smoke test; meaningless numbers)")
    args = p.parse_args(argv)
    if args.so_far and not args.table:
        p.error("--so-far goes with --table")
    if args.mini:
        args.seeds, args.first_seed, args.updates, args.warmup = 1, 1, 6, 2
        args.train_size, args.valid_size, args.batch_size = 64, 16, 16
    args.noise = [float(x) for x in args.noise.split(",") if x.strip()]
    return args


def write_data(args, noise, work):
    """The data of one noise level, ``WORK/data-noise{noise}``: written once (to a temporary
    directory, renamed when complete), under a lock when array tasks start side by side."""
    from fairseq_grafusion.synthetic import SyntheticXMRC

    path = os.path.join(work, f"data-noise{noise}")
    with locked(path + ".lock"):
        if not os.path.isdir(path):
            tmp = f"{path}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            SyntheticXMRC(vocab=args.vocab, seed=args.data_seed, reorder=args.reorder,
                          align_noise=noise, task="key", homonyms=True,
                          passage_words=tuple(args.passage_words)).write(
                tmp, splits=(("train", args.train_size), ("valid", args.valid_size)), seed=1)
            os.rename(tmp, path)
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


def cell_name(variant, noise, seed):
    return f"{variant.replace(',', '+')}-{noise}-{seed}"


def train_one(args, data, variant, noise, seed, work, teacher_checkpoint=None):
    """One fairseq-train run; ``teacher_checkpoint``: the teacher's model (self-teaching)."""
    save = os.path.join(work, "ck-" + cell_name(variant, noise, seed))
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
               checkpoint=os.path.join(save, "checkpoint_last.pt") if is_teacher else None,
               machine=machine())
    if proc.returncode != 0 or run["f1"] is None:
        raise RuntimeError(f"{variant} noise={noise} seed={seed} failed ({proc.returncode}); "
                           f"its log: {save}.log\n" + log[-3000:])
    print(f"[{variant:16s} noise={noise:.2f} seed={seed}] F1 {run['f1']:6.2f} EM {run['em']:6.2f} "
          f"({run['seconds']:.0f}s, {run['cpu_seconds']:.0f}s CPU)", flush=True)
    return run


@contextlib.contextmanager
def locked(path):
    """An exclusive lock on ``path`` (flock: held by one process, or one open file, at a time),
    so that two array tasks never train the same cell or write the same data."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_json(path, value):
    """``value`` as JSON at ``path``, written to a temporary name and renamed (never half-written)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def run_cell(args, work, cell, student=None):
    """The grid's cell ``(variant, noise, seed)``, once: its record in ``WORK/cells/`` if a run
    finished it (a rerun skips it), else trained now and recorded.  A self-teaching cell runs its
    teacher's cell first (the same rule: skipped when recorded; the lock makes a concurrent task
    wait for it instead of training it twice).  A record of another budget is an error.  A
    teacher whose record came without its checkpoint (records carried to another machine) is
    trained again for its ``student``, and recorded anew: student and teacher from one machine."""
    variant, noise, seed = cell
    record = os.path.join(work, "cells", cell_name(*cell) + ".json")
    with locked(record + ".lock"):
        if os.path.exists(record):
            with open(record, encoding="utf-8") as f:
                done = json.load(f)
            if done["budget"] != budget(args):
                raise SystemExit(f"{record} was trained with another budget:\n  {done['budget']}\n"
                                 f"this run's:\n  {budget(args)}\nuse another --work")
            if student is None or os.path.isfile(done["run"]["checkpoint"] or ""):
                return done["run"]
            print(f"{record}: its checkpoint {done['run']['checkpoint']} is not here; training it again "
                  f"as the teacher of {cell_name(*student)}", file=sys.stderr, flush=True)
        teacher = None
        if variant in TEACHER:
            teacher = run_cell(args, work, (TEACHER[variant], noise, seed), student=cell)["checkpoint"]
        data = write_data(args, noise, work)
        run = train_one(args, data, variant, noise, seed, work, teacher)
        write_json(record, {"budget": budget(args), "run": run})
        return run


def runs_of(runs, variant, noise):
    """The runs of ``variant`` at ``noise``; a variant that never reads the alignment, trained at
    one noise level only, stands with those runs at every level."""
    mine = [r for r in runs if r["variant"] == variant and r["noise"] == noise]
    if mine or variant in READS_ALIGNMENT:
        return mine
    return [r for r in runs if r["variant"] == variant]


def summarise(runs, variants, noises):
    """Mean and std per variant x noise (a row per variant with runs at that level)."""
    rows = []
    for noise in noises:
        for variant in variants:
            mine = runs_of(runs, variant, noise)
            if not mine:
                continue
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
    """This machine as a run's record names it.  The CPU's flags are part of it: the same cell
    is bit-identical run after run on one machine, but gave other numbers on another with the
    same code (FILTER seed 1: 72.6 F1 on the machine of the issue-28 rerun, 55.4 on another),
    likely because torch's kernels round differently on a CPU with other instructions."""
    import hashlib

    import torch

    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].strip() for line in info if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    flags = hashlib.sha1(" ".join(sorted(flags.split())).encode()).hexdigest()[:8]
    return (f"{os.cpu_count()} CPU cores ({cpu}, flags {flags}, torch kernels "
            f"{torch.backends.cpu.get_cpu_capability()}), no GPU; Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def numerics(name):
    """What decides a run's numbers in a machine's name (:func:`machine`): all of it but the CPU
    flags' digest.  Two 2-core AMD EPYCs with other flags (716e95dd, 1b7e2ea9) and torch's AVX2
    kernels gave FILTER seed 1 and FILTER + self-teaching seed 1 bit for bit (F1, EM, last loss);
    the AVX512 one (30614b81) gave other numbers on every seed retrained there (FILTER 7-10)."""
    return re.sub(r"flags [0-9a-f]+, ", "", name or "")


def write_results(args, runs, rows, command, wall, out, wins, missing=()):
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "runs.json"),
               {"command": command, "budget": budget(args), "machine": machine(),
                "wall_seconds": round(wall), "runs": runs,
                "table": [{k: v for k, v in r.items()} for r in rows]})
    cpu_hours = sum(r["cpu_seconds"] for r in runs) / 3600
    mini = " (MINI: smoke test, meaningless numbers)" if args.mini else ""
    so_far = (f" (SO FAR: {len(runs)} of {len(runs) + len(missing)} cells recorded, a progress "
              "report)" if missing else "")
    text = [f"# GraFusion-MRC ablation on synthetic bilingual QA{mini}{so_far}",
            "", "Command (from the repository root):", "", f"    {command}", "",
            f"Budget per run (identical for every variant): {budget(args)}.", "",
            f"Machine: {machines(runs)}. "
            f"CPU time of the {len(runs)} runs: {cpu_hours:.1f} h; wall "
            f"time of this invocation: {wall / 60:.1f} min ({args.jobs} runs in parallel; cells "
            "recorded by an earlier invocation in the same --work are not run again).", "",
            "F1 / EM (SQuAD v1.1 metric, %) of the target-language answers on the validation "
            "split at the end of training; mean ± sample std over seeds."
            + ("" if args.repeat_invariant or len(args.noise) < 2 else
               " Variants that never read the alignment "
               f"({', '.join(v for v in VARIANTS if v not in READS_ALIGNMENT)}) "
               f"were trained at {args.noise[0]:.0%} noise only; their rows at other noise levels "
               "repeat those runs."), "",
            markdown_table(rows), "", "## Paired wins per seed", "", wins]
    path = os.path.join(out, "RESULTS.md")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(text))
    os.replace(tmp, path)
    return path


def machines(runs):
    """The machines of ``runs`` with how many runs each (a record without one: this machine)."""
    here = machine()
    count = collections.Counter(r.get("machine", here) for r in runs)
    if len(count) == 1:
        return next(iter(count))
    return "; ".join(f"{name}: {n} runs" for name, n in sorted(count.items()))


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
            print(f"{student} needs its teacher: {teacher} is trained too", file=sys.stderr, flush=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(v, n, s) for n in args.noise for s in seeds for v in variants
            if args.repeat_invariant or v in READS_ALIGNMENT or n == args.noise[0]]
    return sorted(jobs, key=lambda job: job[0] not in TEACHER.values())


def seed_by_seed(cells):
    """The order :func:`run_array` trains ``cells`` in: seed by seed, so that a grid that a session
    stops part-way leaves whole seeds, every variant of a seed from one machine (a paired win
    needs both runs from one kind of CPU, :func:`numerics`); within a seed the self-teaching
    students first (each trains its teacher before itself, under the teacher's lock) and the
    teachers last (recorded by then, so skipped), so that no worker waits on another's lock."""
    role = lambda cell: 0 if cell[0] in TEACHER else 2 if cell[0] in TEACHER.values() else 1  # noqa: E731
    return sorted(cells, key=lambda cell: (cell[2], role(cell)))


def run_array(args, work, cells):
    """The grid as a job array on this machine: every cell through :func:`run_cell`, the same
    call ``--task-id`` makes for one array task, ``--jobs`` at a time (each fairseq-train with
    OMP_NUM_THREADS=1), in the order of :func:`seed_by_seed`.  A failed cell does not stop the
    others; it is reported at the end and a rerun retries it (finished cells are skipped)."""
    def one(cell):
        try:
            return run_cell(args, work, cell)
        except (RuntimeError, OSError) as e:
            print(f"FAILED {cell_name(*cell)}: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
            return None

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        order = seed_by_seed(cells)
        done = dict(zip(order, pool.map(one, order)))
    runs = [done[cell] for cell in cells]
    failed = [cell_name(*c) for c, r in zip(cells, runs) if r is None]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(cells)} cells failed ({', '.join(failed)}); "
                         "their logs are in --work; rerun the same command to retry them "
                         "(finished cells are skipped)")
    return runs


def recorded(args, work, cells):
    """The runs of the cells recorded in ``WORK/cells`` (``--table``) and the names of the
    missing ones: an error unless ``--so-far``."""
    runs, missing = [], []
    for cell in cells:
        record = os.path.join(work, "cells", cell_name(*cell) + ".json")
        if not os.path.exists(record):
            missing.append(cell_name(*cell))
            continue
        with open(record, encoding="utf-8") as f:
            runs.append(json.load(f)["run"])
    if missing and not args.so_far:
        raise SystemExit(f"{len(missing)} of {len(cells)} cells are not finished in {work}/cells: "
                         + ", ".join(missing) + " (--so-far: a table of the finished ones)")
    if not runs:
        raise SystemExit(f"no cell of this grid is recorded in {work}/cells")
    return runs, missing


def paired_wins(runs, variants, noises):
    """Per noise level, for each variant that reads the alignment: against each other variant,
    the seeds on which it has the higher F1 (the same seed, so the same initialisation stream
    and data order), as ``wins/seeds``.  A pair is taken only where both runs name the same
    CPU as :func:`numerics` reads it (one seed gives other numbers where torch's kernels round
    differently); the pairs left out for that are counted in the cell, ``wins/seeds (+k on two
    kinds of CPU)``."""
    lines = []
    for noise in noises:
        by_seed = {v: {r["seed"]: r for r in runs_of(runs, v, noise)} for v in variants}
        rows = [v for v in variants if v in READS_ALIGNMENT and by_seed[v]]
        if not rows:
            lines += [f"Noise {noise:.0%}: no run of a variant that reads the alignment yet.", ""]
            continue
        lines += [f"Noise {noise:.0%}: seeds on which the row's variant has the higher F1 than "
                  "the column's (wins/seeds; both runs of a pair on one kind of CPU: model, torch's "
                  "kernels).", "",
                  "| | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
        for variant in rows:
            mine = by_seed[variant]
            cells = []
            for other in variants:
                theirs = by_seed[other]
                common = sorted(set(mine) & set(theirs))
                seeds = [s for s in common
                         if numerics(mine[s].get("machine")) == numerics(theirs[s].get("machine"))]
                apart = len(common) - len(seeds)
                cells.append("" if other == variant else
                             f"{sum(mine[s]['f1'] > theirs[s]['f1'] for s in seeds)}/{len(seeds)}"
                             + (f" (+{apart} on two kinds of CPU)" if apart else ""))
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python", "examples/ablation/run.py", *map(shlex.quote, given)])
    cells = plan(args)
    if args.count:
        print(len(cells))
        return len(cells)
    if (args.task_id is not None or args.table) and not args.work:
        raise SystemExit("--task-id and --table need --work (the directory every array task shares)")
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="grafusion-ablation-"))
    os.makedirs(work, exist_ok=True)
    if args.task_id is not None:
        if not 0 <= args.task_id < len(cells):
            raise SystemExit(f"--task-id {args.task_id}: the grid has {len(cells)} cells (0..{len(cells) - 1})")
        return run_cell(args, work, cells[args.task_id])
    start = time.time()
    runs, missing = recorded(args, work, cells) if args.table else (run_array(args, work, cells), [])
    trained = {r["variant"] for r in runs}
    variants = [v for v in VARIANTS if v in trained]
    rows = summarise(runs, variants, args.noise)
    path = write_results(args, runs, rows, command, time.time() - start, args.out,
                         paired_wins(runs, variants, args.noise), missing)
    print(markdown_table(rows))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
