"""MLQA / SQuAD v1.1 F1 and EM: hand-worked cases per language and a step-by-step reference."""
import random
import re
import string
import sys
import unicodedata
from collections import Counter

import pytest

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.scoring.qa_metrics import (
    MLQA_LANGUAGES,
    evaluate,
    exact_match_score,
    f1_score,
    metric_for_language,
    normalize_answer,
    resolve_metric,
)

# --- normalisation, language by language -------------------------------------------------------

@pytest.mark.parametrize(
    "lang, text, expected",
    [
        ("en", "The Eiffel Tower!", "eiffel tower"),
        ("en", "an apple a day", "apple day"),
        ("en", "Theatre, another anthem", "theatre another anthem"),  # whole words only
        ("en", "  the   A-Team  ", "ateam"),  # '-' removed before articles: "ateam" stays
        ("en", "$100 + 5% (approx.)", "100 5 approx"),  # ASCII symbols that are not category P
        ("es", "¿Dónde está la casa?", "dónde está casa"),
        ("es", "Unos perros y unas gatas, uno más", "perros y gatas uno más"),
        ("es", "Los Ángeles", "ángeles"),  # the official rule drops "Los" here too
        ("de", "Der Hund, die Katze und das Haus", "hund katze und haus"),
        ("de", "einen Einstein, eines dessen", "einstein dessen"),
        ("de", "«Faust» – eine Tragödie", "faust tragödie"),  # « » and the en dash are P*
        ("vi", "Thủ đô của Việt Nam là Hà Nội", "thủ đô việt nam hà nội"),
        ("vi", "Những chiếc xe, cái bàn", "xe bàn"),
        ("hi", "भारत की राजधानी।", "भारत की राजधानी"),  # danda U+0964 is Po
        ("hi", "the भारत", "the भारत"),  # no articles for Hindi
        ("zh", "北京大学。", "北 京 大 学"),
        ("zh", "2008年北京奥运会", "2008 年 北 京 奥 运 会"),
        ("zh", "iPhone 12手机", "iphone 12 手 机"),
        ("zh", "“北京”，  中国", "北 京 中 国"),
        ("zh", "the 北京", "the 北 京"),  # no articles for Chinese
        ("zh", "㐀㐁 龦龦", "㐀㐁 龦龦"),  # outside U+4E00..U+9FA5: not split into characters
        ("ar", "الكتاب", "كتاب"),
        ("ar", "مالك", "م ك"),  # the quirk: "ال" inside a word is removed too
        ("ar", "في البيت.", "في بيت"),
    ],
)
def test_mlqa_normalisation(lang, text, expected):
    assert normalize_answer(text, lang) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("¿Dónde está la casa?", "¿dónde está la casa"),  # Unicode punctuation and es articles kept
        ("«Faust» – eine Tragödie", "«faust» – eine tragödie"),
        ("The Eiffel Tower!", "eiffel tower"),
        ("北京大学。", "北京大学。"),  # no CJK segmentation, no Unicode punctuation removal
        ("$100 + 5%", "100 5"),
    ],
)
def test_squad_normalisation(text, expected):
    # the SQuAD metric ignores the language: same result for every code, known or not
    for lang in ("en", "es", "de", "zh", "bn", "xx"):
        assert normalize_answer(text, lang, metric="squad") == expected


def test_every_unicode_punctuation_character_is_removed():
    punct = [chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")]
    assert len(punct) > 700
    text = "x" + "".join(punct) + string.punctuation + "y"
    assert normalize_answer(text, "hi") == "xy"
    assert normalize_answer(text, "zh") == "xy"
    # the SQuAD metric removes the ASCII ones only
    assert normalize_answer(text, "hi", metric="squad") == "x" + "".join(
        c for c in punct if c not in string.punctuation).lower() + "y"


def test_symbols_that_are_not_punctuation_are_kept():
    assert normalize_answer("€5 °C ©", "de") == "€5 °c ©"


# --- F1 and EM ---------------------------------------------------------------------------------

def test_f1_english_worked_example():
    # pred tokens: big red apple; gold: red apple -> P = 2/3, R = 1, F1 = 0.8
    assert f1_score("the big red apple", "a red apple", "en") == pytest.approx(0.8)
    assert not exact_match_score("the big red apple", "a red apple", "en")
    assert exact_match_score("The red apple.", "red   apple", "en")


def test_f1_counts_repeated_tokens_once_per_match():
    # "ha ha ha" vs "ha": one common token, P = 1/3, R = 1 -> F1 = 0.5
    assert f1_score("ha ha ha", "ha", "en") == pytest.approx(0.5)


def test_f1_chinese_characters_are_tokens():
    # pred 北 京 大 学 vs gold 北 京: P = 2/4, R = 1 -> F1 = 2/3
    assert f1_score("北京大学", "北京", "zh") == pytest.approx(2 / 3)
    assert exact_match_score("北 京", "北京", "zh")
    # without segmentation (SQuAD metric) "北京大学" and "北京" share no token
    assert f1_score("北京大学", "北京", "zh", metric="squad") == 0.0


def test_f1_german_articles_mlqa_vs_squad():
    assert f1_score("der Hund", "Hund", "de") == 1.0
    # SQuAD keeps "der": pred [der, hund] vs [hund] -> P = 1/2, R = 1 -> 2/3
    assert f1_score("der Hund", "Hund", "de", metric="squad") == pytest.approx(2 / 3)


def test_unicode_punctuation_mlqa_vs_squad():
    assert exact_match_score("«Goethe»", "Goethe", "de")
    assert not exact_match_score("«Goethe»", "Goethe", "de", metric="squad")
    assert f1_score("«Goethe»", "Goethe", "de", metric="squad") == 0.0


def test_arabic_quirk_splits_words():
    assert exact_match_score("مالك", "م ك", "ar")
    # "مالك" -> [م, ك]; gold "ملك" -> [ملك]: nothing in common
    assert f1_score("مالك", "ملك", "ar") == 0.0


def test_answers_normalising_to_empty_get_em_but_no_f1():
    # as in the official scripts: "" == "" but F1 returns 0 when no token is shared
    assert exact_match_score("The", "a", "en")
    assert f1_score("The", "a", "en") == 0.0


# --- languages and metrics ---------------------------------------------------------------------

def test_metric_for_language():
    for lang in MLQA_LANGUAGES:
        assert metric_for_language(lang) == "mlqa"
    for lang in ("bn", "fi", "id", "ko", "ru", "sw", "te"):
        assert metric_for_language(lang) == "squad"
    with pytest.raises(GraFusionError):
        metric_for_language("xx")
    assert resolve_metric("de", "squad") == "squad"
    assert resolve_metric("bn") == "squad"


def test_unknown_language_is_a_one_line_error_listing_codes():
    with pytest.raises(GraFusionError) as e:
        normalize_answer("x", "xx")
    msg = str(e.value)
    assert "\n" not in msg and "'xx'" in msg
    words = re.findall(r"[a-z]+", msg)
    for lang in MLQA_LANGUAGES:
        assert lang in words


def test_tydiqa_language_under_mlqa_metric_points_to_squad():
    with pytest.raises(GraFusionError, match="squad"):
        f1_score("x", "x", "bn", metric="mlqa")
    assert f1_score("x", "x", "bn", metric="squad") == 1.0


def test_unknown_metric():
    with pytest.raises(GraFusionError, match="metric"):
        normalize_answer("x", "en", metric="bleu")


# --- evaluate ----------------------------------------------------------------------------------

def _dataset(qas_by_paragraph):
    return {
        "version": "1.0",
        "data": [{"title": "t", "paragraphs": [
            {"context": "ctx", "qas": [
                {"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in golds]}
                for qid, golds in qas
            ]} for qas in qas_by_paragraph
        ]}],
    }


def test_evaluate_worked_example():
    gold = _dataset([
        [("q1", ["der Hund", "Hund"]), ("q2", ["Berlin"])],
        [("q3", ["«Goethe»"]), ("q4", ["zwei Katzen"])],
    ])
    pred = {"q1": "ein Hund!", "q2": "in Berlin", "q3": "Goethe", "zz": "extra"}
    # mlqa: q1 F1 1 EM 1; q2 F1 2/3 EM 0; q3 F1 1 EM 1; q4 missing -> 0
    r = evaluate(gold, pred, "de")
    assert r["total"] == 4
    assert r["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 4)
    assert r["exact_match"] == pytest.approx(50.0)
    assert r["missing"] == ["q4"]
    assert r["extra"] == ["zz"]
    assert r["blank_gold"] == []
    # squad: q1 [ein, hund] vs "der hund" 1/2, vs "hund" 2/3 -> 2/3 ; q2 2/3 ; q3 0 ; q4 0
    r = evaluate(gold, pred, "de", metric="squad")
    assert r["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 4)
    assert r["exact_match"] == 0.0
    # the 'data' list alone works too
    assert evaluate(gold["data"], pred, "de")["f1"] == pytest.approx(100 * (8 / 3) / 4)


def test_evaluate_max_over_gold_answers():
    gold = _dataset([[("q", ["red apple", "apple"])]])
    assert evaluate(gold, {"q": "apple"}, "en")["exact_match"] == 100.0
    assert evaluate(gold, {"q": "green apple"}, "en")["f1"] == pytest.approx(100 * 2 / 3)


def test_evaluate_reports_blank_gold_and_scores_it_like_the_script():
    gold = _dataset([[("q1", [""]), ("q2", ["x"])]])
    r = evaluate(gold, {"q1": "", "q2": "x"}, "en")
    assert r["blank_gold"] == ["q1"]
    assert r["exact_match"] == 100.0 and r["f1"] == 50.0


def test_evaluate_errors():
    gold = _dataset([[("q1", ["x"])]])
    with pytest.raises(GraFusionError, match="q1"):
        evaluate(gold, {"q1": ["x"]}, "en")
    with pytest.raises(GraFusionError, match="data"):
        evaluate({"version": "1"}, {}, "en")
    with pytest.raises(GraFusionError, match="no 'id' or no 'answers'"):
        evaluate({"data": [{"paragraphs": [{"qas": [{"id": "a"}]}]}]}, {}, "en")
    with pytest.raises(GraFusionError, match="SQuAD"):
        evaluate({"data": [{"paragraphs": [{"context": "c"}]}]}, {}, "en")
    with pytest.raises(GraFusionError, match="no questions"):
        evaluate({"data": []}, {}, "en")
    with pytest.raises(GraFusionError):
        evaluate(gold, {"q1": "x"}, "xx")


# --- agreement with a step-by-step rendering of the official algorithm ------------------------

_ALL_P = frozenset(
    chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
) | frozenset(string.punctuation)
_REF_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": "\\sال^|ال",  # the official pattern, kept literally
}


def _ref_normalize(s, lang):
    s = s.lower()
    s = "".join(c for c in s if c not in _ALL_P)
    if lang in _REF_ARTICLES:
        s = re.sub(_REF_ARTICLES[lang], " ", s)
    if lang != "zh":
        toks = s.split()
    else:
        toks, run = [], ""
        for c in s:
            if re.search("[\u4e00-\u9fa5]", c) or c in _ALL_P:
                toks.extend(run.split())
                run = ""
                toks.append(c)
            else:
                run += c
        toks.extend(run.split())
    return " ".join(t for t in toks if t.strip())


def _ref_f1(p, g, lang):
    pt, gt = _ref_normalize(p, lang).split(), _ref_normalize(g, lang).split()
    same = sum((Counter(pt) & Counter(gt)).values())
    if not same:
        return 0
    prec, rec = same / len(pt), same / len(gt)
    return 2 * prec * rec / (prec + rec)


def test_random_strings_match_reference():
    rng = random.Random(0)
    pieces = [
        "the", "a", "an", "The", "un", "una", "Los", "las", "der", "Die", "einem", "của", "là",
        "Chiếc", "ال", "الكتاب", "مالك", "北", "京", "大学", "㐀", "龦", "abc", "Ab", "x1", "ß",
        " ", "  ", "\t", "\u3000", "\u00a0", "-", "«", "»", "¿", "。", "，", "'", "_", "$", "€",
        "İ", "ǅ", "\u0301",
    ]
    for _ in range(3000):
        p = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        g = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        for lang in MLQA_LANGUAGES:
            assert normalize_answer(p, lang) == _ref_normalize(p, lang), (p, lang)
            assert f1_score(p, g, lang) == pytest.approx(_ref_f1(p, g, lang)), (p, g, lang)
            assert exact_match_score(p, g, lang) == (_ref_normalize(p, lang) == _ref_normalize(g, lang))
