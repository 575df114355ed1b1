"""``python -m preprocess.combine_cli``: the ``combine`` stage on its own command line.

(To become ``grafusion-preprocess combine`` once the pipeline's command line is rebuilt.)
"""
import argparse
import sys

_EPILOG = """\
example (translate-train-all over three languages, English originals included):
  for xx in de zh ar; do grafusion-preprocess all --out work/en-$xx --tgt-lang $xx ...; done
  grafusion-preprocess all --out work/en-en --tgt-lang en --qa train train-v1.1.json train-v1.1.json ...
  python -m preprocess.combine_cli --out data-bin \\
      --pair en work/en-en/qa-bin --pair de work/en-de/qa-bin --pair zh work/en-zh/qa-bin \\
      --pair ar work/en-ar/qa-bin
"""


def get_parser():
    parser = argparse.ArgumentParser(
        prog="grafusion-preprocess combine",
        description="Join the qa-bin directories of several (English, target) runs into one "
                    "directory: training data of all languages mixed, validation / test data "
                    "scored per language.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the combined data directory")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("LANG", "DIR"),
                        help="target language and the qa-bin directory of its run; repeat per language")
    parser.add_argument("--splits", nargs="+", help="splits to combine (default: every split found)")
    return parser


def main(argv=None):
    from .combine import CombineConfig, combine, format_summary

    args = get_parser().parse_args(argv)
    cfg = CombineConfig(out=args.out, pairs=[tuple(p) for p in args.pair], splits=args.splits)
    counts = combine(cfg)
    print(format_summary(counts, [lang for lang, _ in cfg.pairs]))
    print(f"done: {cfg.out}")
    return counts


def cli_main(argv=None):
    from fairseq_grafusion.errors import GraFusionError

    try:
        main(argv)
    except GraFusionError as e:
        sys.stderr.write(f"grafusion-preprocess: error: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    cli_main()
