"""Questions per second of the hub (``GraFusionModel.from_pretrained(...).answer``) on CPU.

    python tests/benchmarks/bench_hub.py [--questions 10] [--graph align,dep] [--updates 20]

The bundled en-ro sample is preprocessed, a tiny model (``grafusion_tiny``, ``--graph``) is
trained for ``--updates`` updates (its answers do not matter here, only the time), saved as a
model directory (checkpoint + ``dict.txt`` + ``sentencepiece.bpe.model``) and loaded through the
hub with ``align_extra`` = the sample's parallel training text, as a user with little bitext
would.  Timed: building the hub, then the first ``--questions`` validation questions answered one
call per question (English side given), and, where the hub takes a list, in one call.

The script runs against older checkouts too (``PYTHONPATH=CHECKOUT``), to measure "before".
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _code_root():
    """The checkout whose ``fairseq_grafusion`` is imported (this one, or PYTHONPATH's)."""
    import fairseq_grafusion

    return os.path.dirname(os.path.dirname(os.path.abspath(fairseq_grafusion.__file__)))


def _preprocess_module():
    try:
        import fairseq_grafusion.preprocess  # noqa: F401

        return "fairseq_grafusion.preprocess"
    except ImportError:  # checkouts before the pipeline became a subpackage
        return "preprocess"


def _run(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{proc.stderr[-3000:]}")
    return proc


def build_model_dir(tmp, graph, updates):
    code = _code_root()
    sample = os.path.join(code, "examples", "sample")
    out = os.path.join(tmp, "run")
    _run(["-m", _preprocess_module(), "all", "--out", out], cwd=code)
    save = os.path.join(tmp, "ck")
    _run(["-m", "fairseq_cli.train", os.path.join(out, "qa-bin"), "--user-dir",
          os.path.join(code, "fairseq_grafusion"), "--task", "xmrc_span", "--criterion", "xmrc_span",
          "--arch", "grafusion_tiny", "--graph", graph, "--cpu", "--optimizer", "adam", "--lr", "1e-3",
          "--batch-size", "8", "--max-update", str(updates), "--save-dir", save,
          "--disable-validation", "--no-epoch-checkpoints", "--no-progress-bar", "--seed", "1"],
         cwd=code)
    model = os.path.join(tmp, "model")
    os.makedirs(model)
    shutil.copy(os.path.join(save, "checkpoint_last.pt"), os.path.join(model, "checkpoint_best.pt"))
    shutil.copy(os.path.join(out, "qa-bin", "dict.txt"), os.path.join(model, "dict.txt"))
    shutil.copy(os.path.join(sample, "spm", "sentencepiece.bpe.model"),
                os.path.join(model, "sentencepiece.bpe.model"))
    return model, os.path.join(out, "qa-bin"), sample


def questions(data, n):
    """``(question, context, source question, source context)`` of the first ``n`` valid ids."""
    def by_id(path):
        out = {}
        for article in json.load(open(path, encoding="utf-8"))["data"]:
            for p in article["paragraphs"]:
                for qa in p["qas"]:
                    out[qa["id"]] = (qa["question"], p["context"])
        return out

    tgt, src = by_id(os.path.join(data, "valid.tgt.json")), by_id(os.path.join(data, "valid.src.json"))
    ids = list(tgt)[:n]
    return [tgt[i] + src[i] for i in ids]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--graph", default="align,dep")
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from fairseq_grafusion.models import GraFusionModel

    tmp = tempfile.mkdtemp(prefix="bench-hub-")
    try:
        model, data, sample = build_model_dir(tmp, args.graph, args.updates)
        extra = [os.path.join(sample, "parallel", f"train.{lang}") for lang in ("en", "ro")]
        start = time.perf_counter()
        qa = GraFusionModel.from_pretrained(model, checkpoint_file="checkpoint_best.pt",
                                            src_lang="en", tgt_lang="ro", align_extra=extra)
        build = time.perf_counter() - start
        items = questions(data, args.questions)
        qa.answer(*items[0][:2], source_question=items[0][2], source_context=items[0][3])  # warm-up
        start = time.perf_counter()
        single = [qa.answer(q, c, source_question=sq, source_context=sc) for q, c, sq, sc in items]
        one_by_one = time.perf_counter() - start
        print(f"code: {_code_root()}")
        print(f"model: grafusion_tiny --graph {args.graph}; align_extra: {len(open(extra[0]).readlines())} "
              "sentence pairs; torch threads: 1")
        print(f"hub built in {build:.2f} s")
        print(f"one call per question: {len(items)} questions in {one_by_one:.2f} s = "
              f"{len(items) / one_by_one:.2f} questions/s ({1000 * one_by_one / len(items):.0f} ms each)")
        try:
            start = time.perf_counter()
            batch = qa.answer([q for q, _, _, _ in items], [c for _, c, _, _ in items],
                              source_question=[sq for _, _, sq, _ in items],
                              source_context=[sc for _, _, _, sc in items])
            batched = time.perf_counter() - start
        except Exception as e:  # older hubs take one question per call
            print(f"one call for all questions: not supported ({type(e).__name__})")
            return
        assert [b["text"] for b in batch] == [s["text"] for s in single]
        print(f"one call for all questions: {len(items)} questions in {batched:.2f} s = "
              f"{len(items) / batched:.2f} questions/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
