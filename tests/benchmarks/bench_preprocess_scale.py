"""Preprocessing at SQuAD translate-train scale: binarize throughput and ``--workers`` scaling.

    python tests/benchmarks/bench_preprocess_scale.py [--copies 4] [--workers 1 2] \\
        [--output tests/benchmarks/RESULTS.md]

* binarize, per core: ``build_group`` (the ``binarize`` stage's work for one passage and its
  questions) in one process on XQuAD en-de (``../shared/data/xquad``; the bundled sample when it is
  absent), question-passage windows per CPU second of the process (a fair per-core figure on a
  shared machine) at ``--max-len 384 --doc-stride 128``, and the main process's
  ``PairWriter.add`` per window;
* ``grafusion-preprocess`` stage by stage (pairs, words, align with eflomal, parse without a
  parser, binarize) in this process with ``--workers 1`` on the en-de files repeated ``--copies``
  times (question ids made unique): per stage the CPU seconds outside ``parallel_map`` (serial:
  reading and writing stage files, pairing, same-word edges, PairWriter), inside it (what
  ``--workers`` spreads: segmentation, symmetrisation, build_group) and of eflomal's process; and
  ``grafusion-preprocess all`` as one command for each ``--workers`` value (wall and CPU seconds),
  with eflomal and with imported alignments (``--alignments``: the pipeline's own stages only);
* extrapolation to translate-train-all SQuAD (87,599 questions x 7 target languages, each an
  English-X run) from CPU seconds (robust on a shared machine): per language
  ``serial * s + parallel * s / cores + eflomal * s * r / min(2, cores)``, ``s`` the ratio of
  questions, ``r`` the ratio of eflomal's sampling sweeps per sentence at the two sizes (its
  default schedule, ``5000 / sqrt(n)`` iterations, falls with the corpus size; its two directions
  run side by side, its samplers in turn so that it is seeded), for 8 and 32 cores, the 7
  languages one after the other with all cores each or side by side with cores / 7 each.  Parsing is not included.

A SentencePiece model like XLM-R's (unigram, nmt_nfkc, 8000 pieces) is trained on the data first.
"""
import argparse
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layers import emit  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XQUAD = os.path.join(os.path.dirname(REPO), "shared", "data", "xquad")
SAMPLE = os.path.join(REPO, "examples", "sample")
SQUAD_QUESTIONS, LANGUAGES = 87599, 7
STAGES = ("pairs", "words", "align", "parse", "binarize")
EFLOMAL_THREADS = 2  # eflomal's two directions side by side (its samplers in turn: eflomal_run)


def inputs():
    """``(en_json, xx_json, xx)``: XQuAD en-de, or the sample's train split."""
    if os.path.isfile(os.path.join(XQUAD, "xquad.de.json")):
        return os.path.join(XQUAD, "xquad.en.json"), os.path.join(XQUAD, "xquad.de.json"), "de"
    return os.path.join(SAMPLE, "qa", "train.en.json"), os.path.join(SAMPLE, "qa", "train.ro.json"), "ro"


def repeated(path, copies, out):
    """The SQuAD file with its articles repeated, question ids suffixed by the copy number."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    articles = []
    for c in range(copies):
        for a in data["data"]:
            a = json.loads(json.dumps(a))
            for p in a["paragraphs"]:
                for q in p["qas"]:
                    q["id"] = f"{q['id']}-{c}"
            articles.append(a)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"version": "1.1", "data": articles}, f, ensure_ascii=False)
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def train_model(paths, out):
    import collections

    import sentencepiece as spm

    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for a in json.load(f)["data"]:
                for p in a["paragraphs"]:
                    lines.append(p["context"])
                    lines += [q["question"] for q in p["qas"]]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=8000,
                                   model_type="unigram", normalization_rule_name="nmt_nfkc",
                                   character_coverage=0.9995, hard_vocab_limit=False,
                                   num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    counts = collections.Counter(i for ids in sp.encode(lines) for i in ids)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "spm.model"), "wb") as f:
        f.write(model.getvalue())
    with open(os.path.join(out, "dict.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{sp.id_to_piece(i)} {counts[i]}\n" for i in range(sp.get_piece_size())
                     if not (sp.is_control(i) or sp.is_unknown(i)))
    return os.path.join(out, "spm.model"), os.path.join(out, "dict.txt")


def bench_binarize(src_json, tgt_json, lang, spm_path, dict_path, tmp):
    """Windows per second of build_group in this process, and PairWriter.add per window."""
    from fairseq_grafusion.data import PairWriter
    from fairseq_grafusion.preprocess import binarize
    from fairseq_grafusion.preprocess.encode import Encoder
    from fairseq_grafusion.preprocess.unit import Unit
    from fairseq_grafusion.preprocess.wordseg import tokenize
    from fairseq_grafusion.squad import read_squad
    binarize.use_encoder(Encoder(spm_path, dict_path))
    (sp, sq, _), (tp, tq, _) = read_squad(src_json), read_squad(tgt_json)
    src_q = {q["id"]: q for q in sq}
    rng = np.random.RandomState(0)
    tasks = {}
    for q in tq:
        s = src_q[q["id"]]
        key = (s["passage"], q["passage"])
        if key not in tasks:
            texts = {"src": sp[s["passage"]]["context"], "tgt": tp[q["passage"]]["context"]}
            words = {"src": tokenize(texts["src"], "en"), "tgt": tokenize(texts["tgt"], lang)}
            n = (len(words["src"]) // 2, len(words["tgt"]) // 2)
            links = np.stack([rng.randint(0, n[0], n[1]), np.arange(n[1])], 1).reshape(-1).tolist()
            arcs = {side: np.stack([np.arange(1, m), np.arange(m - 1)], 1).reshape(-1).tolist()
                    for side, m in zip(("src", "tgt"), n)}
            tasks[key] = ((Unit("p", f"p{len(tasks)}", 0, **texts), words, {"links": links},
                           {**arcs, "src_same": [], "tgt_same": []}), [],
                          {"max_len": 384, "doc_stride": 128, "max_query_len": 64})
        texts = {"src": s["question"], "tgt": q["question"]}
        words = {"src": tokenize(texts["src"], "en"), "tgt": tokenize(texts["tgt"], lang)}
        n = (len(words["src"]) // 2, len(words["tgt"]) // 2)
        tasks[key][1].append((Unit("q", q["id"], 0, **texts), words,
                              {"links": [0, 0] if min(n) else [], "answers": {"tgt": q["answers"][0]}},
                              {side: np.stack([np.arange(1, m), np.arange(m - 1)], 1).reshape(-1).tolist()
                               for side, m in zip(("src", "tgt"), n)}))
    tasks = list(tasks.values())
    binarize.build_group(tasks[0])  # warm up
    start, cpu = time.perf_counter(), time.process_time()
    results = [binarize.build_group(t) for t in tasks]
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    windows = sum(len(r[0]) for r in results)
    start = time.perf_counter()
    with PairWriter(os.path.join(tmp, "bench"), 250002, with_span=True,
                    extra_fields=("src.offsets", "tgt.offsets")) as writer:
        for examples, _ in results:
            for uid, fields in examples:
                writer.add(uid, **fields)
    write = time.perf_counter() - start
    return windows, len(tq), took, cpu, write


def stage_costs(args):
    """Per stage, run in this process with ``--workers 1``: wall seconds, CPU seconds of the
    stage outside ``parallel_map`` / ``parallel_iter`` (serial), inside them (what ``--workers`` spreads) and of
    eflomal's process; plus the number of aligner segments."""
    import contextlib
    import resource

    from fairseq_grafusion.preprocess import cli, runner, units

    inner = {"cpu": 0.0}
    original = runner.parallel_iter  # parallel_map runs through it too
    users = (runner, units)  # the modules that look parallel_iter up

    def timed(func, items, workers, desc, initializer=None, initargs=()):
        def run(item):
            start = time.process_time()
            try:
                return func(item)
            finally:
                inner["cpu"] += time.process_time() - start
        return original(run, items, 1, desc, initializer, initargs)

    for module in users:
        module.parallel_iter = timed
    out, printed = {}, io.StringIO()
    try:
        for stage in STAGES:
            inner["cpu"] = 0.0
            wall, cpu = time.perf_counter(), time.process_time()
            child = resource.getrusage(resource.RUSAGE_CHILDREN)
            with contextlib.redirect_stdout(printed):
                cli.main([stage, *args, "--workers", "1"])
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time() - cpu
            out[stage] = {"wall": time.perf_counter() - wall, "serial": cpu - inner["cpu"],
                          "parallel": inner["cpu"],
                          "child": after.ru_utime + after.ru_stime - child.ru_utime - child.ru_stime}
    finally:
        for module in users:
            module.parallel_iter = original
    segments = int(re.search(r"segments: (\d+)", printed.getvalue()).group(1))
    out["binarize"]["windows"] = int(re.search(r"examples out \(windows\): (\d+)", printed.getvalue()).group(1))
    return out, segments


def run_all(args, workers):
    """Wall and CPU seconds (all processes) of ``grafusion-preprocess all --workers N``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fairseq_grafusion.preprocess", "all", *args,
                    "--workers", str(workers), "--force"],
                   check=True, cwd=REPO, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def eflomal_sweeps(n):
    """Sampling sweeps of eflomal's default schedule (model 3) for ``n`` sentence pairs."""
    iters = max(2, int(round(5000 / math.sqrt(n))))
    return max(2, iters // 4) + max(1, iters // 4) + iters


def extrapolate(costs, questions, segments, cores):
    """Hours of translate-train-all SQuAD on ``cores`` (see the module docstring)."""
    scale = SQUAD_QUESTIONS / questions
    full_segments = segments * scale
    eflomal = scale * eflomal_sweeps(full_segments) / eflomal_sweeps(segments)

    def one_language(c):
        total = 0.0
        for stage in STAGES:
            t = costs[stage]
            total += (t["serial"] + t["parallel"] / c) * scale + t["child"] * eflomal / min(EFLOMAL_THREADS, c)
        return total

    one_by_one = LANGUAGES * one_language(cores)
    side_by_side = -(-LANGUAGES // cores) * one_language(max(1, cores // LANGUAGES))
    return one_by_one / 3600, side_by_side / 3600, full_segments


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=4, help="repeat the QA files this often")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers values (>= 2 values)")
    p.add_argument("--output", help="append the tables (markdown) to this file")
    args = p.parse_args()
    src_json, tgt_json, lang = inputs()
    tmp = tempfile.mkdtemp(prefix="grafusion-scale-")
    try:
        spm_path, dict_path = train_model([src_json, tgt_json], os.path.join(tmp, "spm"))
        windows, questions, took, cpu, write = bench_binarize(src_json, tgt_json, lang, spm_path,
                                                              dict_path, tmp)
        src, tgt = os.path.join(tmp, "en.json"), os.path.join(tmp, f"{lang}.json")
        n = repeated(src_json, args.copies, src)
        repeated(tgt_json, args.copies, tgt)
        common = ["--src-lang", "en", "--tgt-lang", lang, "--qa", "train", src, tgt,
                  "--spm", spm_path, "--dict", dict_path]
        costs, segments = stage_costs(["--out", os.path.join(tmp, "staged"), *common])
        runs = {w: run_all(["--out", os.path.join(tmp, f"all{w}"), *common], w) for w in args.workers}
        # the same without the aligner (imported links): the pipeline's own stages
        n_lines = sum(1 for _ in open(os.path.join(tmp, "staged", "work", "qa", "train",
                                                   "aligner-input.src.txt"), encoding="utf-8"))
        links = os.path.join(tmp, "links.txt")
        with open(links, "w", encoding="utf-8") as f:
            f.write("0-0\n" * n_lines)
        imported = {w: run_all(["--out", os.path.join(tmp, f"imp{w}"), *common, "--alignments", links], w)
                    for w in args.workers}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    name = os.path.basename(tgt_json)
    lines = [f"binarize on {name} paired with English ({questions} questions, {windows} windows, "
             "max-len 384, stride 128), one process:", "",
             "| work | wall seconds | CPU seconds | rate (per CPU second) |", "| --- | --- | --- | --- |",
             f"| build_group (encode, windows, edges) | {took:.2f} | {cpu:.2f} | {windows / cpu:.0f} "
             f"windows/s, {questions / cpu:.0f} questions/s |",
             f"| PairWriter.add (main process) | {write:.2f} | | {windows / write:.0f} windows/s (wall) |", "",
             f"grafusion-preprocess, stage by stage in one process (--workers 1), {name} x {args.copies} "
             f"({n} questions, {segments} aligner segments), seconds:", "",
             "| stage | wall | CPU outside parallel_map (serial) | CPU inside (spread by --workers) | eflomal CPU |",
             "| --- | --- | --- | --- | --- |"]
    for stage in STAGES:
        t = costs[stage]
        lines.append(f"| {stage} | {t['wall']:.1f} | {t['serial']:.1f} | {t['parallel']:.1f} "
                     f"| {max(t['child'], 0):.1f} |")
    b = costs["binarize"]
    lines += ["", f"The whole binarize stage (stage files in, PairWriter out): {b['windows']} windows, "
              f"{b['windows'] / (b['serial'] + b['parallel']):.0f} windows per CPU second with one "
              f"process; the main process alone (reading, writing) {b['windows'] / b['serial']:.0f} "
              "windows per CPU second, the ceiling with many workers.", "",
              "grafusion-preprocess all, the same data, one command:", "",
              "| --workers | wall seconds | CPU seconds (all processes) | without eflomal (--alignments): wall | CPU |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {w} | {wall:.1f} | {cpu_all:.1f} | {imported[w][0]:.1f} | {imported[w][1]:.1f} |"
              for w, (wall, cpu_all) in sorted(runs.items())]
    lines += ["", f"translate-train-all SQuAD ({SQUAD_QUESTIONS} questions x {LANGUAGES} languages, "
              "no parsing), extrapolated hours:", "",
              "| cores | languages one by one, all cores each | side by side, cores / 7 each |",
              "| --- | --- | --- |"]
    for cores in (8, 32):
        one, side, full_segments = extrapolate(costs, n, segments, cores)
        lines.append(f"| {cores} | {one:.2f} | {side:.2f} |")
    lines.append(f"\n({full_segments:.0f} aligner segments per language; eflomal's sweeps per segment "
                 f"fall from {eflomal_sweeps(segments)} to {eflomal_sweeps(full_segments)} at that size.)")
    emit("\n".join(lines), args.output, end="\n\n")


if __name__ == "__main__":
    main()
