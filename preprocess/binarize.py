"""Stage ``binarize``: QA units -> windows -> :class:`fairseq_grafusion.data.PairWriter` split.

Each language stream is ``[<s> question </s></s> passage-window </s>]``; word nodes are numbered
0..n-1 in that order (``<s>``, question words, the two ``</s>``, window words, the last ``</s>``).
Question tokens are cut at ``--max-query-len`` (at a word boundary).  Windows over the passage
(see :func:`.encode.windows`) hold at most ``--max-len`` tokens per stream; ``--doc-stride`` is
the *step* between window starts (BERT/XTREME), not HuggingFace's overlap.

Windows are made on the target passage (the language of the answer to predict); each is paired
with the source window that shares the most passage alignment links with it and, when the target
window holds the target answer, one that also holds the source answer.  An answer outside its
window points both ends to position 0 (``<s>``).  Alignment edges link the special tokens of the
two streams (``<s>``-``<s>``, ``</s>``-``</s>``) besides aligned words; dependency edges hold
the question's and the window's arcs and the window's same-word edges.

Per token, ``src.offsets`` / ``tgt.offsets`` hold ``[char_start, char_end]`` in the original
context (``-1 -1`` outside the passage), so a predicted token span maps back to the exact
substring of the context.
"""
import os
import shutil

import numpy as np

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import atomic_path

from .encode import char_span_to_tokens, windows

_ENCODER = {}  # the encoder of this process: see use_encoder


def use_encoder(encoder):
    """The :class:`.encode.Encoder` that :func:`build_group` / :func:`.parallel.build_sentences`
    use in this process (forked workers inherit it: :func:`.units.build_examples`)."""
    _ENCODER["enc"] = encoder


def current_encoder():
    return _ENCODER["enc"]


class Encoded:
    """One side of a unit, encoded: tokens with character spans and their words."""

    def __init__(self, enc, text, offsets):
        self.text = text
        self.n_words = len(offsets) // 2
        self.ids, self.starts, self.ends, self.word = enc.encode(text, offsets)
        self.per_word = np.bincount(self.word, minlength=self.n_words)
        self.cum = np.concatenate([[0], np.cumsum(self.per_word)])


def as_pairs(flat):
    """Flat ``[a0, b0, a1, b1, ...]`` -> an (E, 2) int64 array."""
    return np.asarray(flat, dtype=np.int64).reshape(-1, 2)


def _question(enc_q, arcs, max_query_len):
    """Kept question words / tokens and arcs after the ``max_query_len`` cut."""
    n_words = int(np.searchsorted(enc_q.cum, max_query_len, side="right")) - 1
    n_tok = int(enc_q.cum[n_words])
    if n_words == 0 and enc_q.n_words:  # a first word longer than the limit: keep its head
        n_words, n_tok = 1, max_query_len
    arcs = arcs[(arcs < n_words).all(axis=1)] if len(arcs) else arcs
    return n_words, n_tok, arcs


def _stream(enc, q, p, q_words, q_tok, q_arcs, win, p_arcs):
    """Fields of one stream and the helpers to place passage words / tokens in it."""
    a, b = win
    t0, t1 = int(p.cum[a]), int(p.cum[b])
    nq = q_words
    first_p = nq + 3  # node of the first window word
    n_nodes = first_p + (b - a) + 1
    tok = np.concatenate([[enc.bos], q.ids[:q_tok], [enc.eos, enc.eos], p.ids[t0:t1], [enc.eos]])
    word = np.concatenate([[0], q.word[:q_tok] + 1, [nq + 1, nq + 2],
                           p.word[t0:t1] - a + first_p, [n_nodes - 1]])
    offsets = np.full((len(tok), 2), -1, dtype=np.int64)
    p_pos = 1 + q_tok + 2  # stream position of the window's first token
    offsets[p_pos:p_pos + t1 - t0, 0] = p.starts[t0:t1]
    offsets[p_pos:p_pos + t1 - t0, 1] = p.ends[t0:t1]
    inside = ((p_arcs >= a) & (p_arcs < b)).all(axis=1) if len(p_arcs) else np.zeros(0, bool)
    dep = np.concatenate([q_arcs + 1, p_arcs[inside] - a + first_p]).reshape(-1, 2)
    return {"tok": tok, "word": word, "offsets": offsets, "dep": dep, "win": (a, b),
            "t0": t0, "t1": t1, "p_pos": p_pos, "first_p": first_p, "nq": nq, "last": n_nodes - 1}


def _answer_tokens(p, answer):
    if answer is None:
        return None
    return char_span_to_tokens(p.starts, p.ends, answer["answer_start"],
                               answer["answer_start"] + len(answer["text"]))


def _span_in(stream, tokens):
    """Stream positions of passage tokens ``(first, last)`` or ``(0, 0)`` if not in the window."""
    if tokens is None:
        return 0, 0
    first, last = tokens
    if stream["t0"] <= first <= last < stream["t1"]:
        off = stream["p_pos"] - stream["t0"]
        return first + off, last + off
    return 0, 0


def _pick_source_window(src_wins, tgt_win, p_links, src_ans_words, tgt_has_answer):
    """Index of the source window paired with ``tgt_win`` (most shared links, answer first)."""
    a, b = tgt_win
    if len(p_links):
        on_t = (p_links[:, 1] >= a) & (p_links[:, 1] < b)
        src_w = p_links[on_t, 0]
        counts = np.array([((src_w >= x) & (src_w < y)).sum() for x, y in src_wins])
    else:
        counts = np.zeros(len(src_wins), dtype=np.int64)
    if tgt_has_answer and src_ans_words is not None:
        holds = np.array([x <= src_ans_words[0] and src_ans_words[1] < y for x, y in src_wins])
        if holds.any():
            counts = np.where(holds, counts, -1)
    return int(np.argmax(counts))


def build_group(task):
    """Examples of one passage group: ``task = (passage, [(question unit, words, align, parse)])``."""
    enc = _ENCODER["enc"]
    (p_unit, p_words, p_align, p_parse), questions, opts = task
    out, stats = [], {}
    p = {side: Encoded(enc, p_unit[side], p_words[side]) for side in ("src", "tgt")}
    p_arcs = {side: np.concatenate([as_pairs(p_parse[side]), as_pairs(p_parse.get(side + "_same", []))])
              for side in ("src", "tgt")}
    p_links = as_pairs(p_align["links"])
    for q_unit, q_words, q_align, q_parse in questions:
        if q_align.get("dropped"):
            stats["dropped: " + q_align["dropped"]] = stats.get("dropped: " + q_align["dropped"], 0) + 1
            continue
        answers = q_align.get("answers") or {}
        q = {side: Encoded(enc, q_unit[side], q_words[side]) for side in ("src", "tgt")}
        cut = {side: _question(q[side], as_pairs(q_parse[side]), opts["max_query_len"]) for side in q}
        budget = {side: opts["max_len"] - cut[side][1] - 4 for side in q}
        if min(budget.values()) < 1:
            raise GraFusionError(f"--max-len {opts['max_len']} leaves no room for the passage of "
                                 f"question {q_unit['uid']!r}")
        wins = {side: windows(p[side].per_word, budget[side], min(opts["doc_stride"], budget[side]))
                for side in q}
        ans_tok = {side: _answer_tokens(p[side], answers.get(side)) for side in q}
        src_ans_words = None
        if ans_tok["src"] is not None and ans_tok["src"][0] <= ans_tok["src"][1]:
            src_ans_words = (int(p["src"].word[ans_tok["src"][0]]), int(p["src"].word[ans_tok["src"][1]]))
        if any(ans_tok[s] is not None and ans_tok[s][0] > ans_tok[s][1] for s in q):
            stats["dropped: answer covers no token"] = stats.get("dropped: answer covers no token", 0) + 1
            continue
        q_links = as_pairs(q_align["links"])
        stats["windows per question > 1"] = stats.get("windows per question > 1", 0) + (len(wins["tgt"]) > 1)
        for tw in wins["tgt"]:
            tgt_has = ans_tok["tgt"] is not None and tw[0] <= p["tgt"].word[ans_tok["tgt"][0]] and \
                p["tgt"].word[ans_tok["tgt"][1]] < tw[1]
            sw = wins["src"][_pick_source_window(wins["src"], tw, p_links, src_ans_words, tgt_has)]
            st = {side: _stream(enc, q[side], p[side], cut[side][0], cut[side][1], cut[side][2], w,
                                p_arcs[side]) for side, w in (("src", sw), ("tgt", tw))}
            S, T = st["src"], st["tgt"]
            ql = q_links[(q_links[:, 0] < S["nq"]) & (q_links[:, 1] < T["nq"])] + 1 if len(q_links) else q_links
            if len(p_links):
                keep = ((p_links[:, 0] >= sw[0]) & (p_links[:, 0] < sw[1])
                        & (p_links[:, 1] >= tw[0]) & (p_links[:, 1] < tw[1]))
                pl = p_links[keep] - np.array([sw[0], tw[0]]) + np.array([S["first_p"], T["first_p"]])
            else:
                pl = p_links
            special = np.array([[0, 0], [S["nq"] + 1, T["nq"] + 1], [S["nq"] + 2, T["nq"] + 2],
                                [S["last"], T["last"]]])
            align = np.concatenate([special, ql.reshape(-1, 2), pl.reshape(-1, 2)])
            span = _span_in(S, ans_tok["src"]) + _span_in(T, ans_tok["tgt"])
            out.append((q_unit["uid"], {
                "src_tok": S["tok"], "tgt_tok": T["tok"], "src_word": S["word"], "tgt_word": T["word"],
                "align": align.reshape(-1), "src_dep": S["dep"].reshape(-1), "tgt_dep": T["dep"].reshape(-1),
                "span": np.array(span), "src.offsets": S["offsets"].reshape(-1),
                "tgt.offsets": T["offsets"].reshape(-1)}))
            if ans_tok["tgt"] is not None:
                stats["windows with the target answer" if span[2] else "windows without the target answer"] = \
                    stats.get("windows with the target answer" if span[2] else "windows without the target answer", 0) + 1
    return out, stats


def copy_dictionary(dict_path, out_dir):
    """The task reads ``DATA/dict.txt``: copy the dictionary next to the splits."""
    target = os.path.join(out_dir, "dict.txt")
    if os.path.abspath(dict_path) != os.path.abspath(target):
        with atomic_path(target) as tmp:
            shutil.copyfile(dict_path, tmp)
