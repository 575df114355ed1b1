"""Criterion ``xmrc_span``: eq. 5 for the target stream plus the same for the source stream.

``L = CE(start_t) + CE(end_t) + CE(start_s) + CE(end_s)`` summed over the batch (fairseq divides by
``sample_size`` = number of examples).  Logged, all summable across workers: ``loss`` and the
per-language ``tgt_loss`` / ``src_loss`` (base 2, per example) and start/end accuracy per language.
(``f1`` / ``em`` of ``--eval-span-f1`` are the task's: ``XMRCSpanTask.valid_step``.)

A model that reads the two streams as independent examples (XLM-R translate-train,
``xlmr_translate_train_*``: ``model.fusion`` False with a source stream) gets the source
stream's loss only on the examples whose English side is the one reading of its original in the
split (the batch's ``english_once``): on a translate-train-all split, where each English question
is the source of every language's pair, English is then read once, as every other language is.
"""
import math
from dataclasses import dataclass

import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..data.span_target import COLUMNS
from ..errors import GraFusionError


def log_loss(logging_outputs):
    """Log ``loss`` (base 2, per unit of ``sample_size``) and return the summing function that
    both criteria use for their other totals (values may be tensors)."""
    def total(key):
        return sum(float(log.get(key, 0)) for log in logging_outputs)

    sample_size = total("sample_size")
    metrics.log_scalar("loss", total("loss") / max(sample_size, 1) / math.log(2), sample_size,
                       round=3)
    return total


@dataclass
class XMRCSpanCriterionConfig(FairseqDataclass):
    """No options: a dataclass all the same, so that hydra configs (``criterion: xmrc_span``)
    and fairseq's registries treat it like the other criteria."""


@register_criterion("xmrc_span", dataclass=XMRCSpanCriterionConfig)
class XMRCSpanCriterion(FairseqCriterion):
    def forward(self, model, sample, reduce=True):
        if "target" not in sample:
            raise GraFusionError("xmrc_span needs answer spans in the batch")
        out = model(**sample["net_input"])
        spans = sample["target"]
        bsz = spans.size(0)
        loss = 0.0
        logging_output = {"nsentences": bsz, "ntokens": sample["ntokens"], "sample_size": bsz}
        for lang in COLUMNS:
            if f"{lang}_start" not in out:  # --no-fusion: no source stream
                continue
            read = None
            if lang == "src" and not getattr(model, "fusion", True) and "english_once" in sample:
                read = sample["english_once"].to(spans.device)  # translate-train: English once
            lang_loss = self.stream_loss(lang, out, sample, logging_output, read)
            logging_output[f"{lang}_loss"] = lang_loss.data
            logging_output[f"{lang}_n"] = bsz if read is None else read.sum().data
            loss = loss + lang_loss
        logging_output["loss"] = loss.data
        return loss, bsz, logging_output

    def stream_loss(self, lang, out, sample, logging_output, read=None):
        """Eq. 5 for one stream: ``CE(start) + CE(end)`` summed over the batch (over the examples
        where the bool ``read`` is true, when given); logs the start / end accuracy."""
        loss = 0.0
        for end, col in zip(("start", "end"), COLUMNS[lang]):
            logits = out[f"{lang}_{end}"].float()
            gold = sample["target"][:, col]
            ce = F.cross_entropy(logits, gold, reduction="none")
            correct = logits.argmax(-1) == gold
            if read is not None:
                ce, correct = ce.masked_fill(~read, 0.0), correct & read
            loss = loss + ce.sum()
            logging_output[f"{lang}_{end}_correct"] = correct.sum().data
        return loss

    @staticmethod
    def reduce_metrics(logging_outputs):
        total = log_loss(logging_outputs)
        metrics.log_scalar("nsentences", total("nsentences"), priority=999, round=0)
        for lang in COLUMNS:
            n = total(f"{lang}_n")
            if n == 0:
                continue
            metrics.log_scalar(f"{lang}_loss", total(f"{lang}_loss") / n / math.log(2), n, round=3)
            for end in ("start", "end"):
                metrics.log_scalar(f"{lang}_{end}_acc", 100.0 * total(f"{lang}_{end}_correct") / n,
                                   n, round=1)

    @staticmethod
    def logging_outputs_can_be_summed():
        return True



