"""Sentence split and word segmentation with character offsets (stage ``words``).

Stanza's tokenizer is used for a language whose model is in ``--stanza-dir``; otherwise a
rule-based Unicode tokenizer (:func:`tokenize`):

* letters, marks and digits form words (``6½``, ``XLIX``, ``3rd``); numbers keep their inner
  ``.``/``,``/``:`` (``3:08``, ``1,000``); every other non-space grapheme (punctuation, symbols,
  emoji) is a word of its own, so hyphens split compounds (``Six-time`` -> ``Six - time``,
  Romanian ``sack-uri`` -> ``sack - uri``);
* apostrophes stay inside words, except English clitics (``NFL's`` -> ``NFL 's``,
  ``didn't`` -> ``did n't``) and Romance elision (``l'homme`` -> ``l' homme``, fr/it/ca);
* scripts written without spaces: every Han and Hiragana character is a word (the unit the MLQA
  metric and most Chinese aligners use), a Katakana run is a word (loan words);
  Thai and Lao are cut at boundaries that are certain without a dictionary: before a leading
  vowel (``เ แ โ ใ ไ``), which always opens a syllable, and after ``ะ``, ``ำ``, ``ๆ``, ``ฯ``,
  which always close one (never an empty word: a leading vowel that opens a run is no cut).
  The pieces are whole syllables or short syllable groups, never a fragment of a syllable.  With
  the optional ``thai`` extra (PyThaiNLP), Thai runs are cut into dictionary words (``newmm``)
  instead, when Stanza has no Thai tokenizer; the ``words`` summary names the segmenter used.
  (Khmer and Myanmar runs stay whole: a known limitation.)  Answers are mapped to SentencePiece
  tokens by characters (:mod:`.encode`), so a word boundary is never needed for an answer.

Sentences end after ``. ! ? 。 ！ ？ । ॥ ؟ …`` (and closing quotes or brackets) when the next
word starts a sentence; a ``.`` after an abbreviation or an initial (``J. P. Morgan``) does not end
one.  A segmented text is ``(offsets, sentence_starts)``: ``offsets`` a flat list
``[start0, end0, start1, end1, ...]`` of character offsets into the original string and
``sentence_starts`` the index of each sentence's first word.
"""
import os

import regex

_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}"
_WORD = rf"[[\p{{L}}\p{{M}}\p{{N}}\p{{Pc}}]--[{_NO_SPACE}]]"
_TOKEN = regex.compile(
    rf"""
      (?P<num>\p{{Nd}}+(?:[.,:]\p{{Nd}}+)+(?!{_WORD}))
    | (?P<cjk>[\p{{Han}}\p{{Hiragana}}])
    | (?P<kana>[\p{{Katakana}}\u30fc\uff70]+)
    | (?P<sea>[\p{{Thai}}\p{{Lao}}]+)
    | (?P<word>{_WORD}+(?:['’]{_WORD}+)*)
    | (?P<other>(?!\s)\X)
    """,
    regex.V1 | regex.VERBOSE,
)
# Thai / Lao: a unit starts before a leading vowel and ends after a syllable-closing sign.
_SEA_BREAK = regex.compile(r"(?<=.)(?=[\u0e40-\u0e44\u0ec0-\u0ec4])"
                           r"|(?<=[\u0e30\u0e33\u0e46\u0e2f\u0eb0\u0eb3\u0ec6])(?=.)")
_EN_CLITIC = regex.compile(r"(?i)^(.+?)((?:n['’]t)|(?:['’](?:s|re|ve|ll|d|m)))$")
_ELISION = regex.compile(r"(?i)^(\p{L}{1,4}['’])(\p{L}.*)$")
_ELISION_LANGS = {"fr", "it", "ca"}

_TERMINAL = set(".!?。！？।॥؟…")
_NO_SPACE_TERMINAL = set("。！？")
_CLOSING = set("\"'”’»)]}」』）")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e",
                  "inc", "ltd", "co", "corp", "no", "fig", "al", "approx", "u.s", "mt", "gen",
                  "col", "lt", "sgt", "rev", "hon", "dept", "univ", "ca", "cf", "nr", "bzw", "dh",
                  "z.b", "usw", "vgl", "nº", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
                  "sep", "sept", "oct", "nov", "dec"}


def tokenize(text, lang=None, sea_words=None):
    """Rule-based words of ``text`` as a flat ``[start0, end0, ...]`` list of character offsets.

    ``sea_words``, if given, cuts a Thai / Lao run instead of the rules: a function from the run's
    text to the lengths of its words (a dictionary segmenter, see :class:`Segmenter`)."""
    offsets = []
    for m in _TOKEN.finditer(text):
        kind, start, end = m.lastgroup, m.start(), m.end()
        if kind == "sea":
            offsets += _sea_words(text, start, end, sea_words)
            continue
        if kind == "word" and ("'" in m.group() or "’" in m.group()):
            word = m.group()
            if lang == "en" and (c := _EN_CLITIC.match(word)):
                split = start + len(c.group(1))
                offsets += (start, split, split, end)
                continue
            if lang in _ELISION_LANGS and (c := _ELISION.match(word)):
                split = start + len(c.group(1))
                offsets += (start, split, split, end)
                continue
        offsets += (start, end)
    return offsets


def _sea_words(text, start, end, sea_words=None):
    """Flat offsets of the words of the Thai / Lao run ``text[start:end]``, never an empty one
    (a leading vowel right at the start of the run is no break: the run starts there anyway)."""
    if sea_words is not None:
        lengths = [n for n in sea_words(text[start:end]) if n > 0]
        if sum(lengths) == end - start:
            cuts = [start]
            for n in lengths:
                cuts.append(cuts[-1] + n)
            return [x for a, b in zip(cuts, cuts[1:]) for x in (a, b)]
    cuts = [start] + [b.start() for b in _SEA_BREAK.finditer(text, start, end) if start < b.start() < end]
    cuts.append(end)
    return [x for a, b in zip(cuts, cuts[1:]) if a < b for x in (a, b)]


def split_sentences(text, offsets):
    """Indices of the first word of each sentence (always starts with 0 for a non-empty text)."""
    n = len(offsets) // 2
    if n == 0:
        return []
    starts = [0]
    i = 0
    while i < n:
        s, e = offsets[2 * i], offsets[2 * i + 1]
        word = text[s:e]
        if word[-1] in _TERMINAL and (len(word) == 1 or word == "..."):
            j = i + 1
            while j < n and text[offsets[2 * j]:offsets[2 * j + 1]] in _CLOSING:
                j += 1
            if j < n and _ends_sentence(text, offsets, i, j):
                starts.append(j)
            i = j
        else:
            i += 1
    return starts


def _ends_sentence(text, offsets, i, j):
    """Does the terminal word ``i`` end a sentence, ``j`` being the next non-closing word?"""
    mark = text[offsets[2 * i]]
    nxt = text[offsets[2 * j]:offsets[2 * j + 1]]
    gap = text[offsets[2 * j - 1]:offsets[2 * j]]
    if mark in _NO_SPACE_TERMINAL:
        return True
    if not gap.strip() == "" or gap == "":
        return False  # "3.5", "e.g.x": no space after the mark
    if mark == "." and i > 0:
        prev = text[offsets[2 * i - 2]:offsets[2 * i - 1]]
        touching = offsets[2 * i - 1] == offsets[2 * i]
        if touching and (prev.lower() in _ABBREVIATIONS
                         or (len(prev) == 1 and prev.isalpha() and prev.isupper())):
            return False
    first = nxt[0]
    return not (first.isalpha() and first.islower())


def thai_words():
    """PyThaiNLP's dictionary segmenter (``newmm``) as a ``sea_words`` function, or None when the
    optional ``thai`` extra (``pip install fairseq-grafusion[thai]``) is not installed."""
    try:
        from pythainlp.tokenize import word_tokenize
    except ImportError:
        return None
    return lambda run: [len(w) for w in word_tokenize(run, engine="newmm", keep_whitespace=True)]


class Segmenter:
    """Words and sentences of one language: Stanza's tokenizer if its model is local, else rules
    (for Thai with PyThaiNLP's dictionary segmenter on Thai runs when it is installed)."""

    def __init__(self, lang, stanza_dir=None):
        self.lang = lang
        self._nlp = None
        self._sea_words = None
        self.backend = "rules"
        if stanza_dir and os.path.isdir(os.path.join(stanza_dir, lang, "tokenize")):
            from .parse import stanza_pipeline

            # a language with multi-word tokens has an mwt model next to its tokenizer: load it
            # (Stanza would add it with a warning); our words are the tokens, MWTs kept whole
            mwt = os.path.isdir(os.path.join(stanza_dir, lang, "mwt"))
            self._nlp = stanza_pipeline(lang, stanza_dir, "tokenize,mwt" if mwt else "tokenize")
            self.backend = "stanza"
        elif lang == "th":
            self._sea_words = thai_words()
            self.backend = "rules + pythainlp newmm" if self._sea_words else \
                "rules (syllable groups; pip install pythainlp for words)"

    def segment(self, text):
        """``(offsets, sentence_starts)`` of ``text`` (see the module docstring)."""
        if self._nlp is None:
            offsets = tokenize(text, self.lang, self._sea_words)
            return offsets, split_sentences(text, offsets)
        from .parse import run_stanza

        offsets, starts = [], []
        for sentence in run_stanza(self._nlp, "tokenizer", self.lang, text).sentences:
            starts.append(len(offsets) // 2)
            for token in sentence.tokens:
                offsets += (token.start_char, token.end_char)
        return offsets, starts


def words_of(text, offsets):
    """The word strings of a segmented text."""
    return [text[offsets[k]:offsets[k + 1]] for k in range(0, len(offsets), 2)]
