"""``grafusion-preprocess`` (``python -m fairseq_grafusion.preprocess``): QA and parallel data ->
fairseq-grafusion binary datasets.

Subcommands run one stage or a chain; see ``grafusion-preprocess -h`` for the layout.  The
command parses its arguments into a :class:`.config.PipelineConfig` and runs
:func:`.pipeline.run_pipeline`: argparse here, everything else in the library.
"""
import argparse
import logging
import sys

from fairseq_grafusion.console import run

from .config import ALIGN_APPLY, SAMPLE_OUT, PipelineConfig
from .eflomal_run import SEED
from .encode import DOC_STRIDE, MAX_LEN, MAX_QUERY_LEN, WINDOW_PAIRINGS
from .mt_options import add_mt_arguments, pop_mt_config
from .pipeline import run_pipeline
from .text_formats import PARALLEL_FORMATS

_EPILOG = """\
stages (each reads the previous one's output under OUT/work; 'all' chains them):
  pairs     pair the source (English) and target SQuAD files by question id; a missing side is
            translated with --mt-train-model / --mt-test-model (translate-train / translate-test)
            or reported and dropped
  words     sentences and words with character offsets (Stanza with --stanza-dir, else rules)
  align     eflomal word alignment + grow-diag-final-and, or --alignments FILE (Pharaoh 'i-j',
            one line per line of OUT/work/CHAIN/SPLIT/aligner-input.{src,tgt}.txt); answers of a
            translated side are projected through the alignment.  The alignment model (eflomal's
            priors) is estimated once, on the split 'train' (+ --align-extra), saved as
            OUT/work/alignment.priors and applied to every other split (or --align-priors FILE
            to every split); each split's manifest reports its unaligned-word ratio per language
  parse     dependency arcs (Stanza with --stanza-dir, or --src-conllu/--tgt-conllu parsed from
            OUT/work/CHAIN/SPLIT/sentences.{src,tgt}.txt) and same-word edges
  binarize  SentencePiece + fairseq dictionary, windows, answer positions, graph edges ->
            OUT/qa-bin/SPLIT.* (xmrc_span) and OUT/parallel-bin/SPLIT.* (sa_graph_pretrain),
            plus dict.txt in each
  parallel  the whole chain for --parallel splits only
  merge     join the binary shards of --num-shards runs into one split
  align-model  the alignment model alone (pairs, words and align of the split 'train', +
            --align-extra) -> OUT/work/alignment.priors: the first step of a job array whose
            shards apply it (--align-priors OUT/work/alignment.priors --align-apply lexical)
  combine   join the qa-bin directories of several (English, target) runs into one directory:
            training data of all languages mixed, validation / test scored per language
            (its own options: --out DIR --pair LANG QA_BIN_DIR ... [--splits SPLIT ...])

windows: each stream is [<s> question </s></s> passage </s>] with at most --max-len tokens;
  --doc-stride is the STEP between window starts (as BERT's and XTREME's run_squad.py), not the
  overlap (HuggingFace). Windows follow the target passage; each gets the source window sharing
  the most alignment links with it (the one holding the source answer when it holds the target
  answer), or with --window-pairing position the source window at the same position (the k-th
  with the k-th, the last one when the source has fewer: FILTER's code). An answer outside a
  window points to position 0 (<s>).

examples:
  grafusion-preprocess all                      # the bundled en-ro sample -> sample-run/
  grafusion-preprocess all --out data --src-lang en --tgt-lang de \\
      --qa train squad.train.en.json squad.train.de.json --qa valid dev.en.json dev.de.json \\
      --spm xlmr.base/sentencepiece.bpe.model --dict xlmr.base/dict.txt --workers 8
  grafusion-preprocess pairs --out data --src-lang en --tgt-lang de --qa train squad.en.json - \\
      --mt-train-model wmt19.en-de --mt-checkpoint model1.pt --mt-tokenizer moses \\
      --mt-bpe fastbpe                          # translate-train, answers projected in 'align'
  grafusion-preprocess parallel --out data --src-lang en --tgt-lang de --parallel-format moses-bpe \\
      --parallel train data-raw/train.en-de.en data-raw/train.en-de.de ...   # a BPE'd MT corpus
  grafusion-preprocess combine --out data-bin \
      --pair de work/en-de/qa-bin --pair zh work/en-zh/qa-bin --pair ar work/en-ar/qa-bin
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
    g.add_argument("--extra-lang", action="append", default=[], metavar="CODE",
                   help="accept CODE as a language code although the pipeline does not know it "
                        "(known: XLM-R's ISO 639-1 codes); its text gets the generic rules")
    g.add_argument("--qa", nargs=3, action="append", default=[], metavar=("SPLIT", "SRC_JSON", "TGT_JSON"),
                   help="a QA split (train, valid, test, ...): SQuAD v1.1 files by language, '-' for a "
                        "side to translate; repeat for more splits")
    g.add_argument("--parallel", nargs=3, action="append", default=[], metavar=("SPLIT", "SRC_TXT", "TGT_TXT"),
                   help="a parallel-text split: line-aligned files (fairseq-preprocess --dataset-impl "
                        "raw output too); repeat for more splits")
    g.add_argument("--parallel-format", choices=PARALLEL_FORMATS, default="text",
                   help="what an MT pipeline did to the --parallel text, undone before anything else: "
                        "'bpe' removes '@@ ' marks, 'moses' detokenises and unescapes (&apos; ...) "
                        "with sacremoses, 'moses-bpe' both (default: text, raw)")
    g.add_argument("--skip-bad", action="store_true",
                   help="drop and count what cannot be used instead of stopping: questions with an "
                        "answer that does not match its context, an empty context or question text, "
                        "no 'answers' list in the training split; parallel line pairs with a NUL byte")
    g.add_argument("--ignore-answers", action="store_true",
                   help="prediction input: keep every question, neither check nor use gold answers "
                        "(they are only for scoring), keep questions of empty contexts")
    g = common.add_argument_group("run")
    g.add_argument("--workers", type=int, default=1, help="processes for the CPU-bound stages; from 2, eflomal also "
                   "runs its two directions side by side (default 1)")
    g.add_argument("--num-shards", type=int, default=1, help="split the data into K shards (default 1)")
    g.add_argument("--shard-id", type=int, default=0, help="the shard this run processes (0..K-1)")
    g.add_argument("--force", action="store_true", help="recompute outputs that are up to date")
    add_mt_arguments(common)
    g = common.add_argument_group("words, alignment, parsing")
    g.add_argument("--stanza-dir", metavar="DIR", help="local Stanza resources (never downloaded): "
                   "tokenizer and parser per language when present")
    g.add_argument("--alignments", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import Pharaoh alignments instead of running eflomal (SPLIT needed when "
                        "several splits are processed)")
    g.add_argument("--align-extra", nargs=2, metavar=("SRC_TXT", "TGT_TXT"),
                   help="extra line-aligned text that only trains the eflomal model")
    g.add_argument("--seed", type=int, default=SEED,
                   help="seed of eflomal's sampler: the same input and seed give the same "
                        "alignments (default %(default)s)")
    g.add_argument("--align-priors", metavar="FILE",
                   help="an alignment model (eflomal priors, e.g. OUT/work/alignment.priors of the "
                        "training data's run) applied to every split; default: estimated on the "
                        "split 'train' (+ --align-extra) and applied to the others")
    g.add_argument("--align-apply", choices=ALIGN_APPLY, default="eflomal",
                   help="how a split applies an alignment model: eflomal started from it (default; "
                        "its sampler reads every sentence of the run, so a shard's links depend on "
                        "the shard) or lexical: each segment pair on its own by the model's lexical "
                        "table, in this process, as the hub and grafusion-predict --qa align (shards "
                        "then give exactly one run's links)")
    g.add_argument("--src-conllu", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import source dependency parses (CoNLL-U of sentences.src.txt)")
    g.add_argument("--tgt-conllu", nargs="+", action="append", default=[], metavar="[SPLIT] FILE",
                   help="import target dependency parses (CoNLL-U of sentences.tgt.txt)")
    g.add_argument("--same-max-group", type=int, default=8,
                   help="same-word edges: a form occurring more often is chained, not a clique (default 8)")
    g = common.add_argument_group("binarize")
    g.add_argument("--spm", metavar="FILE", help="SentencePiece model (XLM-R's sentencepiece.bpe.model; an XLM-R "
                   "directory, fairseq's or HuggingFace's, for the one in it)")
    g.add_argument("--dict", metavar="FILE", help="fairseq dictionary of --spm (XLM-R's dict.txt; a HuggingFace "
                   "XLM-R directory for its vocabulary as a dict.txt, written to OUT/work/xlmr/)")
    g.add_argument("--max-len", type=int, default=MAX_LEN, help="tokens per stream (default %(default)s)")
    g.add_argument("--doc-stride", type=int, default=DOC_STRIDE,
                   help="STEP in tokens between window starts (XTREME/BERT meaning, not HuggingFace's "
                        "overlap; default %(default)s)")
    g.add_argument("--max-query-len", type=int, default=MAX_QUERY_LEN,
                   help="question tokens kept (default %(default)s)")
    g.add_argument("--window-pairing", choices=WINDOW_PAIRINGS, default="alignment",
                   help="the source window of each target window of a QA passage: the one sharing the "
                        "most alignment links (alignment, default) or the one at the same position, the "
                        "k-th with the k-th, the last when the source has fewer (position: FILTER's code; "
                        "links and answers play no part in the pairing)")

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
                       ("merge", "join binary shards (--num-shards K) of every split"),
                       ("align-model", "estimate the alignment model once, for the shards of an array")):
        sub.add_parser(name, parents=[common], help=text, description=text,
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    text = "join several pairs' qa-bin directories into one multilingual directory"
    combine = sub.add_parser("combine", help=text, description=text, epilog=_EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    combine.add_argument("--out", required=True, help="the combined data directory")
    combine.add_argument("--pair", nargs=2, action="append", default=[], metavar=("LANG", "DIR"),
                         help="target language and the qa-bin directory of its run; repeat per language")
    combine.add_argument("--splits", nargs="+", help="splits to combine (default: every split found)")
    combine.add_argument("--train-langs", nargs="+", metavar="LANG",
                         help="languages whose training split is joined (default: every pair's; "
                              "the others are evaluated only, e.g. FILTER's runs leave zh out)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.command == "combine":
        # imported here: it loads fairseq, which sets up INFO logging when first imported
        from .combine import CombineConfig, combine, format_alignment_summary, format_summary

        cfg = CombineConfig(out=args.out, pairs=[tuple(p) for p in args.pair], splits=args.splits,
                            train_langs=args.train_langs)
        counts = combine(cfg)
        print(format_summary(counts, [lang for lang, _ in cfg.pairs]))
        print(format_alignment_summary(cfg.out))
        print(f"done: {cfg.out}")
        return counts
    options = vars(args)
    mt = pop_mt_config(options)
    run_pipeline(PipelineConfig(**options, mt=mt))


def cli_main(argv=None):
    # fairseq configures logging at INFO when first imported; keep its chatter off stderr
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    run("grafusion-preprocess", main, argv)


if __name__ == "__main__":
    cli_main()
