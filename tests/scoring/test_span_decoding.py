"""Span decoding on hand-built logits, and against a slow loop-based reference on random ones."""
import math
import random

import numpy as np
import pytest
import torch

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.scoring.span_decoding import (
    SpanPrediction,
    SpanWindow,
    decode_answer,
    nbest_spans,
)

CONTEXT = "The  quick brown fox, jumps over the lazy dog."
NEG = -100.0


def _word_offsets(context):
    """(start, end) of every whitespace-separated word of ``context``."""
    out, i = [], 0
    for word in context.split():
        i = context.index(word, i)
        out.append((i, i + len(word)))
        i += len(word)
    return out


def _window(word_offsets, n_question=3, start=None, end=None):
    """<s> q.. </s></s> passage words </s>; logits NEG except where ``start``/``end`` say."""
    offsets = [(-1, -1)] * (n_question + 3) + list(word_offsets) + [(-1, -1)]
    n = len(offsets)
    mask = [False] * (n_question + 3) + [True] * len(word_offsets) + [False]
    s = np.full(n, NEG)
    e = np.full(n, NEG)
    for pos, value in (start or {}).items():
        s[pos] = value
    for pos, value in (end or {}).items():
        e[pos] = value
    return SpanWindow(s, e, np.array(mask), np.array(offsets))


WORDS = _word_offsets(CONTEXT)  # The quick brown fox, jumps over the lazy dog.
P = 6  # first passage token in a window with 3 question tokens


def test_best_span_text_is_the_exact_substring():
    # start at "quick" (word 1), end at "fox," (word 3): text keeps the comma of the piece
    w = _window(WORDS, start={P + 1: 5.0}, end={P + 3: 4.0})
    text, nbest = decode_answer([w], CONTEXT)
    assert text == "quick brown fox,"
    assert nbest[0].score == 9.0
    assert (nbest[0].char_start, nbest[0].char_end) == (5, 21)
    # a span that starts at "The" includes the double space of the original text
    w = _window(WORDS, start={P: 5.0}, end={P + 1: 4.0})
    assert decode_answer([w], CONTEXT)[0] == "The  quick"


def test_start_after_end_is_excluded():
    # best start is "lazy" (7), best end is "fox," (3): that pair is invalid
    w = _window(WORDS, start={P + 7: 10.0, P + 1: 2.0}, end={P + 3: 10.0, P + 8: 1.0})
    best = nbest_spans([w], CONTEXT)[0]
    # candidates: (1,3) = 12, (7,8) = 11, (1,8) = 3 ... ; (7,3) = 20 must not appear
    assert (best.token_start, best.token_end) == (P + 1, P + 3)
    assert all(p.token_start <= p.token_end for p in nbest_spans([w], CONTEXT, n_best_size=100))


def test_length_limit():
    w = _window(WORDS, start={P + 0: 10.0, P + 5: 1.0}, end={P + 8: 10.0, P + 6: 1.0})
    # "The .. dog." is 9 tokens
    assert decode_answer([w], CONTEXT, max_answer_length=9)[0] == CONTEXT
    text, nbest = decode_answer([w], CONTEXT, max_answer_length=8)
    # (0,8) too long; (0,6)=11 and (5,8)=11 tie -> lower start first
    assert text == "The  quick brown fox, jumps over the"
    assert [(p.token_start - P, p.token_end - P) for p in nbest[:2]] == [(0, 6), (5, 8)]
    assert all(p.token_end - p.token_start + 1 <= 8 for p in nbest)
    assert all(p.token_end == p.token_start for p in nbest_spans([w], CONTEXT, max_answer_length=1))


def test_non_context_positions_are_excluded():
    # huge logits on <s> and on question tokens must be ignored
    w = _window(WORDS, start={0: 50.0, 1: 40.0, P + 4: 1.0}, end={0: 50.0, 2: 40.0, P + 4: 1.0})
    text, nbest = decode_answer([w], CONTEXT, n_best_size=1000)
    assert text == "jumps"
    assert all(p.token_start >= P and p.token_end < P + len(WORDS) for p in nbest)
    # a passage token with offset -1 is not usable either
    s, e, mask, off = w
    off = off.copy()
    off[P + 4] = (-1, -1)
    text, nbest = decode_answer([SpanWindow(s, e, mask, off)], CONTEXT, n_best_size=1000)
    assert text != "jumps" and all(p.token_start != P + 4 and p.token_end != P + 4 for p in nbest)


def test_best_across_windows_and_duplicates_merged():
    first, second = WORDS[:6], WORDS[3:]  # overlapping windows: words 3..5 in both
    w1 = _window(first, start={P + 0: 3.0, P + 4: 2.0}, end={P + 1: 3.0, P + 4: 2.0})
    w2 = _window(second, start={P + 1: 5.0, P + 5: 1.0}, end={P + 1: 5.0, P + 5: 1.0})
    text, nbest = decode_answer([w1, w2], CONTEXT, n_best_size=3)
    assert text == "jumps"  # window 2's token 1 = word 4
    assert nbest[0].window == 1 and nbest[0].score == 10.0
    assert (nbest[1].window, nbest[1].text, nbest[1].score) == (0, "The  quick", 6.0)
    # "jumps" scores 4.0 in window 1 too: listed once only, with its best score
    assert [p.text for p in nbest_spans([w1, w2], CONTEXT, n_best_size=100)].count("jumps") == 1


def test_nbest_order_size_and_probabilities():
    rng = np.random.default_rng(1)
    w = _window(WORDS)
    w = SpanWindow(rng.normal(size=len(w.start_logits)), rng.normal(size=len(w.start_logits)),
                   w.context_mask, w.offsets)
    n_valid = sum(min(30, len(WORDS) - i) for i in range(len(WORDS)))  # 45 spans of 9 words
    assert len(nbest_spans([w], CONTEXT, n_best_size=1000)) == n_valid
    nbest = nbest_spans([w], CONTEXT, n_best_size=5)
    assert len(nbest) == 5
    scores = [p.score for p in nbest]
    assert scores == sorted(scores, reverse=True)
    for p in nbest:
        assert p.score == pytest.approx(p.start_logit + p.end_logit)
        assert p.start_logit == pytest.approx(w.start_logits[p.token_start])
        assert p.end_logit == pytest.approx(w.end_logits[p.token_end])
        assert p.text == CONTEXT[p.char_start:p.char_end]
    z = sum(math.exp(s - scores[0]) for s in scores)
    assert [p.probability for p in nbest] == pytest.approx([math.exp(s - scores[0]) / z for s in scores])
    assert len(nbest_spans([w], CONTEXT)) == 20  # default n-best size


def test_no_valid_span_gives_empty_answer():
    w = _window(WORDS, start={P: 1.0}, end={P: 1.0})
    w = SpanWindow(w.start_logits, w.end_logits, np.zeros_like(w.context_mask), w.offsets)
    assert decode_answer([w], CONTEXT) == ("", [])
    assert decode_answer([], CONTEXT) == ("", [])


def test_torch_inputs_and_dicts():
    w = _window(WORDS, start={P + 2: 3.0}, end={P + 3: 3.0})
    t = {
        "start_logits": torch.tensor(w.start_logits, dtype=torch.float16),
        "end_logits": torch.tensor(w.end_logits, dtype=torch.bfloat16),
        "context_mask": torch.tensor(w.context_mask),
        "offsets": torch.tensor(w.offsets),
    }
    assert decode_answer([t], CONTEXT)[0] == "brown fox,"


def test_bad_shapes_and_offsets():
    w = _window(WORDS)
    with pytest.raises(GraFusionError, match="window 0"):
        nbest_spans([SpanWindow(w.start_logits[:-1], w.end_logits, w.context_mask, w.offsets)], CONTEXT)
    off = w.offsets.copy()
    off[P] = (0, len(CONTEXT) + 5)
    with pytest.raises(GraFusionError, match="offsets"):
        nbest_spans([SpanWindow(w.start_logits, w.end_logits, w.context_mask, off)], CONTEXT)
    with pytest.raises(GraFusionError):
        nbest_spans([w], CONTEXT, n_best_size=0)


# --- slow reference ---------------------------------------------------------------------------

def _slow_nbest(windows, context, n_best_size, max_answer_length):
    best = {}  # (char_start, char_end) -> (score, window, i, j)
    for k, (s, e, mask, off) in enumerate(windows):
        for i in range(len(s)):
            for j in range(len(s)):
                ok_i = mask[i] and off[i][0] >= 0 and off[i][1] >= 0
                ok_j = mask[j] and off[j][0] >= 0 and off[j][1] >= 0
                if not (ok_i and ok_j) or j < i or j - i + 1 > max_answer_length:
                    continue
                key = (int(off[i][0]), int(off[j][1]))
                cand = (float(s[i]) + float(e[j]), k, i, j)
                if key not in best or cand[0] > best[key][0]:
                    best[key] = cand
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[1][2], kv[1][3]))
    return [(context[a:b], sc, k, i, j) for (a, b), (sc, k, i, j) in ranked[:n_best_size]]


def _random_question(rng):
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 7))) for _ in range(rng.randint(1, 40))]
    context = ""
    pieces = []  # (char start, char end) of sub-word pieces
    for w in words:
        context += rng.choice([" ", "  ", ", "]) if context else ""
        start = len(context)
        context += w
        cut = start
        while cut < len(context):
            step = rng.randint(1, 3)
            pieces.append((cut, min(cut + step, len(context))))
            cut += step
    windows, length, stride = [], rng.randint(2, 25), rng.randint(1, 12)
    begin = 0
    while True:
        chunk = pieces[begin:begin + length]
        nq = rng.randint(0, 4)
        offsets = [(-1, -1)] * (nq + 1) + chunk + [(-1, -1)]
        mask = np.array([False] * (nq + 1) + [rng.random() > 0.1 for _ in chunk] + [False])
        n = len(offsets)
        windows.append(SpanWindow(np.round(rng_normal(rng, n), 3), np.round(rng_normal(rng, n), 3),
                                  mask, np.array(offsets)))
        if begin + length >= len(pieces):
            break
        begin += stride
    return context, windows


def rng_normal(rng, n):
    return np.array([rng.gauss(0, 2) for _ in range(n)])


def test_matches_slow_reference_on_random_logits():
    rng = random.Random(0)
    for _ in range(300):
        context, windows = _random_question(rng)
        n_best = rng.choice([1, 3, 20, 1000])
        max_len = rng.choice([1, 2, 5, 30])
        ours = nbest_spans(windows, context, n_best_size=n_best, max_answer_length=max_len)
        ref = _slow_nbest(windows, context, n_best, max_len)
        assert [(p.text, p.window, p.token_start, p.token_end) for p in ours] == [
            (t, k, i, j) for t, _, k, i, j in ref
        ]
        assert [p.score for p in ours] == pytest.approx([sc for _, sc, _, _, _ in ref])
        if ours:
            assert sum(p.probability for p in ours) == pytest.approx(1.0)


# --- the implementation before the banded rewrite, kept verbatim as the reference -------------
# (fairseq_grafusion/scoring/span_decoding.py at commit 93738a8: the full L x L grid of every
# window, a lexsort of all candidates and np.unique(axis=0) on the character spans)

def _numpy_before_band(x, dtype):
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _window_candidates_before_band(k, window, context_len, max_answer_length):
    if isinstance(window, dict):
        window = SpanWindow(**window)
    start, end, mask, offsets = window
    start = _numpy_before_band(start, np.float64)
    end = _numpy_before_band(end, np.float64)
    mask = _numpy_before_band(mask, bool)
    offsets = _numpy_before_band(offsets, np.int64)
    length = start.shape[0]
    usable = mask & (offsets[:, 0] >= 0) & (offsets[:, 1] >= 0)
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


def _nbest_spans_before_band(windows, context, n_best_size=20, max_answer_length=30):
    parts = [_window_candidates_before_band(k, w, len(context), max_answer_length)
             for k, w in enumerate(windows)]
    if not parts:
        return []
    cand = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if cand["window"].size == 0:
        return []
    score = cand["start_logit"] + cand["end_logit"]
    order = np.lexsort((cand["token_end"], cand["token_start"], cand["window"], -score))
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


def _logits(rng, n, kind):
    if kind == "int":  # few distinct values: many exact ties in score
        return np.array([float(rng.randint(-2, 2)) for _ in range(n)])
    if kind == "const":  # every span of a window ties
        return np.full(n, 1.5)
    return np.round(rng_normal(rng, n), rng.choice([1, 3, 8]))


def _question_with_windows(rng, kind):
    """A context cut into pieces and windows over them with overlapping (or, with ``copies``,
    identical) character spans, question tokens and holes in the context mask."""
    context, _ = _random_question(rng)
    pieces, cut = [], 0
    while cut < len(context):
        step = rng.randint(1, 4)
        pieces.append((cut, min(cut + step, len(context))))
        cut += step
    length, stride = rng.randint(1, 60), rng.randint(1, 30)
    copies = rng.choice([1, 1, 1, 6])  # each window repeated: every span found 6+ times
    windows, begin = [], 0
    while True:
        chunk = pieces[begin:begin + length]
        nq = rng.randint(0, 5)
        offsets = np.array([(-1, -1)] * (nq + 1) + chunk + [(-1, -1)])
        mask = np.array([False] * (nq + 1) + [rng.random() > 0.1 for _ in chunk] + [False])
        n = len(offsets)
        start, end = _logits(rng, n, kind), _logits(rng, n, kind)
        start[~mask] = rng.choice([0.0, -np.inf])  # padding / question positions
        for _ in range(copies):
            windows.append(SpanWindow(start, end, mask, offsets))
        if begin + length >= len(pieces):
            break
        begin += stride
    return context, windows


@pytest.mark.parametrize("kind", ["int", "float", "const"])
def test_same_output_as_the_implementation_before_the_band(kind):
    """Every field of every n-best entry, ties (integer and constant logits), overlapping and
    repeated windows included, equals the full-grid implementation's."""
    rng = random.Random(["int", "float", "const"].index(kind))
    for _ in range(400):
        context, windows = _question_with_windows(rng, kind)
        n_best = rng.choice([1, 2, 5, 20, 20, 100, 10_000])
        max_len = rng.choice([1, 3, 15, 30, 30, 10_000])
        new = nbest_spans(windows, context, n_best_size=n_best, max_answer_length=max_len)
        before = _nbest_spans_before_band(windows, context, n_best, max_len)
        assert new == before
    # torch inputs (what SpanScorer passes): float32 logits, bool mask, int offsets
    context, windows = _question_with_windows(rng, "int")
    as_torch = [SpanWindow(torch.tensor(s, dtype=torch.float32), torch.tensor(e, dtype=torch.float32),
                           torch.tensor(m), torch.tensor(o)) for s, e, m, o in windows]
    assert nbest_spans(as_torch, context) == _nbest_spans_before_band(as_torch, context)
