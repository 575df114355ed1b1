"""Preprocessing at SQuAD translate-train scale: binarize throughput and ``--workers`` scaling.

    python tests/benchmarks/bench_preprocess_scale.py [--copies 4] [--workers 1 2] \\
        [--output tests/benchmarks/RESULTS.md]

* binarize, per core: ``build_group`` (the ``binarize`` stage's work for one passage and its
  questions) in one process on XQuAD en-de (``../shared/data/xquad``; the bundled sample when it is
  absent), question-passage windows per second at ``--max-len 384 --doc-stride 128``, and the
  main process's ``PairWriter.add`` per window;
* ``grafusion-preprocess`` stage by stage (pairs, words, align with eflomal, parse without a
  parser, binarize) on the en-de files repeated ``--copies`` times (question ids made unique),
  for each ``--workers`` value, wall seconds per stage (each stage is one process; the start of a
  process, importing fairseq, is measured and listed apart);
* extrapolation to translate-train-all SQuAD (87,599 questions x 7 target languages, each an
  English-X run): per stage ``T(w) = serial + parallel / w`` fitted from the two smallest
  ``--workers`` values, scaled linearly in questions (eflomal's own cost grows more slowly: its
  iterations fall with the corpus size), for 8 and 32 cores, running the 7 languages one after the
  other with all cores each or side by side with cores / 7 each.  Parsing is not included (Stanza
  on a GPU is a separate estimate).

A SentencePiece model like XLM-R's (unigram, nmt_nfkc, 8000 pieces) is trained on the data first.
"""
import argparse
import glob
import io
import json
import os
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
    from preprocess import binarize
    from preprocess.qa_io import read_squad
    from preprocess.wordseg import tokenize

    binarize._init_encoder(spm_path, dict_path)
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
            tasks[key] = (({"uid": f"p{len(tasks)}", **texts}, words, {"links": links},
                           {**arcs, "src_same": [], "tgt_same": []}), [],
                          {"max_len": 384, "doc_stride": 128, "max_query_len": 64})
        texts = {"src": s["question"], "tgt": q["question"]}
        words = {"src": tokenize(texts["src"], "en"), "tgt": tokenize(texts["tgt"], lang)}
        n = (len(words["src"]) // 2, len(words["tgt"]) // 2)
        tasks[key][1].append(({"uid": q["id"], **texts}, words,
                              {"links": [0, 0] if min(n) else [], "answers": {"tgt": q["answers"][0]}},
                              {side: np.stack([np.arange(1, m), np.arange(m - 1)], 1).reshape(-1).tolist()
                               for side, m in zip(("src", "tgt"), n)}))
    tasks = list(tasks.values())
    binarize.build_group(tasks[0])  # warm up
    start = time.perf_counter()
    results = [binarize.build_group(t) for t in tasks]
    took = time.perf_counter() - start
    windows = sum(len(r[0]) for r in results)
    start = time.perf_counter()
    with PairWriter(os.path.join(tmp, "bench"), 250002, with_span=True,
                    extra_fields=("src.offsets", "tgt.offsets")) as writer:
        for examples, _ in results:
            for uid, fields in examples:
                writer.add(uid, **fields)
    write = time.perf_counter() - start
    return windows, len(tq), took, write


def run_stage(stage, args):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "preprocess", stage, *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    return time.perf_counter() - start


def bench_pipeline(src, tgt, lang, spm_path, dict_path, workers, tmp):
    """Seconds per stage (and process start) of grafusion-preprocess for each --workers."""
    out = {}
    for w in workers:
        args = ["--out", os.path.join(tmp, f"w{w}"), "--src-lang", "en", "--tgt-lang", lang,
                "--qa", "train", src, tgt, "--spm", spm_path, "--dict", dict_path, "--workers", str(w)]
        out[w] = {stage: run_stage(stage, args) for stage in STAGES}
        out[w]["start"] = min(run_stage("pairs", args) for _ in range(2))  # up to date: start only
    return out


def extrapolate(times, questions, cores):
    """Hours for translate-train-all SQuAD on ``cores`` (see the module docstring)."""
    w1, w2 = sorted(times)[:2]
    scale = SQUAD_QUESTIONS / questions

    def run(w):
        total = 0.0
        for stage in STAGES:
            t1, t2 = times[w1][stage] - times[w1]["start"], times[w2][stage] - times[w2]["start"]
            parallel = max(0.0, (t1 - t2) / (1 / w1 - 1 / w2))
            serial = max(0.0, t1 - parallel / w1)
            total += (serial + parallel / w) * scale + times[w1]["start"]
        return total

    one_by_one = LANGUAGES * run(cores)
    side_by_side = -(-LANGUAGES // cores) * run(max(1, cores // LANGUAGES))
    return one_by_one / 3600, side_by_side / 3600


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
        windows, questions, took, write = bench_binarize(src_json, tgt_json, lang, spm_path, dict_path, tmp)
        src, tgt = os.path.join(tmp, "en.json"), os.path.join(tmp, f"{lang}.json")
        n = repeated(src_json, args.copies, src)
        repeated(tgt_json, args.copies, tgt)
        times = bench_pipeline(src, tgt, lang, spm_path, dict_path, args.workers, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    name = os.path.basename(tgt_json)
    lines = [f"binarize on {name} paired with English ({questions} questions, {windows} windows, "
             "max-len 384, stride 128), one process:", "",
             "| work | seconds | rate |", "| --- | --- | --- |",
             f"| build_group (encode, windows, edges) | {took:.2f} | {windows / took:.0f} windows/s, "
             f"{questions / took:.0f} questions/s |",
             f"| PairWriter.add (main process) | {write:.2f} | {windows / write:.0f} windows/s |", "",
             f"grafusion-preprocess, stage by stage, {name} x {args.copies} ({n} questions), seconds:", "",
             "| --workers | " + " | ".join(STAGES) + " | total | process start (in each) |",
             "| --- |" + " --- |" * (len(STAGES) + 2)]
    for w, t in sorted(times.items()):
        lines.append(f"| {w} | " + " | ".join(f"{t[s]:.1f}" for s in STAGES)
                     + f" | {sum(t[s] for s in STAGES):.1f} | {t['start']:.1f} |")
    lines += ["", f"translate-train-all SQuAD ({SQUAD_QUESTIONS} questions x {LANGUAGES} languages, "
              "no parsing), extrapolated hours:", "",
              "| cores | languages one by one, all cores each | side by side, cores / 7 each |",
              "| --- | --- | --- |"]
    for cores in (8, 32):
        a, b = extrapolate(times, n, cores)
        lines.append(f"| {cores} | {a:.2f} | {b:.2f} |")
    emit("\n".join(lines), args.output, end="\n\n")


if __name__ == "__main__":
    main()
