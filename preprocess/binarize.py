"""Stage ``binarize``: QA units -> windows -> :class:`fairseq_grafusion.data.PairWriter` split.

Each language stream is ``[<s> question </s></s> passage-window </s>]``.  The question and the
passage are each encoded once as raw text, as XLM-R reads them (:mod:`.encode`), so the question's
tokens are a prefix of ``spm.encode(question)`` and a window's tokens a contiguous slice of
``spm.encode(passage)``.  Word nodes are numbered 0..n-1 in stream order (``<s>``, question nodes,
the two ``</s>``, window nodes, the last ``</s>``); pipeline words that share their first piece
with the word before them join its node (:func:`.encode.word_nodes`), and the alignment and
dependency edges of the words stage are mapped to nodes.

Question tokens are cut at ``--max-query-len`` (at a node boundary; a first node longer than that
keeps its head).  Windows over the passage (:func:`.encode.token_windows`) hold at most
``--max-len`` tokens per stream; ``--doc-stride`` is the *step* between window starts
(BERT/XTREME), not HuggingFace's overlap.

Windows are made on the target passage (the language of the answer to predict); each is paired
with the source window that shares the most passage alignment links with it and, when the target
window holds the target answer, one that also holds the source answer (``--window-pairing
alignment``); ``--window-pairing position`` pairs them as FILTER's code does, the k-th target
window with the k-th source window (the last one when the source has fewer).  An answer maps to the
first and last token overlapping its characters; outside its window it points both ends to
position 0 (``<s>``).  Alignment edges link the special tokens of the two streams (``<s>``-``<s>``,
``</s>``-``</s>``) besides aligned nodes; dependency edges hold the question's and the window's
arcs and the window's same-word edges.

Per token, ``src.offsets`` / ``tgt.offsets`` hold ``[char_start, char_end]`` in the original
context (``-1 -1`` outside the passage), so a predicted token span maps back to the exact
substring of the context; a token's end leaves out the clause punctuation its piece glues to it
(``).`` ends after ``)``: :func:`.encode.answer_ends`), for gold answers and predictions alike.
"""
import os
import shutil

import numpy as np

from fairseq_grafusion.data.span_target import NO_ANSWER, SPAN_FIELD, has_answer, span_target
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import atomic_path

from .encode import answer_ends, char_span_to_tokens, remap_pairs, token_windows, word_nodes

_ENCODER = {}  # the encoder of this process: see use_encoder


def use_encoder(encoder):
    """The :class:`.encode.Encoder` that :func:`build_group` / :func:`.parallel.build_sentences`
    use in this process (forked workers inherit it: :func:`.units.build_examples`)."""
    _ENCODER["enc"] = encoder


def current_encoder():
    return _ENCODER["enc"]


class Encoded:
    """One side of a unit, encoded as raw text: tokens with character spans and their word nodes.

    ``word`` is the node of each token, ``node_of_word`` the node of each pipeline word of
    ``offsets`` (see :func:`.encode.word_nodes`), ``n_words`` the number of nodes, ``per_word``
    and ``cum`` their token counts and cumulative sums."""

    def __init__(self, enc, text, offsets, passage=False):
        self.text = text
        self.ids, self.starts, self.ends, word = enc.encode(text, offsets)
        if passage:  # where answers are: they end before the `.` `,` a piece glues on
            self.ends = answer_ends(text, self.starts, self.ends, word, offsets)
        self.word, self.node_of_word, self.n_words = word_nodes(word, len(offsets) // 2)
        self.per_word = np.bincount(self.word, minlength=self.n_words)
        self.cum = np.concatenate([[0], np.cumsum(self.per_word)])

    def arcs(self, *flat_lists):
        """Dependency / same-word arcs (flat word pairs) as node pairs, arcs inside a node dropped."""
        pairs = np.concatenate([as_pairs(f) for f in flat_lists]) if flat_lists else np.zeros((0, 2))
        return remap_pairs(pairs, self.node_of_word, drop_loops=True)


def as_pairs(flat):
    """Flat ``[a0, b0, a1, b1, ...]`` -> an (E, 2) int64 array."""
    return np.asarray(flat, dtype=np.int64).reshape(-1, 2)


def node_links(flat, src, tgt):
    """Alignment links (flat source word, target word pairs) as node pairs of two :class:`Encoded`."""
    return remap_pairs(as_pairs(flat), src.node_of_word, tgt.node_of_word)


def _question(enc_q, arcs, max_query_len):
    """Kept question nodes / tokens and arcs after the ``max_query_len`` cut."""
    n_words = int(np.searchsorted(enc_q.cum, max_query_len, side="right")) - 1
    n_tok = int(enc_q.cum[n_words])
    if n_words == 0 and enc_q.n_words:  # a first node longer than the limit: keep its head
        n_words, n_tok = 1, max_query_len
    arcs = arcs[(arcs < n_words).all(axis=1)] if len(arcs) else arcs
    return n_words, n_tok, arcs


def _node_range(p, t0, t1):
    """Nodes ``[a, b)`` touched by the passage tokens ``[t0, t1)``."""
    if t1 <= t0:
        return 0, 0
    return int(p.word[t0]), int(p.word[t1 - 1]) + 1


def _stream(enc, q, p, q_words, q_tok, q_arcs, win, p_arcs):
    """Fields of one stream and the helpers to place passage nodes / tokens in it."""
    t0, t1 = win
    a, b = _node_range(p, t0, t1)
    nq = q_words
    first_p = nq + 3  # node of the first window node
    n_nodes = first_p + (b - a) + 1
    p_pos = 1 + q_tok + 2  # stream position of the window's first token
    length = p_pos + (t1 - t0) + 1
    tok = np.empty(length, dtype=np.int64)
    tok[0], tok[1:1 + q_tok], tok[1 + q_tok:p_pos] = enc.bos, q.ids[:q_tok], enc.eos
    tok[p_pos:-1], tok[-1] = p.ids[t0:t1], enc.eos
    word = np.empty(length, dtype=np.int64)
    word[0], word[1:1 + q_tok] = 0, q.word[:q_tok] + 1
    word[1 + q_tok], word[2 + q_tok] = nq + 1, nq + 2
    word[p_pos:-1], word[-1] = p.word[t0:t1] + (first_p - a), n_nodes - 1
    offsets = np.full((length, 2), -1, dtype=np.int64)
    offsets[p_pos:-1, 0] = p.starts[t0:t1]
    offsets[p_pos:-1, 1] = p.ends[t0:t1]
    inside = ((p_arcs >= a) & (p_arcs < b)).all(axis=1)
    dep = np.concatenate([q_arcs + 1, p_arcs[inside] + (first_p - a)])
    return {"tok": tok, "word": word, "offsets": offsets, "dep": dep, "win": (a, b),
            "t0": t0, "t1": t1, "p_pos": p_pos, "first_p": first_p, "nq": nq, "last": n_nodes - 1}


def _windows(p, budget, doc_stride, cache):
    """Token windows of the passage ``p`` for a question that leaves ``budget`` tokens."""
    key = (id(p), budget)
    if key not in cache:
        cache[key] = token_windows(p.per_word, budget, min(doc_stride, budget))
    return cache[key]


def _answer_tokens(p, answer):
    if answer is None:
        return None
    return char_span_to_tokens(p.starts, p.ends, answer["answer_start"],
                               answer["answer_start"] + len(answer["text"]))


def _span_in(stream, tokens):
    """Stream positions of passage tokens ``(first, last)``, :data:`NO_ANSWER` if not in the window."""
    if tokens is None:
        return NO_ANSWER
    first, last = tokens
    if stream["t0"] <= first <= last < stream["t1"]:
        off = stream["p_pos"] - stream["t0"]
        return first + off, last + off
    return NO_ANSWER


def _pick_source_window(src_nodes, src_tokens, tgt_nodes, p_links, src_ans, tgt_has_answer):
    """Index of the source window paired with the target window of nodes ``tgt_nodes`` (most
    shared links; among the windows holding the source answer tokens if it holds the target one)."""
    a, b = tgt_nodes
    if len(p_links):
        on_t = (p_links[:, 1] >= a) & (p_links[:, 1] < b)
        src_w = p_links[on_t, 0]
        counts = np.array([((src_w >= x) & (src_w < y)).sum() for x, y in src_nodes])
    else:
        counts = np.zeros(len(src_nodes), dtype=np.int64)
    if tgt_has_answer and src_ans is not None:
        holds = np.array([x <= src_ans[0] and src_ans[1] < y for x, y in src_tokens])
        if holds.any():
            counts = np.where(holds, counts, -1)
    return int(np.argmax(counts))


def _count(stats, key, n=1):
    stats[key] = stats.get(key, 0) + n


def build_group(task):
    """Examples of one passage group: ``task = (passage, [(question unit, words, align, parse)])``."""
    enc = current_encoder()
    (p_unit, p_words, p_align, p_parse), questions, opts = task
    out, stats = [], {}
    p = {side: Encoded(enc, p_unit.text(side), p_words[side], passage=True) for side in ("src", "tgt")}
    p_arcs = {side: p[side].arcs(p_parse[side], p_parse.get(side + "_same", [])) for side in p}
    p_links = node_links(p_align["links"], p["src"], p["tgt"])
    window_cache = {}
    by_position = opts.get("window_pairing", "alignment") == "position"  # else by alignment links
    for q_unit, q_words, q_align, q_parse in questions:
        if q_align.get("dropped"):
            _count(stats, "dropped: " + q_align["dropped"])
            continue
        answers = q_align.get("answers") or {}
        q = {side: Encoded(enc, q_unit.text(side), q_words[side]) for side in ("src", "tgt")}
        cut = {side: _question(q[side], q[side].arcs(q_parse[side]), opts["max_query_len"]) for side in q}
        budget = {side: opts["max_len"] - cut[side][1] - 4 for side in q}
        if min(budget.values()) < 1:
            raise GraFusionError(f"--max-len {opts['max_len']} leaves no room for the passage of "
                                 f"question {q_unit.uid!r}")
        wins = {side: _windows(p[side], budget[side], opts["doc_stride"], window_cache) for side in q}
        src_nodes = [_node_range(p["src"], *w) for w in wins["src"]]
        ans_tok = {side: _answer_tokens(p[side], answers.get(side)) for side in q}
        if any(ans_tok[s] is not None and ans_tok[s][0] > ans_tok[s][1] for s in q):
            _count(stats, "dropped: answer covers no token")
            continue
        q_links = node_links(q_align["links"], q["src"], q["tgt"])
        _count(stats, "windows per question > 1", len(wins["tgt"]) > 1)
        for i, tw in enumerate(wins["tgt"]):
            tgt_has = ans_tok["tgt"] is not None and tw[0] <= ans_tok["tgt"][0] and ans_tok["tgt"][1] < tw[1]
            if by_position:  # FILTER's code: the i-th with the i-th, or the last source window
                k = min(i, len(wins["src"]) - 1)
            else:
                k = _pick_source_window(src_nodes, wins["src"], _node_range(p["tgt"], *tw), p_links,
                                        ans_tok["src"], tgt_has)
            st = {side: _stream(enc, q[side], p[side], cut[side][0], cut[side][1], cut[side][2], w,
                                p_arcs[side]) for side, w in (("src", wins["src"][k]), ("tgt", tw))}
            S, T = st["src"], st["tgt"]
            ql = q_links[(q_links[:, 0] < S["nq"]) & (q_links[:, 1] < T["nq"])] + 1
            (sa, sb), (ta, tb) = S["win"], T["win"]
            keep = ((p_links[:, 0] >= sa) & (p_links[:, 0] < sb) & (p_links[:, 1] >= ta) & (p_links[:, 1] < tb))
            pl = p_links[keep] - np.array([sa, ta]) + np.array([S["first_p"], T["first_p"]])
            special = np.array([[0, 0], [S["nq"] + 1, T["nq"] + 1], [S["nq"] + 2, T["nq"] + 2],
                                [S["last"], T["last"]]])
            align = np.concatenate([special, ql, pl])
            span = span_target(_span_in(S, ans_tok["src"]), _span_in(T, ans_tok["tgt"]))
            out.append((q_unit.uid, {
                "src_tok": S["tok"], "tgt_tok": T["tok"], "src_word": S["word"], "tgt_word": T["word"],
                "align": align.reshape(-1), "src_dep": S["dep"].reshape(-1), "tgt_dep": T["dep"].reshape(-1),
                SPAN_FIELD: span, "src.offsets": S["offsets"].reshape(-1),
                "tgt.offsets": T["offsets"].reshape(-1)}))
            if ans_tok["tgt"] is not None:
                _count(stats, "windows with the target answer" if has_answer(span, "tgt")
                       else "windows without the target answer")
    return out, stats


def copy_dictionary(dict_path, out_dir):
    """The task reads ``DATA/dict.txt``: copy the dictionary next to the splits."""
    target = os.path.join(out_dir, "dict.txt")
    if os.path.abspath(dict_path) != os.path.abspath(target):
        with atomic_path(target) as tmp:
            shutil.copyfile(dict_path, tmp)
