"""Throughput of the data pipeline and random access to the binary edge dataset.

    python tests/benchmarks/bench_pipeline.py [--copies 20] [--output tests/benchmarks/RESULTS.md]

* align: eflomal + grow-diag-final-and on the bundled parallel sentences repeated ``--copies``
  times (sentence pairs per second, one eflomal run);
* parse: CoNLL-U import through ``stanza.utils.conll.CoNLL`` of the Romanian UD fixture repeated
  (sentences per second);
* binarize: ``grafusion-preprocess parallel`` on the repeated parallel text, stage ``binarize``
  only (sentence pairs per second; the earlier stages are run first and reused);
* read: ``PairReader`` random access (microseconds per example, fields mmapped and checked).
"""
import argparse
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
SAMPLE = os.path.join(REPO, "examples", "sample")


def repeated(path, copies, out):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines * copies) + "\n")
    return len(lines) * copies


def bench_align(tmp, copies):
    from fairseq_grafusion.preprocess.align import eflomal_align
    from fairseq_grafusion.preprocess.wordseg import tokenize

    src = open(os.path.join(SAMPLE, "parallel", "train.en"), encoding="utf-8").read().splitlines()
    tgt = open(os.path.join(SAMPLE, "parallel", "train.ro"), encoding="utf-8").read().splitlines()
    def words(text, lang):  # tokenize gives flat [start0, end0, start1, end1, ...] offsets
        o = tokenize(text, lang)
        return " ".join(text[o[k]:o[k + 1]] for k in range(0, len(o), 2))

    src = [words(s, "en") for s in src] * copies
    tgt = [words(t, "ro") for t in tgt] * copies
    start = time.perf_counter()
    links = eflomal_align(src, tgt)
    took = time.perf_counter() - start
    assert len(links) == len(src)
    return len(src), took


def bench_parse(tmp, copies):
    from fairseq_grafusion.preprocess.parse import read_conllu

    fixture = os.path.join(REPO, "tests", "fixtures", "preprocess", "ro_rrt_test.conllu")
    text = open(fixture, encoding="utf-8").read().strip() + "\n\n"
    path = os.path.join(tmp, "big.conllu")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text * copies)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    lengths = [sum(1 for line in b.splitlines() if line and line[0].isdigit()
                   and "-" not in line.split("\t")[0] and "." not in line.split("\t")[0])
               for b in blocks] * copies
    start = time.perf_counter()
    arcs = read_conllu(path, lengths)
    took = time.perf_counter() - start
    return len(arcs), took


def run_preprocess(*args):
    subprocess.run([sys.executable, "-m", "fairseq_grafusion.preprocess", *args], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def bench_binarize(tmp, copies):
    n = repeated(os.path.join(SAMPLE, "parallel", "train.en"), copies, os.path.join(tmp, "p.en"))
    repeated(os.path.join(SAMPLE, "parallel", "train.ro"), copies, os.path.join(tmp, "p.ro"))
    common = ["--out", os.path.join(tmp, "out"), "--src-lang", "en", "--tgt-lang", "ro",
              "--parallel", "train", os.path.join(tmp, "p.en"), os.path.join(tmp, "p.ro"),
              "--spm", os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"),
              "--dict", os.path.join(SAMPLE, "spm", "dict.txt")]
    run_preprocess("parallel", *common)  # every stage once; binarize is then redone alone
    start = time.perf_counter()
    run_preprocess("binarize", *common, "--force")
    took = time.perf_counter() - start
    return n, took, os.path.join(tmp, "out", "parallel-bin", "train")


def bench_read(prefix, reads=5000):
    from fairseq_grafusion.data import PairReader

    reader = PairReader(prefix)
    order = np.random.RandomState(0).randint(0, len(reader), reads)
    start = time.perf_counter()
    for i in order:
        reader[int(i)]
    return reads, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=20, help="repeat the bundled text this often")
    p.add_argument("--output", help="append the table (markdown) to this file")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="grafusion-bench-")
    try:
        rows = []
        n, t = bench_align(tmp, args.copies)
        rows.append(("align (eflomal + grow-diag-final-and)", f"{n} sentence pairs", t, n / t, "pairs/s"))
        n, t = bench_parse(tmp, args.copies * 10)
        rows.append(("parse (CoNLL-U import via stanza)", f"{n} sentences", t, n / t, "sentences/s"))
        n, t, prefix = bench_binarize(tmp, args.copies)
        rows.append(("binarize (parallel, incl. process start)", f"{n} sentence pairs", t, n / t,
                     "pairs/s"))
        n, t = bench_read(prefix)
        rows.append(("PairReader random access", f"{n} reads", t, t / n * 1e6, "us/example"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| stage | work | seconds | rate | unit |", "| --- | --- | --- | --- | --- |"]
    lines += ["| %s | %s | %.2f | %.0f | %s |" % r for r in rows]
    emit("\n".join(lines), args.output, end="\n\n")


if __name__ == "__main__":
    main()
