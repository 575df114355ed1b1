"""Decoding a batch of windows into answers and scoring them against the gold answers: what
``xmrc_span --eval-span-f1`` runs during validation and :func:`fairseq_grafusion.inference.predict`
runs on a split.

The windows of one question are consecutive examples sharing its question id; a batch given to
:meth:`SpanScorer.decode` must hold all windows of each of its questions (see
``GraphPairDataset(group_questions=True)``).  Answers are exact substrings of the original
context, found through the token character offsets (``src.offsets`` / ``tgt.offsets``).
"""
import numpy as np

from ..errors import GraFusionError
from .per_language import LanguageScorer
from .qa_metrics import exact_match_score, f1_score, resolve_metric
from .span_decoding import MAX_ANSWER_LENGTH, N_BEST, SpanWindow, nbest_spans


class SpanScorer:
    """Decodes the ``stream`` ("tgt" or "src") of a split and scores it against gold answers."""

    def __init__(self, reader, contexts, answers=None, stream="tgt", lang=None, metric="auto",
                 max_answer_length=MAX_ANSWER_LENGTH, n_best=N_BEST, lang_id=None):
        field = f"{stream}.offsets"
        if field not in reader.fields:
            raise GraFusionError(f"{reader.prefix}: the split has no '{field}' field (token "
                                 "character offsets); binarize it with grafusion-preprocess")
        ids = reader.ids  # lang_id: only that language's questions of a multilingual split
        if lang_id is not None:
            ids = [reader.ids[i] for i in np.flatnonzero(reader.lang_ids == lang_id)]
        missing = sorted({q for q in ids if q not in contexts})
        if missing:
            raise GraFusionError(f"{reader.prefix}: {len(missing)} question ids have no context in "
                                 f"the gold file, e.g. {missing[0]!r}")
        self.reader, self.contexts, self.answers = reader, contexts, answers or {}
        self.stream, self.field = stream, field
        self.lang = lang or "en"
        self.metric = resolve_metric(lang, metric) if lang else "squad"
        self.max_answer_length, self.n_best = max_answer_length, n_best

    def decode(self, indices, start_logits, end_logits):
        """``{question id: n-best list}`` for a batch of windows (dataset ``indices``)."""
        windows = {}
        for row, index in enumerate(indices.tolist()):
            offsets = self.reader.field(self.field, index).reshape(-1, 2)
            length = len(offsets)
            windows.setdefault(self.reader.ids[index], []).append(SpanWindow(
                start_logits[row, :length], end_logits[row, :length], offsets[:, 0] >= 0, offsets))
        return {qid: nbest_spans(w, self.contexts[qid], self.n_best, self.max_answer_length)
                for qid, w in windows.items()}

    def score(self, predictions):
        """Summed F1 and EM (over the gold answers' max) of ``{id: text}`` and the count."""
        f1 = em = 0.0
        for qid, text in predictions.items():
            golds = self.answers.get(qid) or [""]
            f1 += max(f1_score(text, g, self.lang, self.metric) for g in golds)
            em += max(float(exact_match_score(text, g, self.lang, self.metric)) for g in golds)
        return f1, em, len(predictions)

    def decode_and_score(self, sample, out):
        """Summable ``span_f1`` / ``span_em`` / ``span_n`` of a batch and the model's output."""
        nbest = self.decode(sample["id"].cpu(), out[f"{self.stream}_start"].detach().float().cpu(),
                            out[f"{self.stream}_end"].detach().float().cpu())
        f1, em, n = self.score({q: (b[0].text if b else "") for q, b in nbest.items()})
        return {"span_f1": f1, "span_em": em, "span_n": n}


class LanguageSpanScorer:
    """:class:`SpanScorer` for a split that mixes languages (``grafusion-preprocess combine``):
    each example is decoded against its own language's contexts (question ids repeat across
    languages), each answer scored with its language's official metric, and a batch gives the
    summable ``span_{f1,em,n}_<lang>`` of :class:`~.per_language.LanguageScorer` plus the
    question-weighted ``span_f1`` / ``span_em`` / ``span_n`` over all languages.

    ``golds``: ``{lang: (contexts, answers)}`` for every language of ``reader.languages``.
    """

    def __init__(self, reader, golds, stream="tgt", metric="auto", default_lang=None,
                 max_answer_length=MAX_ANSWER_LENGTH, n_best=N_BEST):
        self.stream, self.languages = stream, list(reader.languages)
        self.scorers = [SpanScorer(reader, golds[lang][0], stream=stream, lang=lang or default_lang,
                                   metric=metric, max_answer_length=max_answer_length,
                                   n_best=n_best, lang_id=k)
                        for k, lang in enumerate(self.languages)]
        self.by_language = LanguageScorer({lang: golds[lang][1] for lang in self.languages},
                                          metric=metric, default_lang=default_lang)

    def decode(self, indices, lang_ids, start_logits, end_logits):
        """``{(lang, question id): n-best list}`` for a batch of windows."""
        results = {}
        for k in np.unique(lang_ids.numpy()).tolist():  # one decode per language in the batch
            rows = torch_nonzero(lang_ids == k)
            nbest = self.scorers[k].decode(indices[rows], start_logits[rows], end_logits[rows])
            results.update({(self.languages[k], q): b for q, b in nbest.items()})
        return results

    def decode_and_score(self, sample, out):
        nbest = self.decode(sample["id"].cpu(), sample["lang"].cpu(),
                            out[f"{self.stream}_start"].detach().float().cpu(),
                            out[f"{self.stream}_end"].detach().float().cpu())
        logging_output = self.by_language.logging_output(
            {key: (b[0].text if b else "") for key, b in nbest.items()})
        labels = set(self.by_language.labels.values())
        for kind in ("f1", "em", "n"):
            logging_output[f"span_{kind}"] = sum(logging_output[f"span_{kind}_{x}"] for x in labels)
        return logging_output


def torch_nonzero(mask):
    """Row indices where a boolean tensor is true."""
    return mask.nonzero(as_tuple=True)[0]
