"""``grafusion-results``: the paper's Table 1 / Table 2 from repeated runs, mean ± std per language
and variant, with the Avg. column (see :mod:`fairseq_grafusion.scoring.results_table`).

    grafusion-results --row "XLM-R (translate-train)" scores/tt.seed*.json \\
        --row "+a" scores/a.seed*.json --row "+ad" scores/ad.seed*.json \\
        --no-parser bn sw --output table.md --json table.json
"""
import argparse
import json

from ..console import run
from ..errors import GraFusionError
from ..files import atomic_path
from ..scoring.results_table import DEP_ROWS, as_json, build_table, format_markdown


def get_parser():
    p = argparse.ArgumentParser(prog="grafusion-results", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--row", nargs="+", action="append", default=[], metavar="NAME FILE",
                   help="a row: its name, then the grafusion-evaluate --json files of its runs "
                        "(one per seed); repeat per variant")
    p.add_argument("--languages", nargs="+", help="column order (default: as in the first file)")
    p.add_argument("--no-parser", nargs="+", default=[], metavar="LANG",
                   help="languages without a dependency parser: n/a in the --dep-rows rows")
    p.add_argument("--dep-rows", nargs="+", default=list(DEP_ROWS), metavar="NAME",
                   help="rows whose variant uses dependency edges (default: %(default)s)")
    p.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a line under the table (the recipes give each row's command); repeat")
    p.add_argument("--output", help="write the markdown table here too (default: print only)")
    p.add_argument("--json", help="write the numbers (unrounded) to this JSON file")
    return p


def _write(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None):
    args = get_parser().parse_args(argv)
    for row in args.row:
        if len(row) < 2:
            raise GraFusionError(f"--row {row[0]}: give the row name, then its scores files")
    languages, table = build_table([(row[0], row[1:]) for row in args.row], args.languages,
                                   args.no_parser, args.dep_rows)
    text = format_markdown(languages, table)
    if args.note:
        text += "\nNotes:\n\n" + "".join(f"- {note}\n" for note in args.note)
    print(text, end="")
    if args.output:
        _write(args.output, text)
    if args.json:
        _write(args.json, json.dumps({**as_json(languages, table), "notes": args.note}, indent=1) + "\n")
    return languages, table


def cli_main(argv=None):
    run("grafusion-results", main, argv)


if __name__ == "__main__":
    cli_main()
