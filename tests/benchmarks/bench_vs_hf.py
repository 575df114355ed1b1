"""Side by side with HuggingFace transformers, what a user would otherwise pick, on one CPU thread.

    python tests/benchmarks/bench_vs_hf.py [--only train,binarized,raw,hub] [--repeats 5]
        [--xquad ../shared/data/xquad] [--raw-questions 300] [--hub-questions 5]
        [--hub-windows default|ours|both] [--work DIR]
        [--output tests/benchmarks/RESULTS.md]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: transformers 4.x; 5.x has no
question-answering pipeline); without it the script says so and exits 0.  Four comparisons, run
interleaved (each repeat runs ours and HF's back to back, alternating which goes first), the same
questions on both sides:

``train``      one training step (forward, span loss, backward, Adam) of the plain encoder
               (``--no-fusion``, XLM-R base sizes, vocabulary 250002) vs
               ``XLMRobertaForQuestionAnswering`` of the same sizes, at l = 256 and 384, batch 1.
``binarized``  answers for an already binarized split (XQuAD de, or without it the bundled en-ro
               sample's 27 validation questions; ``--no-fusion`` tiny model:
               ``predict_split``, model loaded once) vs ``pipeline("question-answering")`` with an
               HF model of the same sizes and a tokenizer made from the same SentencePiece model
               (HF's time includes its tokenisation).  Window counts of both sides are reported.
``raw``        raw SQuAD JSON to a predictions file: ``grafusion-predict --qa`` (its ``main``,
               in-process: preprocessing, loading, predicting) vs loading the HF pipeline and
               answering the same target file; first ``--raw-questions`` questions, for a
               ``--no-fusion`` and a ``--graph align,dep`` model.
``hub``        one question through ``GraFusionModel.from_pretrained(...).answer`` vs one call of
               the HF pipeline, per question, for both models (the ``+ad`` model with
               ``alignment.priors`` in its directory, estimated once at set-up, so each question
               is aligned in-process).  ``--hub-windows``: HF at its default (``doc_stride`` 128
               is its windows' overlap; ours is the step between window starts, BERT's and
               XTREME's convention, so ours reads more windows), at our windows (its overlap set
               per question so that it steps 128 tokens too: the same work on both sides), or
               both; the rows count each side's windows.

Reported per comparison: medians of both sides and the median and minimum over the repeats of
the ratio ours / HF, in CPU time (user + system of the process and its child processes: what a
shared machine disturbs least; counted in 10 ms ticks, so give each side more than a second of
work) and in wall time.

Models are tiny (``grafusion_tiny``, d = 64, 4 layers for ``--no-fusion``) with weights from a few
updates on the benchmark split itself (only speed is measured).  Set-up (binarized data,
checkpoints, the HF model) is cached in ``--work``.  To time another version of the package, run
this file with ``PYTHONPATH=/path/to/that/checkout``.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_SPM = os.path.join(REPO, "examples", "sample", "spm")
COMPARISONS = ("train", "binarized", "raw", "hub")
MODELS = {"no-fusion": ["--no-fusion"], "ad": ["--graph", "align,dep"]}  # ad: the +ad variant
MAX_LEN, STRIDE, MAX_ANSWER, BATCH = 384, 128, 30, 32


def log(message):
    print(f"[bench_vs_hf] {message}", file=sys.stderr, flush=True)


def quiet():
    """Silence stdout and the INFO chatter of fairseq / our commands inside a timed call."""
    logging.disable(logging.INFO)
    return contextlib.redirect_stdout(io.StringIO())


def subset_squad(path, questions, out):
    """The first ``questions`` questions of a SQuAD file (whole paragraphs up to that count)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    kept, total = [], 0
    for article in data["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if total >= questions:
                break
            paragraphs.append(paragraph)
            total += len(paragraph["qas"])
        if paragraphs:
            kept.append(dict(article, paragraphs=paragraphs))
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"version": data.get("version", "1.1"), "data": kept}, f, ensure_ascii=False)
    return total


def squad_questions(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [(qa["id"], qa["question"], p["context"]) for a in data["data"]
            for p in a["paragraphs"] for qa in p["qas"]]


class Setup:
    """Data, checkpoints and the HF model, built once into ``work`` and reused."""

    def __init__(self, work, xquad, raw_questions):
        self.work = work
        os.makedirs(work, exist_ok=True)
        self.spm = os.path.join(SAMPLE_SPM, "sentencepiece.bpe.model")
        self.dict = os.path.join(SAMPLE_SPM, "dict.txt")
        src, tgt = (os.path.join(xquad, f"xquad.{lang}.json") for lang in ("en", "de"))
        self.tgt_lang = "de"
        if not (os.path.isfile(src) and os.path.isfile(tgt)):
            sample = os.path.join(REPO, "examples", "sample", "qa")
            log(f"{src} / {tgt} not found (--xquad DIR): using the bundled en-ro sample's "
                "validation questions")
            src, tgt = (os.path.join(sample, f"valid.{lang}.json") for lang in ("en", "ro"))
            self.tgt_lang = "ro"
            work = os.path.join(work, "sample")
            self.work = work
            os.makedirs(work, exist_ok=True)
        self.src_json, self.tgt_json = src, tgt
        self.data = self._binarize("data", src, tgt)
        self.raw = {}
        for side, path in (("src", src), ("tgt", tgt)):
            self.raw[side] = os.path.join(work, f"raw.{side}.json")
            self.raw_count = subset_squad(path, raw_questions, self.raw[side])
        self.model_dirs = {name: self._checkpoint(name, flags) for name, flags in MODELS.items()}
        self.hf_dir = self._hf_model()

    def _run(self, *argv):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode:
            raise SystemExit(f"bench_vs_hf: {' '.join(argv[:3])} failed:\n{proc.stderr[-3000:]}")

    def _binarize(self, name, src, tgt):
        out = os.path.join(self.work, name)
        if not os.path.isfile(os.path.join(out, "qa-bin", "test.tgt.json")):
            log(f"grafusion-preprocess all -> {out} (once)")
            self._run("-m", "preprocess", "all", "--qa", "test", src, tgt, "--out", out,
                      "--src-lang", "en", "--tgt-lang", self.tgt_lang, "--spm", self.spm, "--dict", self.dict,
                      "--max-len", str(MAX_LEN), "--doc-stride", str(STRIDE))
        return os.path.join(out, "qa-bin")

    def _checkpoint(self, name, flags):
        """A model directory as ``from_pretrained`` reads it: checkpoint, dict.txt, spm."""
        model_dir = os.path.join(self.work, "model-" + name)
        checkpoint = os.path.join(model_dir, "checkpoint_best.pt")
        if not os.path.isfile(checkpoint):
            log(f"fairseq-train {' '.join(flags)} (20 updates) -> {model_dir} (once)")
            save = os.path.join(model_dir, "train")
            self._run("-m", "fairseq_cli.train", self.data, "--user-dir",
                      os.path.join(REPO, "fairseq_grafusion"), "--task", "xmrc_span", "--criterion",
                      "xmrc_span", "--arch", "grafusion_tiny", *flags, "--cpu", "--optimizer", "adam",
                      "--lr", "1e-3", "--batch-size", "16", "--max-update", "20", "--train-subset",
                      "test", "--disable-validation", "--save-dir", save, "--no-epoch-checkpoints",
                      "--no-progress-bar", "--seed", "1")
            shutil.copy(os.path.join(save, "checkpoint_last.pt"), checkpoint)
            shutil.copy(self.spm, model_dir)
            shutil.copy(self.dict, model_dir)
        priors = os.path.join(model_dir, "alignment.priors")
        if "--no-fusion" not in flags and not os.path.isfile(priors):
            self._priors(priors)
        return model_dir

    def _priors(self, path):
        """eflomal priors estimated once (what ``from_pretrained`` reads from the model directory,
        so the hub aligns each question in-process): from the binarized split's own aligner input
        (the English and target paragraphs and questions, segment by segment); only speed is
        measured."""
        from fairseq_grafusion.preprocess.align import estimate_priors

        work = os.path.join(os.path.dirname(self.data), "work", "qa", "test")
        lines = []
        for side in ("src", "tgt"):
            with open(os.path.join(work, f"aligner-input.{side}.txt"), encoding="utf-8") as f:
                lines.append(f.read().splitlines())
        log(f"eflomal priors from {len(lines[0])} segment pairs -> {path} (once)")
        estimate_priors(*lines).save(path)

    def _hf_model(self):
        """XLMRobertaForQuestionAnswering of ``grafusion_tiny``'s sizes with a tokenizer made from
        the same SentencePiece model."""
        from transformers import XLMRobertaConfig, XLMRobertaForQuestionAnswering, XLMRobertaTokenizerFast

        hf_dir = os.path.join(self.work, "hf-tiny")
        if not os.path.isfile(os.path.join(hf_dir, "config.json")):
            tokenizer = XLMRobertaTokenizerFast(vocab_file=self.spm)
            if len(tokenizer) < 100:
                raise SystemExit(f"bench_vs_hf: the HF tokenizer built from {self.spm} has "
                                 f"{len(tokenizer)} tokens (transformers 5.x?); use transformers 4.x")
            config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=4,
                                      num_attention_heads=4, intermediate_size=128,
                                      max_position_embeddings=514, type_vocab_size=1)
            model = XLMRobertaForQuestionAnswering(config)
            model.save_pretrained(hf_dir)
            tokenizer.save_pretrained(hf_dir)
        return hf_dir


def hf_pipeline(hf_dir):
    from transformers import pipeline

    return pipeline("question-answering", model=hf_dir, tokenizer=hf_dir, device=-1)


def hf_answer(pipe, questions, batch_size=BATCH):
    out = pipe(question=[q for _, q, _ in questions], context=[c for _, _, c in questions],
               batch_size=batch_size, max_seq_len=MAX_LEN, doc_stride=STRIDE,
               max_answer_len=MAX_ANSWER, top_k=1)
    out = out if isinstance(out, list) else [out]
    return {qid: a["answer"] for (qid, _, _), a in zip(questions, out)}


def hf_windows(tokenizer, questions):
    """How many windows (HF: features) the pipeline makes of the questions."""
    enc = tokenizer([q for _, q, _ in questions], [c for _, _, c in questions],
                    truncation="only_second", max_length=MAX_LEN, stride=STRIDE,
                    return_overflowing_tokens=True)
    return len(enc["input_ids"])


def hf_overlap_for_our_step(tokenizer, question, step=STRIDE):
    """HF's ``doc_stride`` (the overlap of its windows) that makes them start every ``step``
    tokens, as ours do (``--doc-stride`` is the step, BERT's and XTREME's convention): a window's
    context budget (``MAX_LEN`` less the question and XLM-R's four special tokens) less ``step``."""
    budget = MAX_LEN - len(tokenizer(question, add_special_tokens=False)["input_ids"]) - 4
    return max(1, budget - step)


class WindowCount:
    """Windows (rows of a forward's batch) that ``model`` reads while in the ``with`` block, and
    the CPU seconds of its forward calls (what no pipeline work can take away)."""

    def __init__(self, model, field):
        self.model, self.field, self.count, self.seconds = model, field, 0, 0.0

    def __enter__(self):
        def before(module, args, kwargs):
            value = kwargs.get(self.field, args[0] if args else None)
            self.count += int(value.size(0))
            self.start = time.process_time()

        def after(module, args, kwargs, output):
            self.seconds += time.process_time() - self.start

        self.handles = [self.model.register_forward_pre_hook(before, with_kwargs=True),
                        self.model.register_forward_hook(after, with_kwargs=True)]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


# --- the comparisons: each yields (row name, ours(), hf(), note) ------------------------------

def train_comparisons(lengths, vocab):
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForQuestionAnswering

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_step import build

    torch.manual_seed(0)
    ours = build("grafusion_base", "no-fusion", vocab).train()
    theirs = XLMRobertaForQuestionAnswering(XLMRobertaConfig(
        vocab_size=vocab, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1)).train()
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-6)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-6)
    params = sum(p.numel() for p in ours.parameters()), sum(p.numel() for p in theirs.parameters())
    for length in lengths:
        tokens = torch.randint(4, vocab, (1, length))
        tokens[:, 0], tokens[:, -1] = 0, 2
        target = torch.tensor([length // 3])

        def step_ours(tokens=tokens, target=target):
            opt_ours.zero_grad(set_to_none=True)
            out = ours(tgt_tokens=tokens)
            loss = (torch.nn.functional.cross_entropy(out["tgt_start"], target)
                    + torch.nn.functional.cross_entropy(out["tgt_end"], target))
            loss.backward()
            opt_ours.step()

        def step_theirs(tokens=tokens, target=target):
            opt_theirs.zero_grad(set_to_none=True)
            theirs(input_ids=tokens, start_positions=target, end_positions=target).loss.backward()
            opt_theirs.step()

        yield (f"train step, l={length}", step_ours, step_theirs,
               f"{params[0] / 1e6:.1f}M / {params[1] / 1e6:.1f}M parameters, batch 1")


def binarized_comparison(setup):
    from fairseq_grafusion.inference import load_model, predict_split

    model, task = load_model(os.path.join(setup.model_dirs["no-fusion"], "checkpoint_best.pt"),
                             setup.data)
    pipe = hf_pipeline(setup.hf_dir)
    questions = squad_questions(os.path.join(setup.data, "test.tgt.json"))
    ours_windows = len(predict_windows(setup.data))
    theirs_windows = hf_windows(pipe.tokenizer, questions)

    def ours():
        with quiet():
            predict_split(model, task, setup.data, "test", batch_size=BATCH,
                          max_answer_length=MAX_ANSWER, progress=False)

    def theirs():
        hf_answer(pipe, questions)

    yield (f"binarized split, {len(questions)} questions", ours, theirs,
           f"windows: ours {ours_windows}, HF {theirs_windows}; batch {BATCH}")


def predict_windows(data):
    from fairseq_grafusion.data import PairReader

    return PairReader(os.path.join(data, "test")).ids


def raw_comparisons(setup, models):
    from fairseq_grafusion.cli.predict import main as predict_main

    questions = squad_questions(setup.raw["tgt"])
    out_dir = tempfile.mkdtemp(prefix="bench-vs-hf-raw-")
    for name in models:
        checkpoint = os.path.join(setup.model_dirs[name], "checkpoint_best.pt")

        def ours(checkpoint=checkpoint):
            with quiet():
                predict_main(["--path", checkpoint, "--qa", setup.raw["src"], setup.raw["tgt"],
                              "--src-lang", "en", "--tgt-lang", setup.tgt_lang, "--spm", setup.spm,
                              "--dict", setup.dict, "--max-len", str(MAX_LEN), "--doc-stride",
                              str(STRIDE), "--batch-size", str(BATCH), "--max-answer-length",
                              str(MAX_ANSWER), "--cpu", "--output", os.path.join(out_dir, "ours.json")])

        def theirs():
            pipe = hf_pipeline(setup.hf_dir)
            answers = hf_answer(pipe, squad_questions(setup.raw["tgt"]))
            with open(os.path.join(out_dir, "hf.json"), "w", encoding="utf-8") as f:
                json.dump(answers, f, ensure_ascii=False)

        yield (f"raw JSON -> answers, {len(questions)} questions, {name}", ours, theirs,
               "grafusion-predict --qa (in-process main) vs pipeline load + answer + write")


def hub_comparisons(setup, models, count, hf_windows_as="default"):
    """``hf_windows_as="ours"``: HF's overlap set per question (:func:`hf_overlap_for_our_step`),
    so that both sides read the same windows; "default": each side's own default."""
    from fairseq_grafusion.models import GraFusionModel

    pipe = hf_pipeline(setup.hf_dir)
    sources = {qid: (q, c) for qid, q, c in squad_questions(setup.src_json)}
    questions = squad_questions(setup.tgt_json)[:count]
    overlap = {qid: (hf_overlap_for_our_step(pipe.tokenizer, q) if hf_windows_as == "ours" else STRIDE)
               for qid, q, _ in questions}

    def theirs():
        for qid, question, context in questions:
            pipe(question=question, context=context, max_seq_len=MAX_LEN, doc_stride=overlap[qid],
                 max_answer_len=MAX_ANSWER)

    with WindowCount(pipe.model, "input_ids") as hf_count:
        theirs()
    for name in models:
        with quiet():
            qa = GraFusionModel.from_pretrained(setup.model_dirs[name], src_lang="en",
                                                tgt_lang=setup.tgt_lang)

        def ours(qa=qa):
            with quiet():
                for qid, question, context in questions:
                    source_question, source_context = sources[qid]
                    qa.answer(question, context, source_question=source_question,
                              source_context=source_context)

        with WindowCount(qa.model, "tgt_tokens") as our_count:
            ours()
        windows = (f"windows: ours {our_count.count} (step {STRIDE}), HF {hf_count.count} "
                   + ("(its overlap set per question: step 128 too)" if hf_windows_as == "ours"
                      else f"(overlap {STRIDE}, HF's default meaning)")
                   + f"; the model's forward alone, one untimed pass: ours {our_count.seconds:.3f} s, "
                   f"HF {hf_count.seconds:.3f} s")
        yield (f"hub, one question (x{len(questions)}), {name}"
               + (", HF at our windows" if hf_windows_as == "ours" else ""), ours, theirs,
               f"from_pretrained(...).answer vs pipeline(question, context); {windows}")


# --- running and reporting -------------------------------------------------------------------

def cpu_seconds():
    """CPU time of this process (all its threads) and of its finished child processes (eflomal)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def interleave(rows, repeats):
    """Each row's two functions, repeat by repeat, alternating which goes first; one warm-up.
    Returns ``{row: {"wall" | "cpu": (ours, HF)}}`` lists of seconds."""
    times = {name: {"wall": ([], []), "cpu": ([], [])} for name, _, _, _ in rows}
    for name, ours, theirs, _ in rows:
        log(f"warm-up: {name}")
        ours()
        theirs()
    for r in range(repeats):
        for name, ours, theirs, _ in rows:
            pair = [(0, ours), (1, theirs)]
            for side, fn in (pair if r % 2 == 0 else pair[::-1]):
                wall, cpu = time.perf_counter(), cpu_seconds()
                fn()
                times[name]["wall"][side].append(time.perf_counter() - wall)
                times[name]["cpu"][side].append(cpu_seconds() - cpu)
            (w_ours, w_theirs), (c_ours, c_theirs) = ([t[-1] for t in times[name][k]]
                                                      for k in ("wall", "cpu"))
            log(f"repeat {r + 1}/{repeats}: {name}: wall ours {w_ours:.3f}s, HF {w_theirs:.3f}s, "
                f"ratio {w_ours / w_theirs:.2f}; CPU ours {c_ours:.3f}s, HF {c_theirs:.3f}s, "
                f"ratio {c_ours / c_theirs:.2f}")
    return times


def versions():
    import fairseq
    import numpy
    import tokenizers
    import torch
    import transformers

    import fairseq_grafusion

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} thread), transformers {transformers.__version__}, "
            f"tokenizers {tokenizers.__version__}, fairseq {fairseq.__version__}, numpy "
            f"{numpy.__version__}; {cpu}, {os.cpu_count()} cores; fairseq_grafusion from "
            f"{os.path.dirname(os.path.dirname(fairseq_grafusion.__file__))}")


def table(rows, times, repeats):
    lines = ["| comparison | CPU s: ours / HF (median) | CPU ratio median / min | "
             "wall s: ours / HF (median) | wall ratio median / min | notes |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, _, _, note in rows:
        cells = []
        for kind in ("cpu", "wall"):
            ours, theirs = times[name][kind]
            ratios = [a / b for a, b in zip(ours, theirs)]
            cells.append(f"{statistics.median(ours):.3f} / {statistics.median(theirs):.3f} | "
                         f"{statistics.median(ratios):.2f} / {min(ratios):.2f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {note} |")
    return "\n".join(lines) + (
        f"\n\n({repeats} interleaved repeats after one warm-up; ratio = ours / HF; CPU = user + "
        "system time of the process and its child processes, which other processes on a shared "
        "machine disturb less than wall time)\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(COMPARISONS),
                   help=f"comma-separated subset of {','.join(COMPARISONS)}")
    p.add_argument("--models", default=",".join(MODELS), help="models for raw and hub (default: both)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--xquad", default=os.path.join(REPO, "..", "shared", "data", "xquad"),
                   help="directory with xquad.en.json and xquad.de.json (if absent: the "
                   "bundled en-ro sample's validation questions)")
    p.add_argument("--raw-questions", type=int, default=300, help="questions for the raw comparison")
    p.add_argument("--hub-questions", type=int, default=5, help="questions per hub repeat")
    p.add_argument("--hub-windows", default="default", choices=["default", "ours", "both"],
                   help="the hub rows' HF windows: its default (doc_stride 128 as an overlap), ours "
                   "(its overlap set per question so that its windows start every 128 tokens, as "
                   "ours: the same work on both sides), or a row of each")
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 384], help="l of the train step")
    p.add_argument("--vocab", type=int, default=250002, help="vocabulary of the train step")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "grafusion-bench-vs-hf"),
                   help="cache of the set-up (binarized data, checkpoints, HF model)")
    p.add_argument("--label", default="", help="a label for the table heading (e.g. before / after)")
    p.add_argument("--output", help="append the table (markdown) to this file")
    args = p.parse_args(argv)
    only = [c for c in args.only.split(",") if c]
    unknown = sorted(set(only) - set(COMPARISONS)) + sorted(set(args.models.split(",")) - set(MODELS))
    if unknown:
        p.error(f"unknown comparison or model: {', '.join(unknown)}")
    try:
        import transformers
    except ImportError:
        print("bench_vs_hf: skipped: transformers is not installed (pip install -e '.[bench]')")
        return 0
    if int(transformers.__version__.split(".")[0]) >= 5:
        print(f"bench_vs_hf: skipped: transformers {transformers.__version__} has no "
              "question-answering pipeline; install 4.x (pip install -e '.[bench]')")
        return 0
    import torch

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    import fairseq_grafusion  # noqa: F401  (registers the plugin)

    models = args.models.split(",")
    setup = Setup(args.work, args.xquad, args.raw_questions) if set(only) - {"train"} else None
    rows = []
    if "train" in only:
        rows += train_comparisons(args.lengths, args.vocab)
    if "binarized" in only:
        rows += binarized_comparison(setup)
    if "raw" in only:
        rows += raw_comparisons(setup, models)
    if "hub" in only:
        for kind in (["default", "ours"] if args.hub_windows == "both" else [args.hub_windows]):
            rows += hub_comparisons(setup, models, args.hub_questions, kind)
    times = interleave(rows, args.repeats)
    data = "" if setup is None else f"; data: en-{setup.tgt_lang} ({setup.tgt_json})"
    heading = (f"### {args.label + ': ' if args.label else ''}`bench_vs_hf.py --only {','.join(only)}`, "
               f"{datetime.date.today()}\n\n{versions()}{data}\n")
    text = heading + "\n" + table(rows, times, args.repeats)
    print(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
