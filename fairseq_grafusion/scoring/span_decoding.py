"""Extractive-QA span decoding: from start/end logits over the windows of one question to an
n-best list of answer spans, as HuggingFace's QA examples do it.

A span (start token i, end token j) of a window is valid when both tokens belong to the passage
(context mask set and character offsets >= 0), ``i <= j`` and ``j - i + 1 <= max_answer_length``.
Its score is ``start_logits[i] + end_logits[j]`` and its text is the exact substring
``context[offsets[i, 0]:offsets[j, 1]]`` of the original passage.

Differences from HF's ``postprocess_qa_predictions``, on purpose:

* every valid pair is scored (vectorised), not only the top-n starts times the top-n ends;
* a character span found in several overlapping windows is listed once, with its best score;
* a question without any valid span gets the answer "" (HF writes "empty").

``probability`` is the softmax of the scores over the returned n-best list, as in HF.
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import GraFusionError

# HuggingFace's QA defaults (``--n_best_size 20 --max_answer_length 30``), declared once: the task
# config, grafusion-predict, the hub and the pipeline refer to these names
N_BEST = 20
MAX_ANSWER_LENGTH = 30  # tokens


class SpanWindow(NamedTuple):
    """Model outputs for one window of one question (all arrays of the window's length L)."""

    start_logits: object  # (L,) float, numpy array or torch tensor
    end_logits: object  # (L,) float
    context_mask: object  # (L,) bool: token belongs to the passage
    offsets: object  # (L, 2) int: char start, char end (exclusive) in the context; -1 if none


@dataclass
class SpanPrediction:
    """One n-best entry."""

    text: str
    score: float
    probability: float
    start_logit: float
    end_logit: float
    char_start: int
    char_end: int
    window: int
    token_start: int
    token_end: int


def _numpy(x, dtype):
    if hasattr(x, "detach"):  # torch tensor; bfloat16/half have no exact numpy twin
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _window_candidates(k, window, context_len, max_answer_length):
    if isinstance(window, dict):
        window = SpanWindow(**window)
    start, end, mask, offsets = window
    start = _numpy(start, np.float64)
    end = _numpy(end, np.float64)
    mask = _numpy(mask, bool)
    offsets = _numpy(offsets, np.int64)
    length = start.shape[0] if start.ndim == 1 else -1
    if (
        length < 0
        or end.shape != (length,)
        or mask.shape != (length,)
        or offsets.shape != (length, 2)
    ):
        raise GraFusionError(
            f"window {k}: expected start/end logits and context mask of shape (L,) and offsets of "
            f"shape (L, 2); got {start.shape}, {end.shape}, {mask.shape}, {offsets.shape}"
        )
    usable = mask & (offsets[:, 0] >= 0) & (offsets[:, 1] >= 0)
    if np.any(offsets[usable] > context_len) or np.any(offsets[usable, 0] > offsets[usable, 1]):
        raise GraFusionError(f"window {k}: character offsets outside the context ({context_len} chars)")
    pos = np.arange(length)
    span_len = pos[None, :] - pos[:, None] + 1  # [i, j] -> j - i + 1
    valid = usable[:, None] & usable[None, :] & (span_len >= 1) & (span_len <= max_answer_length)
    ii, jj = np.nonzero(valid)
    return {
        "window": np.full(ii.shape, k, dtype=np.int64),
        "token_start": ii,
        "token_end": jj,
        "start_logit": start[ii],
        "end_logit": end[jj],
        "char_start": offsets[ii, 0],
        "char_end": offsets[jj, 1],
    }


def nbest_spans(windows, context, n_best_size=N_BEST, max_answer_length=MAX_ANSWER_LENGTH):
    """The ``n_best_size`` best valid spans over all ``windows`` of one question, best first.

    ``windows``: a sequence of :class:`SpanWindow` (or tuples/dicts with the same fields).
    Returns a list of :class:`SpanPrediction`; empty when no window has a valid span.
    Ties in score are broken by window, then start token, then end token.
    """
    if n_best_size < 1 or max_answer_length < 1:
        raise GraFusionError("n_best_size and max_answer_length must be >= 1")
    parts = [_window_candidates(k, w, len(context), max_answer_length) for k, w in enumerate(windows)]
    if not parts:
        return []
    cand = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if cand["window"].size == 0:
        return []
    score = cand["start_logit"] + cand["end_logit"]
    # best first; ties -> lower window, start, end (np.lexsort: last key is the primary one)
    order = np.lexsort((cand["token_end"], cand["token_start"], cand["window"], -score))
    # keep the first (best) occurrence of every character span
    spans = np.stack([cand["char_start"][order], cand["char_end"][order]], axis=1)
    _, first = np.unique(spans, axis=0, return_index=True)
    order = order[np.sort(first)][:n_best_size]
    best = score[order]
    probs = np.exp(best - best.max())
    probs /= probs.sum()
    return [
        SpanPrediction(
            text=context[int(cand["char_start"][i]) : int(cand["char_end"][i])],
            score=float(score[i]),
            probability=float(p),
            start_logit=float(cand["start_logit"][i]),
            end_logit=float(cand["end_logit"][i]),
            char_start=int(cand["char_start"][i]),
            char_end=int(cand["char_end"][i]),
            window=int(cand["window"][i]),
            token_start=int(cand["token_start"][i]),
            token_end=int(cand["token_end"][i]),
        )
        for i, p in zip(order, probs)
    ]


def decode_answer(windows, context, n_best_size=N_BEST, max_answer_length=MAX_ANSWER_LENGTH):
    """``(answer text, n-best list)`` for one question; the text is "" when no span is valid."""
    nbest = nbest_spans(windows, context, n_best_size, max_answer_length)
    return (nbest[0].text if nbest else ""), nbest
