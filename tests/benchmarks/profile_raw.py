"""Where the time of raw SQuAD JSON to answers goes: ``grafusion-predict --qa`` under cProfile,
stage by stage.

    python tests/benchmarks/profile_raw.py [--model ad|no-fusion] [--repeats 3]
        [--xquad ../shared/data/xquad] [--raw-questions 300] [--work DIR]

The same set-up as ``bench_vs_hf.py`` (its ``Setup``, cached in ``--work``: the first
``--raw-questions`` questions of XQuAD de with their English twin, a tiny model trained for 20
updates whose directory holds ``alignment.priors``), one thread.  Each repeat runs the command's
``main`` in-process under cProfile; the table gives, per stage, the median cumulative seconds of
the functions that do that stage's work (the disk pipeline's stage runners in older checkouts,
the in-memory pipeline's functions now; the first group of names found in the profile counts), and
the whole call.  Child processes (eflomal) are not in a profile: their share shows as the gap
between the stages' sum and the wall time, and the CPU column counts them.  Time another checkout
with ``PYTHONPATH=/path/to/it``.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_vs_hf  # noqa: E402

# stage -> alternatives, each a list of (file name, function name) whose cumulative times add up
STAGES = {
    "load": [[("inference.py", "load_model")]],
    "pairs": [[("stages.py", "run_pairs")], [("squad.py", "read_squad"), ("pairing.py", "make_units")]],
    "words": [[("stages.py", "run_words")], [("units.py", "segment_units")]],
    "alignment": [[("stages.py", "run_align")],
                  [("units.py", "segment_lines"), ("align.py", "align"), ("align.py", "eflomal_align"),
                   ("units.py", "link_units"), ("units.py", "project_answers")]],
    "parse": [[("stages.py", "run_parse")], [("units.py", "parse_units")]],
    "windows": [[("stages.py", "run_binarize")], [("units.py", "build_examples"), ("units.py", "gold_questions")]],
    "model": [[("grafusion.py", "forward")]],
    "decoding": [[("span_scorer.py", "decode")]],
}


def stage_seconds(stats):
    """``{stage: cumulative seconds}`` from a ``pstats.Stats``."""
    by_name = {}
    for (path, _, name), (_, _, _, cumulative, _) in stats.stats.items():
        key = (os.path.basename(path), name)
        by_name[key] = max(by_name.get(key, 0.0), cumulative)  # one function, several code objects
    out = {}
    for stage, alternatives in STAGES.items():
        for names in alternatives:
            if any(n in by_name for n in names):
                out[stage] = sum(by_name.get(n, 0.0) for n in names)
                break
        else:
            out[stage] = 0.0
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ad", choices=sorted(bench_vs_hf.MODELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--xquad", default=os.path.join(bench_vs_hf.REPO, "..", "shared", "data", "xquad"))
    p.add_argument("--raw-questions", type=int, default=300)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "grafusion-bench-vs-hf"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from fairseq_grafusion.cli.predict import main as predict_main

    setup = bench_vs_hf.Setup(args.work, args.xquad, args.raw_questions)
    checkpoint = os.path.join(setup.model_dirs[args.model], "checkpoint_best.pt")
    out = os.path.join(tempfile.mkdtemp(prefix="profile-raw-"), "preds.json")
    argv = ["--path", checkpoint, "--qa", setup.raw["src"], setup.raw["tgt"], "--src-lang", "en",
            "--tgt-lang", setup.tgt_lang, "--spm", setup.spm, "--dict", setup.dict, "--max-len",
            str(bench_vs_hf.MAX_LEN), "--doc-stride", str(bench_vs_hf.STRIDE), "--batch-size",
            str(bench_vs_hf.BATCH), "--max-answer-length", str(bench_vs_hf.MAX_ANSWER), "--cpu",
            "--output", out]
    with bench_vs_hf.quiet():
        predict_main(argv)  # warm-up: imports, page cache
    rows = []
    for _ in range(args.repeats):
        profile = cProfile.Profile()
        wall, cpu = time.perf_counter(), bench_vs_hf.cpu_seconds()
        with bench_vs_hf.quiet():
            profile.runcall(predict_main, argv)
        wall, cpu = time.perf_counter() - wall, bench_vs_hf.cpu_seconds() - cpu
        rows.append(dict(stage_seconds(pstats.Stats(profile)), wall=wall, cpu=cpu))
    import fairseq_grafusion

    print(f"{setup.raw_count} questions, model {args.model}, {args.repeats} repeats under cProfile, "
          f"package {os.path.dirname(fairseq_grafusion.__file__)}")
    print("| " + " | ".join(rows[0]) + " |")
    print("| " + " | ".join("---" for _ in rows[0]) + " |")
    print("| " + " | ".join(f"{statistics.median(r[k] for r in rows):.2f}" for k in rows[0]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
