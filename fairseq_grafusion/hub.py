"""Hub interface in fairseq's style: ``GraFusionModel.from_pretrained(...).answer(...)``.

    from fairseq_grafusion.models import GraFusionModel
    qa = GraFusionModel.from_pretrained("model_dir", checkpoint_file="checkpoint_best.pt",
                                        src_lang="en", tgt_lang="de")
    qa.answer("Wo ...?", "Die Eierstöcke ...", source_question="Where ...?",
              source_context="The ovaries ...")
    # {'text': 'Eierstöcke', 'score': 17.3, 'probability': 0.91, 'char_start': 4, 'char_end': 14}

``model_dir`` holds the checkpoint, ``dict.txt`` and ``sentencepiece.bpe.model`` (XLM-R's layout).
The example goes through the same pipeline as ``grafusion-preprocess`` (words, eflomal alignment,
dependency arcs with Stanza if ``stanza_dir`` has the models, windows) and the answer is decoded as
``grafusion-predict`` does.  Without ``source_question`` / ``source_context`` the English side is
translated with ``mt_model`` (a fairseq translation model directory).  ``align_extra`` (two
line-aligned text files) gives eflomal more text to learn from than one example.
"""
import os
import tempfile

import torch.nn as nn

from .errors import GraFusionError


class GraFusionHubInterface(nn.Module):
    def __init__(self, cfg, task, model, model_dir, src_lang="en", tgt_lang="xx", spm=None,
                 stanza_dir=None, mt_model=None, align_extra=None, max_answer_length=30,
                 max_len=384, doc_stride=128):
        super().__init__()
        self.cfg, self.task, self.model = cfg, task, model.eval()
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.spm = spm or os.path.join(model_dir, "sentencepiece.bpe.model")
        self.dict = os.path.join(model_dir, "dict.txt")
        for path in (self.spm, self.dict):
            if not os.path.isfile(path):
                raise GraFusionError(f"{path} is missing: the model directory needs the "
                                     "SentencePiece model and dict.txt the data was encoded with")
        self.stanza_dir, self.mt_model, self.align_extra = stanza_dir, mt_model, align_extra
        self.max_answer_length = max_answer_length
        self.max_len, self.doc_stride = min(max_len, model.max_positions()), doc_stride

    def answer(self, question, context, *, source_question=None, source_context=None, n_best=1):
        """The best answer span in ``context`` (exact substring) with its score; ``n_best > 1``
        adds ``nbest``, the list of alternatives."""
        from preprocess.qa_io import write_squad

        from .cli.predict import predict_split, preprocess_qa

        if (source_question is None) != (source_context is None):
            raise GraFusionError("give both source_question and source_context, or neither")
        if source_question is None and not self.mt_model:
            raise GraFusionError("no English side: pass source_question/source_context or load "
                                 "the model with mt_model=DIR to translate")
        with tempfile.TemporaryDirectory(prefix="grafusion-hub-") as tmp:
            paths = {}
            for side, q, c in (("src", source_question, source_context), ("tgt", question, context)):
                if q is None:
                    paths[side] = "-"
                    continue
                paths[side] = os.path.join(tmp, f"{side}.json")
                write_squad(paths[side], [{"context": c}],
                            [{"id": "q", "question": q, "passage": 0, "answers": []}])
            data = preprocess_qa(os.path.join(tmp, "out"), paths["src"], paths["tgt"],
                                 self.src_lang, self.tgt_lang, self.spm, self.dict, self.max_len,
                                 self.doc_stride, self.stanza_dir, self.mt_model, self.align_extra)
            nbest = predict_split(self.model, self.task, "test", "tgt", batch_size=8,
                                  n_best=max(n_best, 1), max_answer_length=self.max_answer_length,
                                  progress=False, data=data)["q"]
        if not nbest:
            return {"text": "", "score": float("-inf"), "probability": 0.0, "char_start": -1,
                    "char_end": -1}
        best = nbest[0]
        out = {"text": best.text, "score": best.score, "probability": best.probability,
               "char_start": best.char_start, "char_end": best.char_end}
        if n_best > 1:
            out["nbest"] = [{"text": p.text, "score": p.score, "probability": p.probability}
                            for p in nbest]
        return out


def from_pretrained(model_dir, checkpoint_file="checkpoint_best.pt", **kwargs):
    """Load ``model_dir/checkpoint_file`` (an ``xmrc_span`` checkpoint) as a hub interface;
    ``kwargs`` go to :class:`GraFusionHubInterface` (src_lang, tgt_lang, spm, stanza_dir,
    mt_model, align_extra, max_answer_length, max_len, doc_stride)."""
    from .cli.predict import load_model

    model, task = load_model(os.path.join(model_dir, checkpoint_file), model_dir)
    return GraFusionHubInterface(task.cfg, task, model, model_dir, **kwargs)
