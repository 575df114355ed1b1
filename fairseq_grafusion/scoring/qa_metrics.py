"""F1 and exact match as the official MLQA and SQuAD v1.1 evaluation scripts compute them.

Two metrics:

``mlqa``
    MLQA's ``mlqa_evaluation_v1.py`` (XTREME's ``evaluate_mlqa.py`` is the same code). Steps, in
    the script's order: lowercase; drop every character whose Unicode category starts with ``P``
    and every ASCII ``string.punctuation`` character; replace the language's articles by a space;
    split into tokens (whitespace, or for ``zh`` each CJK character in U+4E00..U+9FA5 on its own
    and the text between them split on whitespace); join with single spaces.
    For ``ar`` the script's pattern ``'\\sال^|ال'`` can only ever match its second branch, so every
    occurrence of the two letters "ال", also inside a word, becomes a space; we do exactly that.
``squad``
    SQuAD's ``evaluate-v1.1.py``, which XTREME uses for TyDiQA-GoldP and XQuAD: lowercase, drop
    ASCII punctuation only, drop English articles, whitespace tokens, for every language.

Both share the token F1 (0 when no token is shared, so two answers that normalise to "" get
EM 1 but F1 0, as in the official scripts) and take the maximum over the gold answers.
"""
import re
import string
import unicodedata
from collections import Counter
from functools import lru_cache

from ..errors import GraFusionError
from ..squad import gold_answers

METRICS = ("mlqa", "squad")

# Articles the official MLQA script removes as whole words (ar has its own rule, hi and zh none).
_WORD_ARTICLES = {
    "en": ("a", "an", "the"),
    "es": ("un", "una", "unos", "unas", "el", "la", "los", "las"),
    "de": ("ein", "eine", "einer", "eines", "einem", "einen", "der", "die", "das", "den", "dem", "des"),
    "vi": ("của", "là", "cái", "chiếc", "những"),
}
MLQA_LANGUAGES = ("en", "ar", "de", "es", "hi", "vi", "zh")
TYDIQA_LANGUAGES = ("en", "ar", "bn", "fi", "id", "ko", "ru", "sw", "te")
XQUAD_LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
# Languages for which ``metric="auto"`` picks the SQuAD metric (TyDiQA-GoldP and XQuAD only).
SQUAD_ONLY_LANGUAGES = tuple(
    sorted(set(TYDIQA_LANGUAGES + XQUAD_LANGUAGES) - set(MLQA_LANGUAGES))
)

_ARTICLE_RES = {
    lang: re.compile(r"\b(?:" + "|".join(words) + r")\b") for lang, words in _WORD_ARTICLES.items()
}
_SQUAD_ARTICLES_RE = _ARTICLE_RES["en"]
_CJK_RE = re.compile("([\u4e00-\u9fa5])")  # the script's range: other CJK code points stay in runs
_ASCII_PUNCT = frozenset(string.punctuation)


@lru_cache(maxsize=65536)
def _is_mlqa_punct(ch):
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _check_metric(metric):
    if metric not in METRICS:
        raise GraFusionError(f"unknown QA metric {metric!r}; choose one of: {', '.join(METRICS)}, auto")


def _check_mlqa_language(lang):
    if lang in MLQA_LANGUAGES:
        return
    if lang in SQUAD_ONLY_LANGUAGES:
        raise GraFusionError(
            f"the MLQA metric has no rules for language {lang!r} (MLQA languages: "
            f"{' '.join(MLQA_LANGUAGES)}); TyDiQA-GoldP and XQuAD use the SQuAD v1.1 metric (metric 'squad')"
        )
    raise GraFusionError(
        f"unknown language code {lang!r}; the MLQA metric supports {' '.join(MLQA_LANGUAGES)}, "
        f"the SQuAD metric any language (known: {' '.join(SQUAD_ONLY_LANGUAGES)})"
    )


def metric_for_language(lang):
    """The metric XTREME-style evaluation uses by default: 'mlqa' for MLQA's seven languages,
    'squad' for the other TyDiQA-GoldP / XQuAD languages.

    TyDiQA-GoldP and XQuAD are scored with 'squad' in every language (also en, ar, ...): pick the
    metric per benchmark where the language alone does not decide.
    """
    if lang in MLQA_LANGUAGES:
        return "mlqa"
    if lang in SQUAD_ONLY_LANGUAGES:
        return "squad"
    raise GraFusionError(
        f"unknown language code {lang!r}; known: {' '.join(MLQA_LANGUAGES + SQUAD_ONLY_LANGUAGES)} "
        "(other languages: choose the 'squad' metric explicitly)"
    )


def resolve_metric(lang, metric="auto"):
    """The concrete metric ('mlqa' or 'squad') for ``lang``; checks that it applies to ``lang``.

    'auto' means :func:`metric_for_language`; 'squad' accepts any language code.
    """
    if metric == "auto":
        return metric_for_language(lang)
    _check_metric(metric)
    if metric == "mlqa":
        _check_mlqa_language(lang)
    return metric


def _mlqa_tokens(text, lang):
    text = "".join(ch for ch in text.lower() if not _is_mlqa_punct(ch))
    if lang in _ARTICLE_RES:
        text = _ARTICLE_RES[lang].sub(" ", text)
    elif lang == "ar":
        # Official: re.sub('\sال^|ال', ' ', text); '^' after three characters never matches.
        text = text.replace("ال", " ")
    if lang != "zh":
        return text.split()
    tokens = []
    for i, piece in enumerate(_CJK_RE.split(text)):
        if i % 2:  # a captured CJK character
            tokens.append(piece)
        else:
            tokens.extend(piece.split())
    return tokens


def _squad_tokens(text):
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return _SQUAD_ARTICLES_RE.sub(" ", text).split()


def _tokens(text, lang, metric):
    if resolve_metric(lang, metric) == "squad":
        return _squad_tokens(text)
    return _mlqa_tokens(text, lang)


def normalize_answer(text, lang, metric="mlqa"):
    """The normalised answer string the official script compares (tokens joined by one space).

    ``metric``: 'mlqa', 'squad' (the language is then not used) or 'auto'.
    """
    return " ".join(_tokens(text, lang, metric))


def _f1(pred_tokens, gold_tokens):
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(pred, gold, lang, metric="mlqa"):
    """Token-level F1 between two answer strings, in [0, 1]."""
    return _f1(_tokens(pred, lang, metric), _tokens(gold, lang, metric))


def exact_match_score(pred, gold, lang, metric="mlqa"):
    """True if both answers normalise to the same string."""
    return normalize_answer(pred, lang, metric) == normalize_answer(gold, lang, metric)


def evaluate(dataset_json, predictions, lang, metric="mlqa"):
    """Score ``predictions`` ({question id: answer text}) against SQuAD-format gold data.

    ``dataset_json`` is the loaded gold file (or its ``data`` list); ``metric`` is 'mlqa', 'squad'
    or 'auto' (:func:`metric_for_language`). Returns ``f1`` and ``exact_match`` in percent over
    all gold questions, ``total``, ``missing`` (gold ids without a prediction, scored 0),
    ``extra`` (prediction ids not in the gold data, ignored) and ``blank_gold`` (questions whose
    answers are all empty, as in gold files that XTREME's preparation blanked).
    """
    metric = resolve_metric(lang, metric)
    if not isinstance(predictions, dict):
        raise GraFusionError("predictions must be a JSON object {question id: answer text}")
    f1 = em = 0.0
    total = 0
    missing, blank, seen = [], [], set()
    for qid, golds in gold_answers(dataset_json):
        total += 1
        seen.add(qid)
        if not any(g.strip() for g in golds):
            blank.append(qid)
        if qid not in predictions:
            missing.append(qid)
            continue
        pred = predictions[qid]
        if not isinstance(pred, str):
            raise GraFusionError(f"prediction for question {qid!r} is not a string: {pred!r:.60}")
        if not golds:  # the official script would fail on max([])
            continue
        pred_tokens = _tokens(pred, lang, metric)
        gold_tokens = [_tokens(g, lang, metric) for g in golds]
        em += max(float(pred_tokens == g) for g in gold_tokens)
        f1 += max(_f1(pred_tokens, g) for g in gold_tokens)
    if total == 0:
        raise GraFusionError("gold data has no questions")
    extra = [qid for qid in predictions if qid not in seen]
    return {
        "f1": 100.0 * f1 / total,
        "exact_match": 100.0 * em / total,
        "total": total,
        "missing": missing,
        "extra": extra,
        "blank_gold": blank,
    }
