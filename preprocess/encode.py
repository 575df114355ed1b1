"""SentencePiece + fairseq dictionary encoding, windows and character -> token mapping.

Words are encoded one by one (as XLM-R is fed pre-tokenised text), so every token belongs to
exactly one word: the token-to-word map is ``np.repeat(word, tokens_per_word)`` and every word
has at least one token (a word SentencePiece encodes to nothing gets ``<unk>``).  Each token keeps
the character span of its surface in the original text (SentencePiece's byte offsets converted
to characters; the ``▁`` of a word-initial piece has no width), so an answer span can be mapped
to tokens exactly and a predicted token span back to the exact substring of the context.
"""
import numpy as np

from fairseq_grafusion.errors import GraFusionError


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
        self.spm_to_dict = np.array([d.index(self.sp.id_to_piece(i))
                                     for i in range(self.sp.get_piece_size())], dtype=np.int64)
        self.bos, self.eos, self.unk = d.bos(), d.eos(), d.unk()
        self.spm_path, self.dict_path = spm_path, dict_path

    @property
    def vocab_size(self):
        """Token ids stay below this (the task appends ``<mask>``)."""
        return len(self.dictionary) + 1

    def encode(self, text, offsets):
        """Tokens of the words ``offsets`` (flat ``[s0, e0, ...]``) of ``text``.

        Returns ``(ids, starts, ends, word)``: int64 arrays per token of dictionary ids,
        character start / end in ``text`` and the index of the token's word.
        """
        n = len(offsets) // 2
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, empty
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        words = [text[s:e] for s, e in spans]
        protos = self.sp.encode(words, return_type="proto")
        ids, begins, ends, counts = [], [], [], np.zeros(n, dtype=np.int64)
        for k, (proto, word) in enumerate(zip(protos, words)):
            pieces = proto.pieces
            if len(pieces) == 0:
                ids.append(-1)
                begins.append(0)
                ends.append(len(word.encode("utf-8")))
                counts[k] = 1
                continue
            counts[k] = len(pieces)
            for p in pieces:
                ids.append(p.id)
                begins.append(p.begin)
                ends.append(p.end)
        ids = np.asarray(ids, dtype=np.int64)
        word = np.repeat(np.arange(n), counts)
        tok = np.where(ids >= 0, self.spm_to_dict[np.maximum(ids, 0)], self.unk)
        starts = spans[word, 0] + _bytes_to_chars(words, word, np.asarray(begins, dtype=np.int64))
        stops = spans[word, 0] + _bytes_to_chars(words, word, np.asarray(ends, dtype=np.int64))
        return tok, starts, stops, word

    def decode(self, ids):
        """Text of dictionary ids (for checks): pieces joined, ``▁`` turned into spaces."""
        pieces = [self.dictionary[i] for i in ids]
        return "".join(pieces).replace("\u2581", " ").strip()


def _bytes_to_chars(words, word_of_token, byte_offsets):
    """Convert byte offsets inside each token's word to character offsets."""
    out = byte_offsets.copy()
    for k in np.unique(word_of_token):
        w = words[k]
        if w.isascii():
            continue
        sel = word_of_token == k
        char_end_bytes = np.cumsum([len(c.encode("utf-8")) for c in w])
        out[sel] = np.searchsorted(char_end_bytes, byte_offsets[sel], side="right")
    return out


# Window sizes, declared once (the pipeline, grafusion-predict and the hub refer to these names):
# HuggingFace's and XTREME's max_seq_length 384 and doc_stride 128 (ours is the step between window
# starts, as in BERT and XTREME), and BERT's max_query_length 64
MAX_LEN = 384  # tokens per language stream
DOC_STRIDE = 128  # tokens between window starts
MAX_QUERY_LEN = 64  # question tokens kept


def windows(tokens_per_word, budget, stride):
    """Word ranges ``[a, b)`` of a passage, each with at most ``budget`` tokens.

    Windows start ``stride`` tokens apart (the step between window starts, as in BERT's and
    XTREME's ``doc_stride``; not HuggingFace's overlap), snapped forward to the next word start,
    and overlap so that every word is in some window.  A single word longer than the budget
    gets a window of its own (its tokens are cut by the caller).
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


def char_span_to_tokens(starts, ends, char_start, char_end):
    """First and last token overlapping ``[char_start, char_end)`` (token spans sorted)."""
    first = int(np.searchsorted(ends, char_start, side="right"))
    last = int(np.searchsorted(starts, char_end, side="left")) - 1
    return first, last
