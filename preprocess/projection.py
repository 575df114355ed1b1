"""Answer projection through the word alignment, for a side produced by machine translation.

The answer's characters select the words of the side that has it; their aligned words on the
other side span the projected answer, from the first to the last aligned word (the usual
translate-train recipe).  Projection fails, and the question is dropped and counted, when no
answer word is aligned or when the projected span is implausibly long (more than
``3 * n + 5`` words for an answer of ``n`` words).
"""
import numpy as np


def project_answer(answer, from_offsets, to_offsets, to_text, links, reverse=False):
    """``(answer_dict, None)`` or ``(None, reason)``.

    ``links`` is an ``(E, 2)`` int array of (source word, target word) passage links;
    ``reverse=True`` projects from the target side to the source side.
    """
    spans = np.asarray(from_offsets, dtype=np.int64).reshape(-1, 2)
    start, end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
    words = np.nonzero((spans[:, 1] > start) & (spans[:, 0] < end))[0]
    if len(words) == 0 or len(links) == 0:
        return None, "answer words not found or no links"
    col_from, col_to = (1, 0) if reverse else (0, 1)
    hit = links[np.isin(links[:, col_from], words), col_to]
    if len(hit) == 0:
        return None, "no aligned word for the answer"
    first, last = int(hit.min()), int(hit.max())
    if last - first + 1 > 3 * len(words) + 5:
        return None, "projected span too long"
    to_spans = np.asarray(to_offsets, dtype=np.int64).reshape(-1, 2)
    s, e = int(to_spans[first, 0]), int(to_spans[last, 1])
    return {"text": to_text[s:e], "answer_start": s}, None
