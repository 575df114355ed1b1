"""``grafusion-preprocess``: QA and parallel data -> fairseq-grafusion binary datasets.

Subcommands run one stage or a chain; see ``grafusion-preprocess -h`` for the layout.
"""
import argparse
import logging
import os
import sys

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "sample")
SAMPLE_OUT = "sample-run"

_EPILOG = """\
stages (each reads the previous one's output under OUT/work; 'all' chains them):
  pairs     pair the source (English) and target SQuAD files by question id; a missing side is
            translated with --mt-model (translate-train / translate-test) or reported and dropped
  words     sentences and words with character offsets (Stanza with --stanza-dir, else rules)
  align     eflomal word alignment + grow-diag-final-and, or --alignments FILE (Pharaoh 'i-j',
            one line per line of OUT/work/CHAIN/SPLIT/aligner-input.{src,tgt}.txt); answers of a
            translated side are projected through the alignment
  parse     dependency arcs (Stanza with --stanza-dir, or --src-conllu/--tgt-conllu parsed from
            OUT/work/CHAIN/SPLIT/sentences.{src,tgt}.txt) and same-word edges
  binarize  SentencePiece + fairseq dictionary, windows, answer positions, graph edges ->
            OUT/qa-bin/SPLIT.* (xmrc_span) and OUT/parallel-bin/SPLIT.* (sa_graph_pretrain),
            plus dict.txt in each
  parallel  the whole chain for --parallel splits only
  merge     join the binary shards of --num-shards runs into one split

windows: each stream is [<s> question </s></s> passage </s>] with at most --max-len tokens;
  --doc-stride is the STEP between window starts (as BERT's and XTREME's run_squad.py), not the
  overlap (HuggingFace). Windows follow the target passage; each gets the source window sharing
  the most alignment links with it (the one holding the source answer when it holds the target
  answer). An answer outside a window points to position 0 (<s>).

examples:
  grafusion-preprocess all                      # the bundled en-ro sample -> sample-run/
  grafusion-preprocess all --out data --src-lang en --tgt-lang de \\
      --qa train squad.train.en.json squad.train.de.json --qa valid dev.en.json dev.de.json \\
      --spm xlmr.base/sentencepiece.bpe.model --dict xlmr.base/dict.txt --workers 8
  grafusion-preprocess pairs --out data --src-lang en --tgt-lang de --qa train squad.en.json - \\
      --mt-model wmt19.en-de                    # translate-train, answers projected in 'align'
"""


def get_parser():
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("data")
    g.add_argument("--out", help=f"output directory (default with --sample: {SAMPLE_OUT})")
    g.add_argument("--sample", action="store_true",
                   help="use the bundled en-ro sample (examples/sample) for every input not given; "
                        "'all' without --qa/--parallel implies it")
    g.add_argument("--src-lang", help="source (English) language code (sample: en)")
    g.add_argument("--tgt-lang", help="target language code (sample: ro)")
    g.add_argument("--qa", nargs=3, action="append", default=[], metavar=("SPLIT", "SRC_JSON", "TGT_JSON"),
                   help="a QA split (train, valid, test, ...): SQuAD v1.1 files by language, '-' for a "
                        "side to translate; repeat for more splits")
    g.add_argument("--parallel", nargs=3, action="append", default=[], metavar=("SPLIT", "SRC_TXT", "TGT_TXT"),
                   help="a parallel-text split: line-aligned files; repeat for more splits")
    g.add_argument("--skip-bad", action="store_true",
                   help="drop and count questions with an answer that does not match its context or "
                        "an empty context, instead of stopping")
    g.add_argument("--ignore-answers", action="store_true",
                   help="prediction input: keep every question, neither check nor use gold answers "
                        "(they are only for scoring), keep questions of empty contexts")
    g = common.add_argument_group("run")
    g.add_argument("--workers", type=int, default=1, help="processes for CPU-bound stages (default 1)")
    g.add_argument("--num-shards", type=int, default=1, help="split the data into K shards (default 1)")
    g.add_argument("--shard-id", type=int, default=0, help="the shard this run processes (0..K-1)")
    g.add_argument("--force", action="store_true", help="recompute outputs that are up to date")
    g = common.add_argument_group("translation (pairs)")
    g.add_argument("--mt-model", metavar="DIR", help="fairseq translation model directory "
                   "(TransformerModel.from_pretrained) for a missing side")
    g.add_argument("--mt-checkpoint", default="model.pt", help="checkpoint file in --mt-model (default model.pt)")
    g.add_argument("--mt-bpe", choices=("sentencepiece", "subword_nmt"), help="the model's BPE")
    g.add_argument("--mt-bpe-model", metavar="FILE", help="SentencePiece model or BPE codes of --mt-bpe")
    g.add_argument("--mt-beam", type=int, default=5, help="beam size (default 5)")
    g = common.add_argument_group("words, alignment, parsing")
    g.add_argument("--stanza-dir", metavar="DIR", help="local Stanza resources (never downloaded): "
                   "tokenizer and parser per language when present")
    g.add_argument("--alignments", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import Pharaoh alignments instead of running eflomal (SPLIT needed when "
                        "several splits are processed)")
    g.add_argument("--align-extra", nargs=2, metavar=("SRC_TXT", "TGT_TXT"),
                   help="extra line-aligned text that only trains the eflomal model")
    g.add_argument("--src-conllu", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import source dependency parses (CoNLL-U of sentences.src.txt)")
    g.add_argument("--tgt-conllu", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import target dependency parses (CoNLL-U of sentences.tgt.txt)")
    g.add_argument("--same-max-group", type=int, default=8,
                   help="same-word edges: a form occurring more often is chained, not a clique (default 8)")
    g = common.add_argument_group("binarize")
    g.add_argument("--spm", metavar="FILE", help="SentencePiece model (XLM-R's sentencepiece.bpe.model)")
    g.add_argument("--dict", metavar="FILE", help="fairseq dictionary of --spm (XLM-R's dict.txt)")
    g.add_argument("--max-len", type=int, default=384, help="tokens per stream (default 384)")
    g.add_argument("--doc-stride", type=int, default=128,
                   help="STEP in tokens between window starts (XTREME/BERT meaning, not HuggingFace's "
                        "overlap; default 128)")
    g.add_argument("--max-query-len", type=int, default=64, help="question tokens kept (default 64)")

    parser = argparse.ArgumentParser(
        prog="grafusion-preprocess", description="Build fairseq-grafusion datasets: pair, segment, "
        "align, parse and binarize QA data (xmrc_span) and parallel text (sa_graph_pretrain).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, text in (("pairs", "pair QA files by question id (translate a missing side)"),
                       ("words", "sentence split and word segmentation"),
                       ("align", "word alignment (eflomal + grow-diag-final-and, or Pharaoh import)"),
                       ("parse", "dependency and same-word edges"),
                       ("binarize", "encode and write the binary splits"),
                       ("all", "every stage, QA then parallel splits"),
                       ("parallel", "every stage for the --parallel splits"),
                       ("merge", "join binary shards (--num-shards K) of every split")):
        sub.add_parser(name, parents=[common], help=text, description=text,
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def _per_split(values, option, splits):
    """``--option [SPLIT] FILE`` entries -> {split: file}."""
    from fairseq_grafusion.errors import GraFusionError

    out = {}
    for v in values:
        if len(v) == 2:
            out[v[0]] = v[1]
        elif len(v) == 1:
            if len(splits) != 1:
                raise GraFusionError(f"{option} {v[0]}: name the split ({option} SPLIT FILE) when "
                                     f"several splits are processed ({', '.join(splits)})")
            out[splits[0]] = v[0]
        else:
            raise GraFusionError(f"{option} takes [SPLIT] FILE")
    return out


def _lookup(mapping, chain, split, qa_names):
    """A per-split option's value: 'CHAIN/SPLIT' first, then 'SPLIT' (QA split first)."""
    if f"{chain}/{split}" in mapping:
        return mapping[f"{chain}/{split}"]
    if chain == "qa" or split not in qa_names:
        return mapping.get(split)
    return None


def _apply_sample(opts):
    from fairseq_grafusion.errors import GraFusionError

    use = opts.sample or (opts.command == "all" and not opts.qa and not opts.parallel)
    if not use:
        return
    if not os.path.isdir(SAMPLE_DIR):
        raise GraFusionError(f"the bundled sample is not installed ({SAMPLE_DIR}); run from a source checkout")
    s = lambda *p: os.path.join(SAMPLE_DIR, *p)  # noqa: E731
    opts.sample = True
    opts.out = opts.out or SAMPLE_OUT
    opts.src_lang, opts.tgt_lang = opts.src_lang or "en", opts.tgt_lang or "ro"
    if not opts.qa and not opts.parallel:
        opts.qa = [[split, s("qa", f"{split}.en.json"), s("qa", f"{split}.ro.json")] for split in ("train", "valid")]
        opts.parallel = [[split, s("parallel", f"{split}.en"), s("parallel", f"{split}.ro")] for split in ("train", "valid")]
    opts.spm = opts.spm or s("spm", "sentencepiece.bpe.model")
    opts.dict = opts.dict or s("spm", "dict.txt")
    opts.align_extra = opts.align_extra or [s("parallel", "train.en"), s("parallel", "train.ro")]


def main(argv=None):
    opts = get_parser().parse_args(argv)
    from fairseq_grafusion.errors import GraFusionError

    from . import pipeline
    from .workdir import shard_suffix

    _apply_sample(opts)
    if not opts.out:
        raise GraFusionError("--out DIR is required (or --sample for the bundled sample)")
    if not opts.src_lang or not opts.tgt_lang:
        raise GraFusionError("--src-lang and --tgt-lang are required")
    suffix = shard_suffix(opts.num_shards, opts.shard_id)
    if opts.workers < 1:
        raise GraFusionError("--workers must be >= 1")
    for a, b, name in ((opts.max_len, 8, "--max-len"), (opts.doc_stride, 1, "--doc-stride"),
                       (opts.max_query_len, 1, "--max-query-len")):
        if a < b:
            raise GraFusionError(f"{name} must be >= {b}")
    cmd = opts.command
    if cmd == "parallel" and not opts.parallel:
        raise GraFusionError("parallel: give --parallel SPLIT SRC_TXT TGT_TXT (or --sample)")
    qa_splits = [] if cmd == "parallel" else opts.qa
    par_splits = [] if cmd == "pairs" else opts.parallel
    if not qa_splits and not par_splits:
        raise GraFusionError(f"{cmd}: no splits given (--qa SPLIT SRC TGT, --parallel SPLIT SRC TGT, or --sample)")
    qa_names = {q[0] for q in qa_splits}
    names = [q[0] for q in qa_splits] + [p[0] for p in par_splits]
    alignments = _per_split(opts.alignments, "--alignments", names)
    conllu = {side: _per_split(getattr(opts, f"{side}_conllu"), f"--{side}-conllu", names) for side in ("src", "tgt")}
    needs_binary = cmd in ("binarize", "all", "parallel")
    if needs_binary and (not opts.spm or not opts.dict):
        raise GraFusionError("binarize: --spm and --dict are required (XLM-R's sentencepiece.bpe.model and dict.txt)")
    for path, name in ((opts.spm, "--spm"), (opts.dict, "--dict")):
        if needs_binary and not os.path.isfile(path):
            raise GraFusionError(f"{name} {path}: file not found")
    if needs_binary:
        from .encode import Encoder

        Encoder(opts.spm, opts.dict)  # fail now, not after hours of alignment, on a bad model
    translator_for = None
    if opts.mt_model:
        from .translate import load_hub_translator

        translator_for = lambda f, t: load_hub_translator(  # noqa: E731
            opts.mt_model, f, t, opts.mt_checkpoint, opts.mt_bpe, opts.mt_bpe_model, opts.mt_beam)

    chains = [("qa", split, src, tgt) for split, src, tgt in qa_splits] + \
             [("parallel", split, src, tgt) for split, src, tgt in par_splits]
    for chain, split, src, tgt in chains:
        paths = pipeline.SplitPaths(opts.out, chain, split, suffix)
        if cmd == "merge":
            n = pipeline.merge_shards(os.path.join(paths.bin_dir, split), opts.num_shards, chain == "qa")
            print(f"[merge] {chain}/{split}: {n} examples in {os.path.join(paths.bin_dir, split)}.*")
            continue
        stages_to_run = {"all": ("pairs", "words", "align", "parse", "binarize"),
                         "parallel": ("pairs", "words", "align", "parse", "binarize")}.get(cmd, (cmd,))
        for stage in stages_to_run:
            if stage == "pairs":
                if chain == "qa":
                    pipeline.run_pairs(paths, None if src == "-" else src, None if tgt == "-" else tgt,
                                       opts, translator_for)
                else:
                    pipeline.run_parallel_units(paths, src, tgt, opts)
            elif stage == "words":
                pipeline.run_words(paths, opts)
            elif stage == "align":
                pipeline.run_align(paths, opts, _lookup(alignments, chain, split, qa_names))
            elif stage == "parse":
                pipeline.run_parse(paths, opts, {side: _lookup(conllu[side], chain, split, qa_names)
                                                 for side in ("src", "tgt")})
            elif stage == "binarize":
                pipeline.run_binarize(paths, opts)
    if cmd in ("all", "binarize", "parallel"):
        for sub in ("qa-bin", "parallel-bin"):
            d = os.path.join(opts.out, sub)
            if os.path.isdir(d):
                print(f"done: {d}")


def cli_main(argv=None):
    # fairseq configures logging at INFO when first imported; keep its chatter off stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    from fairseq_grafusion.errors import GraFusionError

    try:
        main(argv)
    except GraFusionError as e:
        if os.environ.get("GRAFUSION_TRACEBACK"):
            raise
        sys.stderr.write(f"grafusion-preprocess: error: {e}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("grafusion-preprocess: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    cli_main()
