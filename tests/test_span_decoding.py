"""Span decoding on hand-built logits, and against a slow loop-based reference on random ones."""
import math
import random

import numpy as np
import pytest
import torch

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.scoring.span_decoding import SpanWindow, decode_answer, nbest_spans

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
