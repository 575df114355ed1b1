"""``grafusion-evaluate``: F1 / EM per language with the official MLQA / SQuAD v1.1 metrics,
printed as one row of a table laid out like the paper's Tables 1 and 2."""
import argparse
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from ..console import run
from ..errors import GraFusionError
from ..files import resolved, write_json
from ..scoring.qa_metrics import MLQA_LANGUAGES, SQUAD_ONLY_LANGUAGES, evaluate, resolve_metric
from ..squad import load_json

_SHOW_IDS = 5

_EPILOG = f"""\
metrics:
  mlqa   MLQA's official script (mlqa_evaluation_v1.py = XTREME's evaluate_mlqa.py): Unicode and
         ASCII punctuation, per-language articles, CJK characters as tokens for zh.
         Languages: {' '.join(MLQA_LANGUAGES)}.
  squad  SQuAD v1.1's official script (evaluate-v1.1.py): ASCII punctuation and English articles
         only, whitespace tokens, any language. XTREME scores TyDiQA-GoldP and XQuAD with it.
  auto   (default) mlqa for {' '.join(MLQA_LANGUAGES)}; squad for {' '.join(SQUAD_ONLY_LANGUAGES)}.
         For TyDiQA-GoldP or XQuAD in en/ar/de/es/hi/vi/zh pass --metric squad.

The table's second line and the --json file name the metric each language was scored with.
Gold files are SQuAD v1.1 JSON; prediction files are {{"question id": "answer text"}}.
A question without a prediction counts as wrong (F1 0, EM 0) and is reported on stderr.
Avg. is the unweighted mean over the languages, as in the paper.

examples:
  grafusion-evaluate --gold test-de.json --pred pred-de.json --lang de
  grafusion-evaluate --metric squad --eval bn gold-bn.json pred-bn.json \\
      --eval fi gold-fi.json pred-fi.json --json tydiqa.json
"""


def get_parser():
    parser = argparse.ArgumentParser(
        prog="grafusion-evaluate",
        description="F1 / EM of QA predictions per language, printed as a table "
        "(one column per language plus Avg.).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--gold", help="gold file (SQuAD v1.1 JSON) of one language")
    parser.add_argument("--pred", help="predictions JSON for --gold")
    parser.add_argument("--lang", help="language code of --gold")
    parser.add_argument(
        "--eval",
        nargs=3,
        action="append",
        default=[],
        metavar=("LANG", "GOLD", "PRED"),
        help="one language to evaluate; repeat for more columns (after --gold/--pred/--lang if given)",
    )
    parser.add_argument("--metric", choices=("auto", "mlqa", "squad"), default="auto",
                        help="normalisation and tokenisation of answers (default: auto, see below)")
    parser.add_argument("--name", default="F1 / EM", help="row label of the table (default: %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers (unrounded) to this JSON file")
    return parser


@dataclass
class EvaluateConfig:
    """The options of ``grafusion-evaluate`` (see ``--help``), checked once: ``runs`` is the list
    of ``(lang, gold file, prediction file, metric)`` to score."""

    gold: Optional[str] = None
    pred: Optional[str] = None
    lang: Optional[str] = None
    eval: List[Sequence[str]] = field(default_factory=list)  # (lang, gold, pred)
    metric: str = "auto"
    name: str = "F1 / EM"
    json: Optional[str] = None

    def __post_init__(self):
        single = (self.gold, self.pred, self.lang)
        runs = []
        if any(x is not None for x in single):
            if any(x is None for x in single):
                raise GraFusionError("--gold, --pred and --lang go together; give all three (or use --eval)")
            runs.append((self.lang, self.gold, self.pred))
        runs.extend(tuple(e) for e in self.eval)
        runs = [(lang, resolved(gold), resolved(pred)) for lang, gold, pred in runs]
        self.json = resolved(self.json)
        if not runs:
            raise GraFusionError("nothing to evaluate: give --gold/--pred/--lang or --eval LANG GOLD PRED")
        langs = [lang for lang, _, _ in runs]
        dup = sorted({lang for lang in langs if langs.count(lang) > 1})
        if dup:
            raise GraFusionError(f"language given more than once: {' '.join(dup)}")
        self.runs = [(lang, gold, pred, resolve_metric(lang, self.metric)) for lang, gold, pred in runs]


def _ids(ids):
    shown = ", ".join(ids[:_SHOW_IDS])
    return shown + (", ..." if len(ids) > _SHOW_IDS else "")


def _warn(message):
    sys.stderr.write(f"grafusion-evaluate: warning: {message}\n")


def _score(lang, gold_path, pred_path, metric):
    gold = load_json(gold_path, "gold")
    pred = load_json(pred_path, "prediction")
    if not isinstance(pred, dict):
        raise GraFusionError(f"prediction file {pred_path}: expected a JSON object {{question id: answer text}}")
    try:
        result = evaluate(gold, pred, lang, metric)
    except GraFusionError as e:
        raise GraFusionError(f"{lang} ({gold_path}, {pred_path}): {e}") from None
    total, missing, extra, blank = result["total"], result["missing"], result["extra"], result["blank_gold"]
    if blank and len(blank) == total:
        raise GraFusionError(
            f"gold file {gold_path}: every gold answer is empty (a blanked test file, as XTREME's "
            "download script writes?); use the original dataset's file"
        )
    if blank:
        _warn(f"{lang}: {len(blank)} of {total} gold questions have only empty answers: {_ids(blank)}")
    if missing:
        _warn(f"{lang}: {len(missing)} of {total} questions have no prediction in {pred_path} "
              f"and count as wrong: {_ids(missing)}")
    if extra:
        _warn(f"{lang}: {len(extra)} prediction ids are not in {gold_path} and are ignored: {_ids(extra)}")
    return {
        "f1": result["f1"],
        "exact_match": result["exact_match"],
        "total": total,
        "missing": len(missing),
        "extra": len(extra),
        "metric": metric,
        "gold": gold_path,
        "pred": pred_path,
    }


def format_table(results, name="F1 / EM"):
    """Paper-style table: header ``Model <langs> Avg.``, the metric each language was scored
    with (``mlqa``: MLQA's official script, ``squad``: SQuAD v1.1's), one row of ``F1 / EM``."""
    avg = average(results)
    header = ["Model"] + list(results) + ["Avg."]
    metrics = ["metric"] + [r["metric"] for r in results.values()] + [""]
    cells = [f"{r['f1']:.1f} / {r['exact_match']:.1f}" for r in list(results.values()) + [avg]]
    row = [name] + cells
    widths = [max(map(len, column)) for column in zip(header, metrics, row)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip()
             for line in (header, metrics, row)]
    return "\n".join(lines)


def average(results):
    """Unweighted mean F1 and EM over the languages."""
    n = len(results)
    return {
        "f1": sum(r["f1"] for r in results.values()) / n,
        "exact_match": sum(r["exact_match"] for r in results.values()) / n,
    }


def main(argv=None):
    """Run the command; returns the per-language results (raises GraFusionError on bad input)."""
    cfg = EvaluateConfig(**vars(get_parser().parse_args(argv)))
    results = {lang: _score(lang, gold, pred, metric) for lang, gold, pred, metric in cfg.runs}
    print(format_table(results, cfg.name))
    if cfg.json:
        write_json(cfg.json, {"metric": cfg.metric,  # the option; each language's is in "languages"
                              "metrics": {lang: r["metric"] for lang, r in results.items()},
                              "languages": results, "avg": average(results)}, indent=2)
    return results


def cli_main(argv=None):
    run("grafusion-evaluate", main, argv)


if __name__ == "__main__":
    cli_main()
