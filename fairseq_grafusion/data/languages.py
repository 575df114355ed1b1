"""The languages of a binarized split: where each language's gold file is, how many windows and
questions each language has.

A split written for one (English, target) pair has one gold file per stream,
``DATA/SPLIT.{src,tgt}.json``.  A split that joins several pairs (``grafusion-preprocess combine``)
has one per stream and language, ``DATA/SPLIT.{src,tgt}.LANG.json``, because question ids repeat
across languages (MLQA and XQuAD give a question the same id in every language); there a
question is identified by ``(language, id)``.
"""
import collections
import os

from ..errors import GraFusionError

COMBINE_MANIFEST = "combine.json"


def gold_file(data_dir, split, stream, lang=None):
    """``DATA/SPLIT.STREAM.LANG.json`` (``DATA/SPLIT.STREAM.json`` without a language)."""
    suffix = f".{lang}" if lang is not None else ""
    return os.path.join(data_dir, f"{split}.{stream}{suffix}.json")


def gold_files(data_dir, split, stream, languages):
    """``{lang: gold file}`` for the languages of a split (``None``: unknown language).

    A language's own file is used where it exists; a split of one language may use the pair's
    ``SPLIT.STREAM.json``.  A split of several languages without a file for one of them fails.
    """
    paths = {}
    for lang in languages:
        own = gold_file(data_dir, split, stream, lang)
        if lang is not None and os.path.isfile(own):
            paths[lang] = own
        elif len(languages) == 1:
            paths[lang] = gold_file(data_dir, split, stream)
        else:
            raise GraFusionError(f"{own} is missing: split '{split}' holds the languages "
                                 f"{', '.join(map(str, languages))} and needs a gold file per language "
                                 "(written by grafusion-preprocess combine)")
    return paths


def language_counts(reader):
    """``{lang: (windows, questions)}`` of a :class:`~.pair_binary.PairReader` split."""
    windows = collections.Counter(reader.lang_ids.tolist())
    questions = collections.Counter(k for k, _ in {(int(k), q) for k, q in zip(reader.lang_ids, reader.ids)})
    return {reader.languages[k]: (windows[k], questions[k]) for k in sorted(windows)}


def describe(reader):
    """One line for the log: ``de: 120 windows / 47 questions, zh: ...``."""
    return ", ".join(f"{lang or 'unknown'}: {w} windows / {q} questions"
                     for lang, (w, q) in language_counts(reader).items())
