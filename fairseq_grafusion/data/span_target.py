"""The answer-span target of a QA window, declared once: the field ``span`` of a binarized split
and the batch's ``target`` (B, 4) are ``[src_start, src_end, tgt_start, tgt_end]``, token positions
in each stream's ``[<s> question </s></s> passage </s>]``; ``(0, 0)`` (the ``<s>`` token) where
the window does not hold that stream's answer (eq. 5's targets, SQuAD 2.0's convention).

Written by ``grafusion-preprocess binarize``, checked by :func:`.pair_binary.check_example`,
batched by :class:`.GraphPairDataset`, read by the criteria and ``grafusion-plot-attention``.
"""
import numpy as np

SPAN_FIELD = "span"
COLUMNS = {"src": (0, 1), "tgt": (2, 3)}  # stream -> (start, end) columns
NO_ANSWER = (0, 0)
LAYOUT = "[src_start, src_end, tgt_start, tgt_end]"


def span_target(src, tgt):
    """The four positions of a window from each stream's ``(start, end)``."""
    spans = {"src": src, "tgt": tgt}
    target = np.zeros(4, dtype=np.int64)
    for stream, columns in COLUMNS.items():
        target[list(columns)] = spans[stream]
    return target


def stream_span(target, stream):
    """``(start, end)`` of ``stream`` ("src" or "tgt") in a window's target."""
    start, end = COLUMNS[stream]
    return int(target[start]), int(target[end])


def has_answer(target, stream):
    """Whether the window holds ``stream``'s answer (a span other than :data:`NO_ANSWER`)."""
    return stream_span(target, stream) != NO_ANSWER
