"""From span logits over the windows of a binarized split to answers, F1 and EM.

Used by ``xmrc_span --eval-span-f1`` during validation and by ``grafusion-predict``.  The windows of
one question are consecutive examples of the split sharing its question id; a batch given to
:meth:`SpanScorer.decode` must hold all windows of each of its questions (see
``GraphPairDataset(group_questions=True)``).  Answers are exact substrings of the original
context, found through the token character offsets (``src.offsets`` / ``tgt.offsets``).
"""
import json
import os

from .errors import GraFusionError
from .scoring.qa_metrics import exact_match_score, f1_score, iter_gold_questions, resolve_metric
from .scoring.span_decoding import SpanWindow, nbest_spans


def read_squad(path):
    """``(contexts, answers)`` by question id from a SQuAD v1.1 file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise GraFusionError(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise GraFusionError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    contexts = {}
    try:
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    contexts[str(qa["id"])] = paragraph["context"]
    except (KeyError, TypeError) as e:
        raise GraFusionError(f"{path}: not in SQuAD v1.1 format (problem with {e})") from None
    answers = dict(iter_gold_questions(data))
    return contexts, answers


class SpanScorer:
    """Decodes the ``stream`` ("tgt" or "src") of a split and scores it against gold answers."""

    def __init__(self, reader, contexts, answers=None, stream="tgt", lang=None, metric="auto",
                 max_answer_length=30, n_best=20):
        field = f"{stream}.offsets"
        if field not in reader.fields:
            raise GraFusionError(f"{reader.prefix}: the split has no '{field}' field (token "
                                 "character offsets); binarize it with grafusion-preprocess")
        missing = sorted({q for q in reader.ids if q not in contexts})
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

    def logging_output(self, sample, out):
        """Summable ``span_f1`` / ``span_em`` / ``span_n`` for the criterion's logging output."""
        nbest = self.decode(sample["id"].cpu(), out[f"{self.stream}_start"].detach().float().cpu(),
                            out[f"{self.stream}_end"].detach().float().cpu())
        f1, em, n = self.score({q: (b[0].text if b else "") for q, b in nbest.items()})
        return {"span_f1": f1, "span_em": em, "span_n": n}


def gold_path(data_dir, split, stream):
    return os.path.join(data_dir, f"{split}.{stream}.json")
