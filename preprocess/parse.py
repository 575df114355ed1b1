"""Dependency arcs per sentence (stage ``parse``) and "same word" edges.

Arcs come from a :class:`stanza.Document` either way: Stanza's dependency parser run on our
pre-tokenised sentences (``tokenize_pretokenized=True``, model from ``--stanza-dir``, never
downloaded), or any UD parser's CoNLL-U output read with :mod:`stanza.utils.conll`.  The same
function (:func:`document_arcs`) turns either document into arcs between *tokens* (our words):
the syntactic words of a multi-word token (``del`` = ``de el``) share their token's node, so
arcs inside one token disappear.  Arcs are undirected word pairs, the root arc is dropped.

"Same" edges link identical word forms (case-folded, at least one letter or digit) inside one
passage; the paper counts them as dependency edges.  A form occurring more than
``max_group`` times is chained (each occurrence to the next) instead of forming a clique, so
frequent words cannot blow up the edge list.
"""
import os

import numpy as np

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import read_text


def document_arcs(doc):
    """Per sentence, a flat ``[dep, head, ...]`` list of token indices local to the sentence."""
    out = []
    for sentence in doc.sentences:
        token_of_word = {}
        for t, token in enumerate(sentence.tokens):
            for word in token.words:
                token_of_word[word.id] = t
        arcs, seen = [], set()
        for word in sentence.words:
            if word.head is None or word.head == 0:
                continue
            dep, head = token_of_word[word.id], token_of_word.get(word.head)
            if head is None:
                raise GraFusionError(f"sentence '{sentence.text or ''}': word {word.id} has head "
                                     f"{word.head}, which is not a word of the sentence")
            if dep != head and (dep, head) not in seen:
                seen.add((dep, head))
                arcs += (dep, head)
        out.append(arcs)
    return out


def _sentence_lines(path, text):
    """The 1-based line number where each CoNLL-U sentence starts; a HEAD that is not 0 (the
    root) or a word of its sentence is one line naming the file and the line."""
    starts, words = [], []  # words: (line, id, head) of the current sentence
    in_sentence = False
    for n, line in enumerate(text.split("\n") + [""], 1):
        if line.strip():
            if not in_sentence:
                starts.append(n)
            in_sentence = True
            columns = line.split("\t")
            if not line.startswith("#") and len(columns) >= 7:
                words.append((n, columns[0], columns[6]))
            continue
        in_sentence = False
        n_words = sum(1 for _, word, _ in words if word.isascii() and word.isdigit())
        for k, word, head in words:
            if head != "_" and not (head.isascii() and head.isdigit() and int(head) <= n_words):
                raise GraFusionError(f"{path} line {k}: word {word} has head {head!r}, not 0 (the "
                                     f"root) or a word of its sentence (1..{n_words})")
        words = []
    return starts


def read_conllu(path, sentence_lengths):
    """Arcs per sentence from a CoNLL-U file, checked against our sentences' word counts."""
    from stanza.utils.conll import CoNLL

    if not os.path.isfile(path):
        raise GraFusionError(f"{path}: CoNLL-U file not found")
    text = read_text(path, "CoNLL-U file")
    lines = _sentence_lines(path, text)
    try:
        doc = CoNLL.conll2doc(input_str=text)
    except Exception as e:  # stanza raises plain ValueError / IndexError on malformed input
        cause = e.__cause__ or e.__context__ or e
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
        raise GraFusionError(f"{path}: not a readable CoNLL-U file ({type(cause).__name__}: "
                             f"{first})") from None
    if len(doc.sentences) != len(sentence_lengths):
        raise GraFusionError(f"{path}: {len(doc.sentences)} sentences, but the split has "
                             f"{len(sentence_lengths)} (parse the words stage's sentences file)")
    for k, (sentence, n) in enumerate(zip(doc.sentences, sentence_lengths)):
        if len(sentence.tokens) != n:
            raise GraFusionError(f"{path} line {lines[k]}: sentence {k + 1} has "
                                 f"{len(sentence.tokens)} tokens, the words stage has {n} words")
    return document_arcs(doc)


def has_parser(lang, stanza_dir):
    return bool(stanza_dir) and os.path.isdir(os.path.join(stanza_dir, lang, "depparse"))


# words per Stanza batch (POS: at most this many words, depparse: this many words), Stanza's default
PARSE_BATCH_WORDS = 5000


def stanza_device():
    """Where Stanza runs: ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def stanza_pipeline(lang, stanza_dir, processors, **options):
    """``stanza.Pipeline`` of the local models in ``stanza_dir`` (nothing downloaded), with what
    goes wrong in Stanza (a missing or damaged model file) as one line naming the directory."""
    import stanza

    try:
        return stanza.Pipeline(lang, dir=stanza_dir, processors=processors, download_method=None,
                               logging_level="WARN", use_gpu=stanza_device() == "cuda", **options)
    except Exception as e:  # Stanza raises many kinds: FileNotFoundError, RuntimeError, KeyError...
        raise GraFusionError(f"--stanza-dir {stanza_dir}: cannot load Stanza's {processors} models "
                             f"for {lang} ({type(e).__name__}: {_first_line(e)})") from None


def run_stanza(nlp, what, lang, inputs):
    """``nlp(inputs)``, a failure in Stanza as one line naming the step and the language."""
    try:
        return nlp(inputs)
    except Exception as e:
        raise GraFusionError(f"Stanza's {what} failed on {lang} text ({type(e).__name__}: "
                             f"{_first_line(e)})") from None


def _first_line(error):
    return (str(error).strip().splitlines() or [""])[0][:200]


def stanza_arcs(lang, stanza_dir, sentences, batch_words=PARSE_BATCH_WORDS, chunk=20000):
    """Arcs per sentence of ``sentences`` (lists of words) parsed by Stanza from a local dir.

    Stanza batches POS tagging and parsing itself (``pos_batch_size`` / ``pos_batch_maximum_tokens``
    / ``depparse_batch_size``, in sentences / words, sorted by length) and runs on the GPU when one
    is visible; ``chunk`` sentences go to Stanza per call to bound host memory."""
    nlp = stanza_pipeline(lang, stanza_dir, "tokenize,pos,lemma,depparse", tokenize_pretokenized=True,
                          pos_batch_size=max(1, batch_words // 5),
                          pos_batch_maximum_tokens=batch_words, depparse_batch_size=batch_words)
    out = []
    for k in range(0, len(sentences), chunk):
        part = sentences[k:k + chunk]
        nonempty = [s for s in part if s]
        arcs = iter(document_arcs(run_stanza(nlp, "parser", lang, nonempty))) if nonempty else iter(())
        out += [next(arcs) if s else [] for s in part]
    return out


def same_word_edges(forms, max_group=8):
    """Flat ``[i, j, ...]`` edges between identical word forms (see the module docstring), form
    by form in sorted order, each form's pairs ``(i, j)``, ``i < j``, in text order."""
    keep = np.fromiter((any(c.isalnum() for c in w) for w in forms), dtype=bool, count=len(forms))
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return []
    _, inverse, counts = np.unique([forms[i].casefold() for i in idx], return_inverse=True,
                                   return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    members, group = idx[order], inverse[order]  # occurrences form by form, in text order
    rank = np.arange(len(members)) - (np.cumsum(counts) - counts)[group]
    clique = counts[group] <= max_group
    firsts, seconds = [], []
    for d in range(1, max(2, min(max_group, int(counts.max())))):  # distance inside a form
        p = np.arange(len(members) - d)
        ok = (group[p] == group[p + d]) & (clique[p] | (d == 1))  # a large form: chained (d = 1)
        firsts.append(p[ok])
        seconds.append(p[ok] + d)
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    o = np.lexsort((rank[b], rank[a], group[a]))
    return np.stack([members[a[o]], members[b[o]]], axis=1).reshape(-1).tolist()
