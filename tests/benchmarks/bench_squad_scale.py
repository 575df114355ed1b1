"""SQuAD-scale preprocessing, ``combine`` and the data loader, measured (issue 22).

    python tests/benchmarks/make_xlmr_release.py --size base --out xlmr.base-random
    python tests/benchmarks/bench_squad_scale.py --release xlmr.base-random --work squad-scale \\
        [--copies 74] [--langs de ar es hi vi zh ru] [--workers 2]

1. **Input**: XQuAD en-de (``--xquad``, default ``../shared/data/xquad``, 1190 questions) repeated ``--copies`` times
   (74: 88,060 questions, SQuAD v1.1 train has 87,599), question ids suffixed by the copy, the
   paragraphs of every copy shuffled (the same order on both sides).
2. **One pair**: ``grafusion-preprocess all --workers 2`` with the release's SentencePiece model and
   250,002-symbol ``dict.txt``, ``--max-len 384``: wall and CPU seconds, peak RSS of the process
   tree (eflomal included; sampled every 50 ms), the time of each stage (from the log), and the
   size of ``qa-bin``.
3. **combine** of ``len(--langs)`` copies of that pair under other language codes: wall, CPU, peak
   RSS.
4. **The loader**: fairseq's epoch iterator over the combined training split, built as
   ``fairseq-train`` builds it (``task.load_dataset``, ``task.get_batch_iterator`` with
   ``--batch-size 8``), no model: examples per second with ``--num-workers 0`` and ``2`` over
   ``--batches`` batches, and the seconds from the process's start to the first batch.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XQUAD = os.path.join(os.path.dirname(REPO), "shared", "data", "xquad")
GIB = 2 ** 30


def tree_rss(pid, field="VmRSS:"):
    """``field`` of ``/proc/PID/status`` summed over ``pid`` and its descendants (bytes):
    ``VmRSS:`` counts the mapped page cache of mmap'ed data files (shared, reclaimable) in
    every process that touches it, ``RssAnon:`` only the memory each process owns."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (OSError, StopIteration):
            continue
    return total


def measured(cmd, cwd=None):
    """Run ``cmd``: (wall s, CPU s of it and its children, peak tree RSS,
    [(seconds, peak tree RSS so far, line)]); ``measured.anon`` is the peak tree RssAnon."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    peak, anon, done = [0], [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            anon[0] = max(anon[0], tree_rss(proc.pid, "RssAnon:"))
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    lines = [(time.time() - start, peak[0], line) for line in proc.stdout]
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    thread.join()
    measured.anon = anon[0]
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"failed: {' '.join(cmd)}\n{''.join(x for _, _, x in lines[-30:])}")
    return time.time() - start, usage.ru_utime + usage.ru_stime, peak[0], lines


def scaled_inputs(work, copies, xquad=XQUAD, seed=1):
    """The en and de files, ``copies`` times over, ids suffixed, paragraphs shuffled alike."""
    sides = {}
    for lang in ("en", "de"):
        path = os.path.join(xquad, f"xquad.{lang}.json")
        if not os.path.isfile(path):
            sys.exit(f"{path} is missing: give --xquad DIR, the directory of XQuAD's xquad.en.json and "
                     "xquad.de.json (github.com/deepmind/xquad)")
        with open(path, encoding="utf-8") as f:
            sides[lang] = json.load(f)["data"]
    rng = random.Random(seed)
    out, questions = {}, 0
    for lang in ("en", "de"):
        out[lang] = {"version": "1.1", "data": []}
    for c in range(copies):
        order = {}
        for a, article in enumerate(sides["en"]):
            order[a] = list(range(len(article["paragraphs"])))
            rng.shuffle(order[a])
        for lang, articles in sides.items():
            for a, article in enumerate(articles):
                paragraphs = []
                for k in order[a]:
                    p = json.loads(json.dumps(article["paragraphs"][k]))
                    for q in p["qas"]:
                        q["id"] = f"{q['id']}-{c}"
                    paragraphs.append(p)
                out[lang]["data"].append({"title": f"{article['title']} {c}", "paragraphs": paragraphs})
    paths = {}
    for lang, data in out.items():
        paths[lang] = os.path.join(work, f"squad-scale.{lang}.json")
        with open(paths[lang], "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
    questions = sum(len(p["qas"]) for a in out["de"]["data"] for p in a["paragraphs"])
    return paths, questions


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def loader(data, workers, batches, batch_size):
    """Examples per second of fairseq's epoch iterator (the task's dataset and collater), and
    the seconds from this process's start to the first batch."""
    code = f"""
import time, sys
t0 = time.time()
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
import fairseq_grafusion.plugin
args = options.parse_args_and_arch(options.get_training_parser(), [{data!r}, "--user-dir",
    {os.path.join(REPO, "fairseq_grafusion")!r}, "--task", "xmrc_span", "--criterion", "xmrc_span",
    "--arch", "grafusion_base", "--graph", "align,dep", "--batch-size", "{batch_size}", "--num-workers",
    "{workers}", "--cpu", "--max-update", "1"])
cfg = convert_namespace_to_omegaconf(args)
task = tasks.setup_task(cfg.task)
task.load_dataset("train", combine=False, epoch=1)
t_load = time.time() - t0
itr = task.get_batch_iterator(dataset=task.dataset("train"), max_tokens=cfg.dataset.max_tokens,
    max_sentences=cfg.dataset.batch_size, max_positions=None, ignore_invalid_inputs=True,
    required_batch_size_multiple=1, seed=1, num_shards=1, shard_id=0, num_workers={workers},
    epoch=1).next_epoch_itr(shuffle=True)
first = next(itr)
t_first = time.time() - t0
n, start = 0, time.time()
for i, batch in zip(range({batches}), itr):
    n += batch["nsentences"]
print(f"RESULT {{len(task.dataset('train'))}} {{t_load:.2f}} {{t_first:.2f}} {{n / (time.time() - start):.1f}}")
"""
    wall, cpu, peak, lines = measured([sys.executable, "-c", code])
    found = [line for _, _, line in lines if line.startswith("RESULT")]
    if not found:
        sys.exit("".join(x for _, _, x in lines[-20:]))
    size, t_load, t_first, rate = found[0].split()[1:]
    return int(size), float(t_load), float(t_first), float(rate), cpu, peak, measured.anon


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--release", required=True, help="make_xlmr_release.py's directory (spm, dict.txt)")
    p.add_argument("--work", required=True)
    p.add_argument("--copies", type=int, default=74)
    p.add_argument("--xquad", default=XQUAD, help="XQuAD's data directory (default: %(default)s)")
    p.add_argument("--langs", nargs="+", default=["de", "ar", "es", "hi", "vi", "zh", "ru"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-preprocess", action="store_true", help="reuse WORK/pair (combine and the loader run)")
    p.add_argument("--loader-only", action="store_true", help="reuse WORK/pair and WORK/combined")
    args = p.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    release = os.path.abspath(args.release)
    combined = os.path.join(work, "combined")
    if not (args.skip_preprocess or args.loader_only):
        paths, questions = scaled_inputs(work, args.copies, args.xquad)
        print(f"input: XQuAD en-de x {args.copies}, {questions} questions, paragraphs shuffled")
        cmd = [sys.executable, "-m", "fairseq_grafusion.preprocess", "all", "--out", os.path.join(work, "pair"),
               "--src-lang", "en", "--tgt-lang", "de", "--qa", "train", paths["en"], paths["de"],
               "--spm", release, "--dict", release, "--max-len", "384", "--workers", str(args.workers)]
        wall, cpu, peak, lines = measured(cmd)
        qa_bin = du(os.path.join(work, "pair", "qa-bin"))
        print(f"grafusion-preprocess all --workers {args.workers}: wall {wall:.1f} s, CPU {cpu:.1f} s, "
              f"peak RSS (process tree) {peak / GIB:.2f} GiB (RssAnon {measured.anon / GIB:.2f}), "
              f"qa-bin {qa_bin / GIB:.2f} GiB, "
              f"input {sum(os.path.getsize(x) for x in paths.values()) / GIB:.3f} GiB")
        for t, rss, line in lines:  # each stage's log lines, with the peak RSS up to them
            if re.match(r"\s*(==|\[|done|stage)", line) or "took" in line:
                print(f"  {t:7.1f} s, {rss / GIB:5.2f} GiB | {line.rstrip()[:150]}")
    if not args.loader_only:
        cmd = [sys.executable, "-m", "fairseq_grafusion.preprocess", "combine", "--out", combined]
        for lang in args.langs:
            cmd += ["--pair", lang, os.path.join(work, "pair", "qa-bin")]
        if os.path.isdir(combined):
            import shutil

            shutil.rmtree(combined)
        wall, cpu, peak, lines = measured(cmd)
        print(f"combine of {len(args.langs)} pairs: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak / GIB:.2f} GiB "
              f"(RssAnon {measured.anon / GIB:.2f}), "
              f"output {du(combined) / GIB:.2f} GiB")
    for workers in (0, 2):
        size, t_load, t_first, rate, cpu, peak, anon = loader(combined, workers, args.batches, args.batch_size)
        print(f"loader, --num-workers {workers}: {size} training windows, dataset loaded {t_load:.1f} s, first batch "
              f"{t_first:.1f} s after start, {rate:.0f} examples/s over {args.batches} batches of {args.batch_size}"
              f" (process CPU {cpu:.0f} s, peak RSS {peak / GIB:.2f} GiB of which owned (RssAnon) "
              f"{anon / GIB:.2f} GiB, the rest the mapped page cache of the data files)")


if __name__ == "__main__":
    main()
