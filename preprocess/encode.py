"""SentencePiece + fairseq dictionary encoding, word nodes, windows and character -> token mapping.

XLM-R reads the SentencePiece pieces of the raw text, so each question and each passage is encoded
**once, as raw text** (:meth:`Encoder.encode`): the token ids are exactly
``dictionary[spm.encode(text)]``, normalisation (XLM-R's ``nmt_nfkc``) included.  Words are never
encoded one by one (that would put a ``▁`` before every split-off mark and every Han character).

Each token keeps the character span of its surface in the *original* text: SentencePiece's offset
mapping (character offsets into the input, through the normaliser's alignment), with the
whitespace that the leading ``▁`` of a piece stands for stripped (through
``SentencePieceProcessor.normalize(..., with_offsets=True)``), so a lone ``▁`` piece has no width
and sits at the next character.  A piece of a character that NFKC expands (``ﬁ`` -> ``f`` ``i``)
that does not reach the character's end has no width either (SentencePiece's own convention); an
answer span maps to tokens exactly (:func:`char_span_to_tokens`) and a token span back to the
exact substring of the context.

**Tokens and pipeline words** (ours; the paper's nodes are words but XLM-R's pieces ignore our word
boundaries):

* a token belongs to the word holding its first non-space character (for a width-less token: the
  character it sits at), or, if no word holds that character, to the last word starting before it;
* a word node is a maximal run of pipeline words of which only the first holds a token's first
  character: a word that shares its first piece with the word before it (``,`` in ``▁Hello,``;
  ``京`` in ``▁北京``) joins that word's node (:func:`word_nodes`).  So every node has at least one
  token, the token-to-node map is non-decreasing, and alignment / dependency edges of merged words
  are mapped to their node (an edge inside one node disappears, as inside a multi-word token);
* for answers, a token ends before the trailing clause punctuation (``.`` ``,`` ``،`` ``。`` ...)
  that its piece glues to its first word (``).`` gives ``)``: :func:`answer_ends`), so an answer is
  reproducible when its start is a piece start and its end a piece end or such a cut.
"""
import numpy as np

from fairseq_grafusion.errors import GraFusionError

_META = "\u2581"  # SentencePiece's whitespace symbol


class Encoder:
    """A SentencePiece model and the fairseq dictionary that numbers its pieces."""

    def __init__(self, spm_path, dict_path):
        import sentencepiece as spm
        from fairseq.data import Dictionary

        try:
            self.sp = spm.SentencePieceProcessor(model_file=spm_path)
        except (OSError, RuntimeError, TypeError) as e:
            raise GraFusionError(f"{spm_path}: cannot load the SentencePiece model "
                                 f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        try:
            self.dictionary = Dictionary.load(dict_path)
        except (OSError, ValueError, RuntimeError) as e:
            raise GraFusionError(f"{dict_path}: cannot load the fairseq dictionary ({e})") from None
        d = self.dictionary
        pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self.spm_to_dict = np.array([d.index(p) for p in pieces], dtype=np.int64)
        # pieces that open with the whitespace symbol (the unknown piece never does)
        self.meta_initial = np.array([p.startswith(_META) and not self.sp.is_unknown(i)
                                      for i, p in enumerate(pieces)], dtype=bool)
        self.bos, self.eos, self.unk = d.bos(), d.eos(), d.unk()
        self.spm_path, self.dict_path = spm_path, dict_path

    @property
    def vocab_size(self):
        """Token ids stay below this (the task appends ``<mask>``)."""
        return len(self.dictionary) + 1

    def encode_text(self, text):
        """Tokens of the raw ``text``: ``(ids, starts, ends)``, int64 arrays of dictionary ids and
        character spans in ``text`` (see the module docstring), as XLM-R's ``spm.encode(text)``."""
        if not text:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        enc = self.sp.encode(text, return_type="offset_mapping")
        spm_ids = np.asarray(enc["ids"], dtype=np.int64)
        spans = np.asarray(enc["offsets"], dtype=np.int64).reshape(-1, 2)
        starts, ends = spans[:, 0].copy(), spans[:, 1]
        if len(spm_ids):
            meta = self.meta_initial[spm_ids]
            if meta.any():
                starts[meta] = self._content_starts(text, enc["pieces"], meta, spans)
        return self.spm_to_dict[spm_ids], np.clip(starts, spans[:, 0], ends), ends

    def _content_starts(self, text, pieces, meta, spans):
        """Original position of the first character after the leading ``▁`` of the ``meta``
        pieces (the end of a lone ``▁``), through the normaliser's character alignment."""
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        if "".join(pieces).replace(_META, " ").strip() == " ".join(text.split()):
            # the pieces spell the text up to whitespace (nothing else normalised): a piece's
            # characters after its "▁" are the last ones of its span
            return spans[meta, 1] - (lengths[meta] - 1)
        normalized, alignment = self.sp.normalize(text, with_offsets=True)
        if int(lengths.sum()) != len(normalized):  # pieces that do not spell the normalised text
            return np.array([_first_non_space(text, s, e) for s, e in spans[meta]], dtype=np.int64)
        alignment = np.asarray(alignment, dtype=np.int64)
        first = np.cumsum(lengths) - lengths  # normalised position of each piece
        lone = lengths[meta] == 1
        return np.where(lone, spans[meta, 1], alignment[np.minimum(first[meta] + 1, len(normalized))])

    def encode(self, text, offsets):
        """Tokens of ``text`` (encoded once, as raw text) and the pipeline word of each.

        ``offsets`` is the flat ``[s0, e0, ...]`` list of the words.  Returns ``(ids, starts, ends,
        word)``: int64 arrays per token of dictionary ids, character start / end in ``text`` and
        the index of the word holding the token's first character (non-decreasing; a word may
        hold no token: see :func:`word_nodes`).
        """
        ids, starts, ends = self.encode_text(text)
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        if len(spans) == 0:
            word = np.full(len(ids), -1, dtype=np.int64) if len(ids) else np.zeros(0, dtype=np.int64)
            return ids, starts, ends, word
        word = np.maximum(np.searchsorted(spans[:, 0], starts, side="right") - 1, 0)
        return ids, starts, ends, word

    def decode(self, ids):
        """Text of dictionary ids (for checks): pieces joined, ``▁`` turned into spaces."""
        pieces = [self.dictionary[i] for i in ids]
        return "".join(pieces).replace(_META, " ").strip()


def _first_non_space(text, start, end):
    """Fallback of :meth:`Encoder._content_starts` (byte-fallback pieces): skip whitespace."""
    k = start
    while k < end and (text[k].isspace() or text[k] in "\u200b\ufeff"):
        k += 1
    return k


# Clause and sentence punctuation (ASCII, Arabic, CJK, Indic, Ethiopic, Armenian, Myanmar, Khmer):
# what :func:`answer_ends` cuts off a token's end.  Brackets, quotes, ``%`` and the like are kept.
CLAUSE_PUNCTUATION = ".,;:!?\u2026\u060c\u061b\u061f\u06d4\u3001\u3002\uff0c\uff1b\uff1a\uff01\uff1f" \
    "\uff0e\uff61\uff64\u0964\u0965\u1361\u1362\u1363\u1364\u0589\u104a\u104b\u17d4\u17d5"
_IS_CLAUSE = np.zeros(0x10000, dtype=bool)  # by code point (all of them are in the BMP)
_IS_CLAUSE[[ord(c) for c in CLAUSE_PUNCTUATION]] = True


def answer_ends(text, starts, ends, word, offsets):
    """Token ends for answers: a token whose characters run over several pipeline words ends,
    for answers, before its trailing words made only of :data:`CLAUSE_PUNCTUATION`.

    XLM-R's pieces glue such marks to what precedes them (``).`` ``),`` ``136,``), so without this
    an answer ending in ``)`` or ``136`` could not be reproduced from tokens: the token span would
    give ``(ARTS),``.  The word holding the token's first character (``word``, as
    :meth:`Encoder.encode` gives it) is never cut, and the token ids are unchanged.  ``offsets``
    is the flat ``[s0, e0, ...]`` list of the words.  The cost: a gold answer that itself ends
    in such a glued mark (``T-Lymphozyten),``) is reproduced without it.
    """
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    if len(ends) == 0 or len(spans) < 2:
        return ends
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    other = np.zeros(len(codes) + 1, dtype=np.int64)  # characters other than clause marks before
    np.cumsum(~_IS_CLAUSE[np.minimum(codes, 0xFFFF)], out=other[1:])
    w_start, w_end = spans[:, 0], spans[:, 1]
    clause_word = (w_end > w_start) & (other[w_end] == other[w_start])
    at = np.arange(len(spans))
    last_other = np.maximum.accumulate(np.where(clause_word, -1, at))  # last other word <= each
    last = np.searchsorted(w_end, ends, side="right") - 1  # last word ending by the token's end
    safe = np.maximum(last, 0)
    cut_from = np.maximum(last_other[safe] + 1, word + 1)  # first trailing clause word to cut
    keep_end = w_end[np.maximum(cut_from - 1, 0)]
    cut = (last > word) & (w_end[safe] == ends) & (cut_from <= last) & (keep_end > starts)
    return np.where(cut, keep_end, ends)


def word_nodes(word, n_words):
    """Word nodes of a text from the word of each token (:meth:`Encoder.encode`).

    Returns ``(node, node_of_word, n_nodes)``: the node of each token, the node of each pipeline
    word (a word holding no token's first character joins the node before it, or the first node;
    ``-1`` for every word when the text has no token) and the number of nodes.  Every node holds
    at least one token; tokens of a text without words (``word == -1``) form one node.
    """
    word = np.asarray(word, dtype=np.int64)
    if len(word) == 0:
        return word, np.full(n_words, -1, dtype=np.int64), 0
    if n_words == 0:  # tokens but no words (a segmenter that skipped the text): one node
        return np.zeros(len(word), dtype=np.int64), np.zeros(0, dtype=np.int64), 1
    holds = np.zeros(n_words, dtype=bool)
    holds[word] = True
    rank = np.cumsum(holds) - 1
    return rank[word], np.maximum(rank, 0), int(holds.sum())


def remap_pairs(pairs, first_map, second_map=None, drop_loops=False):
    """Word-index pairs ``(n, 2)`` mapped to node pairs: duplicates and pairs touching a word
    without a node removed, and with ``drop_loops`` pairs inside one node (dependency arcs)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    second_map = first_map if second_map is None else second_map
    if len(pairs) == 0 or len(first_map) == 0 or len(second_map) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    first, second = first_map[pairs[:, 0]], second_map[pairs[:, 1]]  # IndexError if out of range
    keep = (first >= 0) & (second >= 0)
    if drop_loops:
        keep &= first != second
    key = first[keep] * (len(second_map) + 1) + second[keep]
    _, at = np.unique(key, return_index=True)
    at.sort()  # first occurrences, in the original order
    return np.stack([first[keep][at], second[keep][at]], axis=1)


# Window sizes, declared once (the pipeline, grafusion-predict and the hub refer to these names):
# HuggingFace's and XTREME's max_seq_length 384 and doc_stride 128 (ours is the step between window
# starts, as in BERT and XTREME), and BERT's max_query_length 64
MAX_LEN = 384  # tokens per language stream
DOC_STRIDE = 128  # tokens between window starts
MAX_QUERY_LEN = 64  # question tokens kept
# how a target window gets its source window: the one sharing the most alignment links (ours), or
# the one at the same position (FILTER's code)
WINDOW_PAIRINGS = ("alignment", "position")


def windows(tokens_per_word, budget, stride):
    """Word ranges ``[a, b)`` of a passage, each with at most ``budget`` tokens.

    Windows start ``stride`` tokens apart (the step between window starts, as in BERT's and
    XTREME's ``doc_stride``; not HuggingFace's overlap), snapped forward to the next word start,
    and overlap so that every word is in some window.  A single word longer than the budget
    gets a window of its own (:func:`token_windows` cuts it).
    """
    n = len(tokens_per_word)
    if n == 0:
        return [(0, 0)]
    cum = np.concatenate([[0], np.cumsum(tokens_per_word)])
    out, a = [], 0
    while True:
        b = max(int(np.searchsorted(cum, cum[a] + budget, side="right")) - 1, a + 1)
        out.append((a, b))
        if b >= n:
            return out
        nxt = int(np.searchsorted(cum, cum[a] + stride, side="left"))
        a = min(max(nxt, a + 1), b)


def token_windows(tokens_per_word, budget, stride):
    """Windows of a passage as contiguous token ranges ``(t0, t1)``, each at most ``budget`` long.

    The word windows of :func:`windows` (``stride`` = step between window starts, snapped to word
    starts); a word longer than the budget is cut into windows starting ``stride`` tokens apart
    inside it, the last one ending at the word's end (as BERT cuts a passage), so every token is
    in some window.
    """
    cum = np.concatenate([[0], np.cumsum(tokens_per_word)]).astype(np.int64)
    out = []
    for a, b in windows(tokens_per_word, budget, stride):
        t0, t1 = int(cum[a]), int(cum[b])
        while t1 - t0 > budget:
            out.append((t0, t0 + budget))
            t0 += stride
        out.append((t0, t1))
    return out


def char_span_to_tokens(starts, ends, char_start, char_end):
    """First and last token overlapping ``[char_start, char_end)`` (token spans sorted).

    A width-less token at either edge is left out (it belongs to no character of the span)."""
    first = int(np.searchsorted(ends, char_start, side="right"))
    last = int(np.searchsorted(starts, char_end, side="left")) - 1
    return first, last
