"""The chain in memory: SQuAD-style questions in, windows out, no files and no command.

What the hub and ``grafusion-predict --qa`` run on the questions they are given: the stages of
:mod:`.units` in the order ``grafusion-preprocess all`` runs them (pairs, words, align, parse,
binarize), so that the windows are the ones the binarized split would hold.  Loaded once (the
SentencePiece model and dictionary, the aligner, a translator), applied to any number of calls.
"""
import collections
from typing import Dict, List, NamedTuple

from fairseq_grafusion.data import PairList

from . import units as unit_ops
from .align import eflomal_align
from .encode import DOC_STRIDE, MAX_LEN, MAX_QUERY_LEN, Encoder
from .pairing import make_units


class Windows(NamedTuple):
    """What :meth:`InMemoryPipeline.windows` makes."""

    reader: PairList  # the windows, PairReader's interface
    contexts: Dict[str, Dict[str, str]]  # per stream ("src", "tgt"): {question id: context}
    report: List[str]  # pairing notes (questions dropped or translated)
    counts: collections.Counter  # the stages' counters (links, dropped questions, ...)


class InMemoryPipeline:
    """The pipeline's stages for questions held in memory.

    ``aligner(src_lines, tgt_lines)`` returns the links of every aligner line pair (default:
    :func:`.align.eflomal_align`, one run per call; the hub passes a
    :class:`.align.LexicalAligner`).  ``align=False`` skips alignment (a ``--no-fusion`` model
    reads no source stream), ``parse=False`` dependency parsing and same-word edges (a model
    without dependency edges).  ``translator_for(from_lang, to_lang)`` translates a missing side,
    as ``--mt-model`` does.  The window sizes default to :data:`.encode.MAX_LEN`,
    :data:`.encode.DOC_STRIDE` and :data:`.encode.MAX_QUERY_LEN`.
    """

    def __init__(self, src_lang, tgt_lang, spm, dict_path, *, stanza_dir=None, translator_for=None,
                 aligner=None, align=True, parse=True, same_max_group=8, max_len=MAX_LEN,
                 doc_stride=DOC_STRIDE, max_query_len=MAX_QUERY_LEN):
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.encoder = Encoder(spm, dict_path)
        self.stanza_dir, self.translator_for = stanza_dir, translator_for
        self.aligner = aligner or eflomal_align
        self.align, self.parse, self.same_max_group = align, parse, same_max_group
        self.window_options = {"max_len": max_len, "doc_stride": doc_stride, "max_query_len": max_query_len}

    def windows(self, src, tgt, name="questions"):
        """The windows of the questions of ``src`` and ``tgt``: each ``(passages, questions)`` as
        :func:`fairseq_grafusion.squad.read_squad` returns them, or None for a side to
        translate.  ``name`` is what errors about an example show."""
        counts = collections.Counter()
        units, report = make_units(src, tgt, self.src_lang, self.tgt_lang, self.translator_for, counts)
        words = unit_ops.segment_units(units, self.src_lang, self.tgt_lang, self.stanza_dir)
        if self.align:
            src_lines, tgt_lines, _ = unit_ops.segment_lines(units, words)
            aligns = unit_ops.link_units(units, words, self.aligner(src_lines, tgt_lines), counts)
        else:
            aligns = unit_ops.unlinked(units)
        unit_ops.project_answers(units, words, aligns, counts)
        if self.parse:
            parses = unit_ops.parse_units(units, words, self.src_lang, self.tgt_lang, self.stanza_dir,
                                          same_max_group=self.same_max_group)
        else:
            parses = unit_ops.unparsed(units)
        func, tasks = unit_ops.example_tasks("qa", units, words, aligns, parses, self.window_options)
        examples, built = unit_ops.build_examples(func, tasks, self.encoder)
        counts.update(built)
        kept = {uid for uid, _ in examples}
        contexts = {}
        for side in ("src", "tgt"):
            passages, questions = unit_ops.gold_questions(units, aligns, kept, side)
            contexts[side] = {q["id"]: passages[q["passage"]]["context"] for q in questions}
        return Windows(PairList(examples, name), contexts, report, counts)
