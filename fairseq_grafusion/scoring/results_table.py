"""Tables 1 and 2 of the paper from repeated runs: mean ± standard deviation per language and
variant, and the Avg. column.

Input: the ``--json`` files of ``grafusion-evaluate`` (one per run: one variant, one seed, every
language), grouped into rows.  Each row's cell for a language is the mean over its runs of F1
(and EM) with the sample standard deviation (n - 1; 0 for a single run).  Avg. is computed per run
(the unweighted mean over the row's languages, as the paper's Avg.) and then averaged over runs,
so its ± is the spread of the runs' averages.

Languages without a dependency parser (TyDiQA-GoldP's bn and sw in the paper) have no +ad / +adp
figure in the paper: for the rows that use dependency edges (``dep_rows``) their cells read
``n/a`` and the row's Avg. is over its other languages, as the paper's Table 2 does (its +ad Avg.
68.6 is the mean of the seven languages with a figure).
"""
import json
import math

from ..errors import GraFusionError

NOT_APPLICABLE = "n/a"
DEP_ROWS = ("+ad", "+adp")


METRIC_NAMES = {"mlqa": "MLQA's official script", "squad": "SQuAD v1.1's official script"}


def load_scores(path):
    """``{lang: (f1, em, metric)}`` of one ``grafusion-evaluate --json`` file (``metric``: the
    one the language was scored with, ``mlqa`` or ``squad``; None in a file that does not say)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise GraFusionError(f"scores file {path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise GraFusionError(f"scores file {path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    languages = data.get("languages") if isinstance(data, dict) else None
    if not isinstance(languages, dict) or not languages:
        raise GraFusionError(f"scores file {path}: no 'languages' object (write it with "
                             "grafusion-evaluate --json)")
    scores = {}
    for lang, result in languages.items():
        try:
            scores[lang] = (float(result["f1"]), float(result["exact_match"]), result.get("metric"))
        except (KeyError, TypeError, ValueError):
            raise GraFusionError(f"scores file {path}: language {lang!r} has no numeric "
                                 "'f1' / 'exact_match'") from None
    return scores


def mean_std(values):
    """Mean and sample standard deviation (0 for one value)."""
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def build_table(rows, languages=None, no_parser=(), dep_rows=DEP_ROWS):
    """``rows``: ``[(name, [scores files])]``.  Returns ``(languages, table)`` where ``table`` is
    ``[{"name", "runs", "cells": {lang: None | {"f1": (mean, std), "em": (mean, std)}}, "avg"}]``
    (``None``: not applicable).  Every run of every row must have every applicable language."""
    if not rows:
        raise GraFusionError("no rows: give --row NAME SCORES.json [SCORES.json ...]")
    names = [name for name, _ in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GraFusionError(f"row name(s) given twice: {', '.join(twice)}")
    loaded = [(name, [(path, load_scores(path)) for path in paths]) for name, paths in rows]
    if languages is None:
        languages = []
        for _, runs in loaded:
            for _, scores in runs:
                languages += [lang for lang in scores if lang not in languages]
    metrics = _column_metrics(loaded, languages)
    table = []
    for name, runs in loaded:
        if not runs:
            raise GraFusionError(f"row {name!r}: no scores files")
        skip = set(no_parser) if name in dep_rows else set()
        applicable = [lang for lang in languages if lang not in skip]
        for path, scores in runs:
            missing = [lang for lang in applicable if lang not in scores]
            if missing:
                raise GraFusionError(f"row {name!r}: {path} has no score for {', '.join(missing)}")
        cells = {lang: None for lang in languages}
        for lang in applicable:
            cells[lang] = {kind: mean_std([scores[lang][k] for _, scores in runs])
                           for k, kind in enumerate(("f1", "em"))}
        avg = {kind: mean_std([math.fsum(scores[lang][k] for lang in applicable) / len(applicable)
                               for _, scores in runs])
               for k, kind in enumerate(("f1", "em"))} if applicable else None
        table.append({"name": name, "runs": len(runs), "cells": cells, "avg": avg,
                      "metrics": metrics})
    return languages, table


def _column_metrics(loaded, languages):
    """``{lang: metric}`` over every run of every row; one line if a column would mix runs
    scored with different metrics (their F1 differ by tens of points on the same answers)."""
    metrics = {}
    for lang in languages:
        seen = {}
        for _, runs in loaded:
            for path, scores in runs:
                if lang in scores:
                    seen.setdefault(scores[lang][2], []).append(path)
        if len(seen) > 1:
            kinds = "; ".join(f"{m or 'a metric it does not name'}: {', '.join(paths[:2])}"
                              f"{' ...' if len(paths) > 2 else ''}" for m, paths in seen.items())
            raise GraFusionError(f"language {lang}: the runs were scored differently ({kinds}); "
                                 "score every run with the same grafusion-evaluate --metric")
        metrics[lang] = next(iter(seen), None)
    return metrics


def _cell(cell):
    if cell is None:
        return NOT_APPLICABLE
    (f1, f1_sd), (em, em_sd) = cell["f1"], cell["em"]
    return f"{f1:.1f} ± {f1_sd:.1f} / {em:.1f} ± {em_sd:.1f}"


def format_markdown(languages, table):
    """A markdown table: ``| Model | <languages> | Avg. | runs |``, cells ``F1 ± sd / EM ± sd``."""
    header = ["Model"] + list(languages) + ["Avg.", "runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [row["name"]] + [_cell(row["cells"][lang]) for lang in languages]
        cells += [_cell(row["avg"]), str(row["runs"])]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ["F1 / EM, mean ± sample standard deviation over the runs; Avg.: the unweighted mean "
             "over the languages of each run, then over the runs.", _metric_note(languages, table)]
    if any(cell is None for row in table for cell in row["cells"].values()):
        notes.append(f"{NOT_APPLICABLE}: no dependency parser for the language, so no +ad / +adp "
                     "figure (as in the paper); that row's Avg. is over its other languages.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _metric_note(languages, table):
    """Which metric scored which languages: ``Scored with MLQA's official script (mlqa): de, zh.``"""
    metrics = table[0]["metrics"] if table else {}
    groups = {}
    for lang in languages:
        groups.setdefault(metrics.get(lang), []).append(lang)
    parts = [f"{METRIC_NAMES.get(m, m) if m else 'a metric the scores files do not name'}"
             f"{f' ({m})' if m else ''}: {', '.join(langs)}" for m, langs in groups.items()]
    return "Scored with " + "; ".join(parts) + "."


def as_json(languages, table):
    """The table as plain JSON values (means and standard deviations unrounded)."""
    def cell(c):
        return None if c is None else {k: {"mean": m, "std": s} for k, (m, s) in c.items()}

    return {"languages": list(languages),
            "metrics": dict(table[0]["metrics"]) if table else {},
            "rows": [{"name": r["name"], "runs": r["runs"],
                      "cells": {lang: cell(c) for lang, c in r["cells"].items()},
                      "avg": cell(r["avg"])} for r in table]}
