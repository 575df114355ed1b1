"""F1 / EM per language inside one validation run, and the paper's Avg.

The paper reports, for one model fine-tuned on all languages, F1 / EM per language and their
unweighted mean (Tables 1 and 2, column "Avg.").  Validation does the same batch by batch:

* :meth:`LanguageScorer.logging_output` turns a batch's answers into **sums** per language,
  ``span_f1_<lang>``, ``span_em_<lang>`` (F1 and EM in [0, 1], summed over questions) and
  ``span_n_<lang>`` (questions).  Sums add up exactly over batches and over distributed workers.
  Every logging output carries the keys of **every** language of the split, zeros included:
  fairseq sums a batch's outputs over workers by the keys of the first output
  (``Trainer._fast_stat_sync_sum``), so a key that only some outputs or some workers have would be
  dropped or make the workers' all-reduce disagree.
* :func:`reduce_per_language` turns the summed outputs into ``f1_<lang>`` / ``em_<lang>`` (percent)
  and ``f1_avg`` / ``em_avg``, the mean over the languages that have questions, unweighted as in
  the paper (a language with 500 questions counts as much as one with 5,000).
  ``--best-checkpoint-metric f1_avg`` selects on it.

Each language is scored with its own official normalisation (:func:`~.qa_metrics.resolve_metric`):
MLQA's rules for MLQA's languages, SQuAD v1.1's otherwise, unless one metric is forced for the
whole benchmark (TyDiQA-GoldP: ``squad`` in every language).  The language comes from the data.
"""
import math

from .qa_metrics import exact_match_score, f1_score, resolve_metric

UNKNOWN = "unk"  # label of examples whose split does not record a language (format v1)
_KEYS = ("f1", "em", "n")


def language_label(lang, default=None):
    """The code used in metric names: the language, else ``default``, else ``unk``."""
    return lang if lang is not None else (default or UNKNOWN)


def _key(kind, label):
    return f"span_{kind}_{label}"


class LanguageScorer:
    """Scores answers of a split's questions, each with its language's metric.

    ``answers``: ``{lang: {question id: [gold answer texts]}}`` for every language of the split
    (``None`` for a split without languages, then scored as ``default_lang``).  ``metric``:
    ``auto`` (per language), ``mlqa`` or ``squad`` (for every language).
    """

    def __init__(self, answers, metric="auto", default_lang=None):
        self.answers = answers
        self.default_lang = default_lang
        self.labels = {lang: language_label(lang, default_lang) for lang in answers}
        self.metrics = {}
        for lang in answers:
            code = lang if lang is not None else default_lang
            # unknown language, no --eval-span-lang: SQuAD's language-independent rules
            self.metrics[lang] = resolve_metric(code, metric) if code else "squad"

    def code(self, lang):
        """The language code a metric function gets (``en`` where SQuAD's rules ignore it)."""
        code = lang if lang is not None else self.default_lang
        return code or "en"

    def score(self, lang, question_id, text):
        """``(f1, em)`` in [0, 1] of one answer: the maximum over the question's gold answers."""
        golds = self.answers[lang].get(question_id) or [""]
        code, metric = self.code(lang), self.metrics[lang]
        return (max(f1_score(text, gold, code, metric) for gold in golds),
                max(float(exact_match_score(text, gold, code, metric)) for gold in golds))

    def empty_logging_output(self):
        """Zeros for every language: the keys a logging output must always carry."""
        return {_key(kind, label): 0.0 for label in self.labels.values() for kind in _KEYS}

    def logging_output(self, predictions):
        """Summable sums of ``{(lang, question id): answer text}`` (see the module docstring)."""
        out = self.empty_logging_output()
        for (lang, question_id), text in predictions.items():
            f1, em = self.score(lang, question_id, text)
            label = self.labels[lang]
            out[_key("f1", label)] += f1
            out[_key("em", label)] += em
            out[_key("n", label)] += 1
        return out


def languages_in(logging_outputs):
    """The language labels present in logging outputs, in order of first appearance."""
    labels = []
    for log in logging_outputs:
        for key in log:
            if key.startswith("span_n_") and key[len("span_n_"):] not in labels:
                labels.append(key[len("span_n_"):])
    return labels


def per_language_scores(logging_outputs):
    """``({lang: {"f1", "em", "n"}}, {"f1", "em", "languages"})`` from summed logging outputs:
    percent per language with questions, and their unweighted mean (the paper's Avg.)."""
    def total(key):
        return sum(float(log.get(key, 0)) for log in logging_outputs)

    scores = {}
    for label in languages_in(logging_outputs):
        n = total(_key("n", label))
        if n > 0:
            scores[label] = {"f1": 100.0 * total(_key("f1", label)) / n,
                             "em": 100.0 * total(_key("em", label)) / n, "n": int(round(n))}
    if not scores:
        return scores, None
    avg = {kind: math.fsum(s[kind] for s in scores.values()) / len(scores) for kind in ("f1", "em")}
    avg["languages"] = len(scores)
    return scores, avg


def reduce_per_language(logging_outputs):
    """Log ``f1_<lang>``, ``em_<lang>``, ``f1_avg``, ``em_avg`` with fairseq's ``metrics``
    (call from a task's ``reduce_metrics``); returns what :func:`per_language_scores` returns.

    fairseq reduces every validation batch on its own and averages the logged values over the
    batches, each with its weight: ``f1_<lang>`` (weight: the batch's questions of that language)
    is thereby exact over the split, but a mean of per-batch averages is not the mean of the
    languages' figures, so ``f1_avg`` / ``em_avg`` are derived from the aggregated per-language
    meters when the split's statistics are read (as fairseq derives ``ppl`` from ``loss``)."""
    from fairseq import metrics

    scores, avg = per_language_scores(logging_outputs)
    for label, s in scores.items():
        metrics.log_scalar(f"f1_{label}", s["f1"], s["n"], round=2)
        metrics.log_scalar(f"em_{label}", s["em"], s["n"], round=2)
    if avg is not None:
        metrics.log_derived("f1_avg", lambda meters: _mean_over_languages(meters, "f1"))
        metrics.log_derived("em_avg", lambda meters: _mean_over_languages(meters, "em"))
    return scores, avg


def _mean_over_languages(meters, kind):
    """The unweighted mean of the aggregated ``<kind>_<lang>`` meters (the paper's Avg.)."""
    values = [meter.avg for key, meter in meters.items()
              if key.startswith(f"{kind}_") and key != f"{kind}_avg" and hasattr(meter, "avg")]
    return round(math.fsum(values) / len(values), 2) if values else 0.0
