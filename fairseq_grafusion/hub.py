"""Hub interface in fairseq's style: ``GraFusionModel.from_pretrained(...).answer(...)``.

    from fairseq_grafusion.models import GraFusionModel
    qa = GraFusionModel.from_pretrained("model_dir", checkpoint_file="checkpoint_best.pt",
                                        src_lang="en", tgt_lang="de",
                                        align_extra=("bitext.en", "bitext.de"))
    qa.answer("Wo ...?", "Die Eierstöcke ...", source_question="Where ...?",
              source_context="The ovaries ...")
    # {'text': 'Eierstöcke', 'score': 17.3, 'probability': 0.91, 'char_start': 4, 'char_end': 14}
    qa.answer([q1, q2], [c1, c2], source_question=[sq1, sq2], source_context=[sc1, sc2], top_k=5)
    # a list, one answer per question, each with 'nbest': 5 entries with their character offsets

``model_dir`` holds the checkpoint and ``sentencepiece.bpe.model``; ``data_name_or_path`` (as in
fairseq's hubs; default ``"."``, the model directory) holds ``dict.txt``.  Everything happens in
memory, through library calls: the questions go through the pipeline's stages
(:class:`~fairseq_grafusion.preprocess.in_memory.InMemoryPipeline`: words, alignment, dependency
arcs, windows), the windows are batched (:class:`~fairseq_grafusion.data.PairList`) and decoded as
``grafusion-predict`` decodes them (:func:`~fairseq_grafusion.inference.predict`).

The alignment model is estimated once, when the hub is built, and reused for every question:
eflomal's priors are read from ``align_priors`` (default ``model_dir/alignment.priors`` if it
exists) or estimated from ``align_extra`` (two line-aligned text files); questions are then aligned
in this process (:class:`~fairseq_grafusion.preprocess.align.LexicalAligner`).  Without either,
eflomal runs on each call's questions alone (slow, and weak on so little text).  The same path
(:func:`~fairseq_grafusion.inference.alignment_model`,
:func:`~fairseq_grafusion.inference.question_pipeline`) serves ``grafusion-predict --qa``.  A model that reads
the target stream only (``--no-fusion``, ``xlmr_translate_train_*``) skips alignment; one without
dependency edges (``--graph none`` or ``align``, FILTER) skips parsing
(:func:`~fairseq_grafusion.inference.graph_stages`, as ``grafusion-predict --qa``).  Without
``source_question`` / ``source_context`` the English side is translated by the target -> English
model of ``mt``, a :class:`~fairseq_grafusion.preprocess.mt_config.MTConfig` (or its fields as a
dict), with the model's tokenizer and BPE, as ``grafusion-preprocess --mt-test-*`` does::

    qa = GraFusionModel.from_pretrained("model_dir", src_lang="en", tgt_lang="de", mt={"test": {
        "model": "wmt19.de-en", "checkpoint": "model1.pt", "tokenizer": "moses", "bpe": "fastbpe"}})

(``mt_model=DIR``: one directory for both directions, no tokenizer or BPE.)
"""
import os

import torch.nn as nn

from .errors import GraFusionError
from .files import resolved
from .inference import alignment_model, load_model, predict, question_pipeline
from .preprocess.encode import DOC_STRIDE, MAX_LEN, MAX_QUERY_LEN
from .preprocess.mt_config import MTConfig
from .scoring.span_decoding import MAX_ANSWER_LENGTH

SPM_FILE = "sentencepiece.bpe.model"  # XLM-R's name, beside the checkpoint


class GraFusionHubInterface(nn.Module):
    """Answers questions with a loaded ``xmrc_span`` model (see the module docstring)."""

    def __init__(self, task, model, spm, dict_path, src_lang="en", tgt_lang="xx", stanza_dir=None,
                 mt=None, mt_model=None, priors=None, max_len=MAX_LEN, doc_stride=DOC_STRIDE,
                 max_query_len=MAX_QUERY_LEN, batch_size=32):
        super().__init__()
        self.task, self.model = task, model.eval()
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        if isinstance(mt, dict):
            mt = MTConfig(**mt)
        if mt_model and mt:
            raise GraFusionError("give mt (an MTConfig) or mt_model (one directory), not both")
        self.mt = (MTConfig.both(mt_model) if mt_model else mt) or None
        if self.mt:
            self.mt = self.mt.resolved()
        self.priors, self.batch_size = priors, batch_size
        self.pipeline = question_pipeline(
            model, src_lang, tgt_lang, spm, dict_path, priors, stanza_dir=stanza_dir,
            translator_for=self.mt.translator_for(src_lang, tgt_lang) if self.mt else None,
            max_len=max_len, doc_stride=doc_stride, max_query_len=max_query_len)

    def answer(self, question, context, *, source_question=None, source_context=None, top_k=1,
               max_answer_len=MAX_ANSWER_LENGTH):
        """The best answer span in ``context`` (an exact substring) with its score, probability
        and character offsets; ``top_k > 1`` adds ``nbest``, the ``top_k`` best spans (each with
        its character offsets).  ``question`` and ``context`` (and the English side, if given)
        may be lists: the answers are then a list, computed in one pass."""
        many = isinstance(question, (list, tuple))
        questions, contexts = (list(question), list(context)) if many else ([question], [context])
        if (source_question is None) != (source_context is None):
            raise GraFusionError("give both source_question and source_context, or neither")
        if source_question is None and not (self.mt and self.mt.test.model):
            raise GraFusionError("no English side: pass source_question/source_context or load "
                                 "the model with mt=MTConfig(test=MTDirection(DIR, ...)) (or "
                                 "mt_model=DIR) to translate")
        sides = {"tgt": (questions, contexts)}
        if source_question is not None:
            sides["src"] = (list(source_question), list(source_context)) if many \
                else ([source_question], [source_context])
        for side, (qs, cs) in sides.items():
            if len(qs) != len(questions) or len(cs) != len(questions):
                raise GraFusionError(f"{len(questions)} questions but {len(qs)} {side} questions and "
                                     f"{len(cs)} {side} contexts: give one of each per question")
            for k, c in enumerate(cs):
                if not isinstance(c, str) or not c.strip():
                    raise GraFusionError(f"question {k}: the {'English ' if side == 'src' else ''}"
                                         "context is empty")
        data = {side: ([{"context": c, "title": ""} for c in cs],
                       [{"id": str(k), "question": q, "passage": k, "answers": []}
                        for k, q in enumerate(qs)]) for side, (qs, cs) in sides.items()}
        windows = self.pipeline.windows(data.get("src"), data["tgt"], name="hub")
        lang = windows.reader.languages[0]
        nbest = predict(self.model, windows.reader, {lang: windows.contexts["tgt"]},
                        self.task.source_dictionary.pad(), "tgt", n_best=top_k,
                        max_answer_length=max_answer_len, batch_size=self.batch_size)
        answers = [_answer(nbest.get((lang, str(k)), []), top_k) for k in range(len(questions))]
        return answers if many else answers[0]


def _entry(prediction):
    return {"text": prediction.text, "score": prediction.score, "probability": prediction.probability,
            "char_start": prediction.char_start, "char_end": prediction.char_end}


def _answer(nbest, top_k):
    out = _entry(nbest[0]) if nbest else {"text": "", "score": float("-inf"), "probability": 0.0,
                                          "char_start": -1, "char_end": -1}
    if top_k > 1:
        out["nbest"] = [_entry(p) for p in nbest]
    return out


def from_pretrained(model_name_or_path, checkpoint_file="checkpoint_best.pt", data_name_or_path=".",
                    spm=None, src_lang="en", tgt_lang="xx", align_priors=None, align_extra=None,
                    **kwargs):
    """Load ``model_name_or_path/checkpoint_file`` (an ``xmrc_span`` checkpoint) as a hub
    interface.  ``data_name_or_path`` is the directory with ``dict.txt``, relative to the model
    directory when it starts with ``.`` (fairseq's rule); ``spm`` defaults to the model
    directory's ``sentencepiece.bpe.model``.  The alignment priors come from ``align_priors``
    (default ``alignment.priors`` in the model directory, if there) or are estimated once from
    ``align_extra`` (two line-aligned text files).  ``kwargs`` go to
    :class:`GraFusionHubInterface` (stanza_dir, mt, mt_model, max_len, doc_stride, max_query_len,
    batch_size)."""
    model_dir = resolved(model_name_or_path)  # absolute, once, as the commands' paths
    data = os.path.join(model_dir, data_name_or_path) if data_name_or_path.startswith(".") \
        else resolved(data_name_or_path)
    spm = resolved(spm) or os.path.join(model_dir, SPM_FILE)
    dict_path = os.path.join(data, "dict.txt")
    for path in (spm, dict_path):
        if not os.path.isfile(path):
            raise GraFusionError(f"{path} is missing: the model directory needs the "
                                 "SentencePiece model and dict.txt the data was encoded with")
    model, task = load_model(os.path.join(model_dir, checkpoint_file), data)
    priors = alignment_model(model, model_dir, align_priors, align_extra, src_lang, tgt_lang)
    return GraFusionHubInterface(task, model, spm, dict_path, src_lang, tgt_lang, priors=priors, **kwargs)
