"""Per-language F1 / EM in validation: summed over batches and workers they equal the official
metric on the whole set, each language with its own normalisation; Avg. is their plain mean."""
import random

import pytest
from fairseq import metrics

from fairseq_grafusion.scoring.per_language import LanguageScorer, per_language_scores, reduce_per_language
from fairseq_grafusion.scoring.qa_metrics import evaluate

WORDS = {"de": "der die das Hund Katze Haus Berlin sieben Jahre lang".split(),
         "zh": list("北京大学的学生在上海工作七年"),
         "ar": "الكتاب كتاب مدينة القاهرة سبع سنوات في".split(),
         "en": "the a Denver Broncos won seven titles in years".split()}
JOIN = {"zh": ""}


def make_split(rng, n_per_lang):
    """Gold answers per language (ids repeat across languages, as in MLQA) and predictions."""
    answers, predictions = {}, {}
    for lang, words in WORDS.items():
        answers[lang] = {}
        for k in range(n_per_lang[lang]):
            qid = f"q{k}"
            golds = [JOIN.get(lang, " ").join(rng.sample(words, rng.randint(1, 3)))
                     for _ in range(rng.randint(1, 2))]
            answers[lang][qid] = golds
            kind = rng.random()
            if kind < 0.3:
                text = golds[0]
            elif kind < 0.8:
                text = JOIN.get(lang, " ").join(rng.sample(words, rng.randint(1, 3)))
            else:
                text = ""
            predictions[(lang, qid)] = text
    return answers, predictions


def squad_json(answers):
    return {"data": [{"paragraphs": [{"context": "", "qas": [
        {"id": q, "answers": [{"text": g} for g in golds]} for q, golds in answers.items()]}]}]}


def fast_stat_sync_sum(worker_outputs):
    """What fairseq's ``Trainer._fast_stat_sync_sum`` + all-reduce do with one batch's outputs
    of every worker: sum each key of the *first* output over all outputs."""
    keys = list(worker_outputs[0])
    return {k: sum(out[k] for out in worker_outputs if k in out) for k in keys}


def test_sums_over_batches_and_workers_equal_the_direct_scores():
    rng = random.Random(0)
    n = {"de": 23, "zh": 17, "ar": 9, "en": 31}
    answers, predictions = make_split(rng, n)
    scorer = LanguageScorer(answers)
    items = list(predictions.items())
    rng.shuffle(items)
    # batches of 1-6 questions, dealt alternately to two workers; a worker may get none
    batches = []
    while items:
        size = rng.randint(1, 6)
        batches.append(dict(items[:size]))
        items = items[size:]
    steps = [batches[k:k + 2] for k in range(0, len(batches), 2)]
    logging_outputs = [fast_stat_sync_sum([scorer.logging_output(b) for b in step]) for step in steps]
    with metrics.aggregate() as agg:
        reduce_per_language(logging_outputs)
        logged = agg.get_smoothed_values()
    expected = {lang: evaluate(squad_json(answers[lang]), {q: t for (x, q), t in predictions.items()
                                                          if x == lang}, lang, "auto")
                for lang in answers}
    for lang, direct in expected.items():
        assert logged[f"f1_{lang}"] == pytest.approx(direct["f1"], abs=0.005)  # logged rounded to 2
        assert logged[f"em_{lang}"] == pytest.approx(direct["exact_match"], abs=0.005)
    scores, avg = per_language_scores(logging_outputs)
    for lang, direct in expected.items():
        assert scores[lang]["f1"] == pytest.approx(direct["f1"], abs=1e-9)
        assert scores[lang]["n"] == n[lang]
    assert avg["f1"] == pytest.approx(sum(d["f1"] for d in expected.values()) / 4, abs=1e-9)
    assert avg["em"] == pytest.approx(sum(d["exact_match"] for d in expected.values()) / 4, abs=1e-9)
    assert logged["f1_avg"] == pytest.approx(avg["f1"], abs=0.005)
    # the mean over languages, not over questions (that would weight en 31 : ar 9)
    pooled = sum(expected[x]["f1"] * n[x] for x in n) / sum(n.values())
    assert abs(avg["f1"] - pooled) > 0.1
    # as fairseq validates: reduce_metrics once per batch, the meters averaging over batches
    with metrics.aggregate() as agg:
        for step in logging_outputs:
            reduce_per_language([step])
        per_batch = agg.get_smoothed_values()
    for lang, direct in expected.items():
        assert per_batch[f"f1_{lang}"] == pytest.approx(direct["f1"], abs=0.005)
    assert per_batch["f1_avg"] == pytest.approx(avg["f1"], abs=0.01)
    assert per_batch["em_avg"] == pytest.approx(avg["em"], abs=0.01)


def test_every_logging_output_has_every_language():
    answers = {"de": {"q1": ["Hund"]}, "zh": {"q1": ["北京"]}, None: {"x": ["y"]}}
    scorer = LanguageScorer(answers, default_lang="ar")
    only_de = scorer.logging_output({("de", "q1"): "Hund"})
    empty = scorer.logging_output({})
    assert list(only_de) == list(empty)  # same keys, same order, whatever the batch holds
    assert set(only_de) == {f"span_{k}_{x}" for k in ("f1", "em", "n") for x in ("de", "zh", "ar")}
    assert only_de["span_f1_de"] == 1.0 and only_de["span_n_zh"] == 0
    scores, avg = per_language_scores([only_de, empty])
    assert list(scores) == ["de"] and avg["languages"] == 1  # a language without questions: no mean


def test_each_language_gets_its_official_normalisation():
    answers = {"de": {"q": ["der Hund"]}, "zh": {"q": ["北京大学"]}, "en": {"q": ["the Broncos"]}}
    preds = {("de", "q"): "Hund", ("zh", "q"): "北京", ("en", "q"): "Broncos"}
    auto = LanguageScorer(answers).logging_output(preds)
    # MLQA: German articles dropped (EM 1); Chinese characters are tokens (F1 2/3)
    assert auto["span_em_de"] == 1.0 and auto["span_f1_zh"] == pytest.approx(2 / 3)
    assert auto["span_em_en"] == 1.0
    squad = LanguageScorer(answers, metric="squad").logging_output(preds)
    # SQuAD v1.1 (TyDiQA-GoldP, XQuAD): English articles only, whitespace tokens
    assert squad["span_em_de"] == 0.0 and squad["span_f1_de"] == pytest.approx(2 / 3)
    assert squad["span_f1_zh"] == 0.0 and squad["span_em_en"] == 1.0
