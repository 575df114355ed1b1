"""Criterion ``sa_graph_pretrain``: ``L = L_TLM + L_SA`` (paper section 3.4).

For a batch masked by :class:`~fairseq_grafusion.data.GraphMaskingDataset` (``target`` over
``[S; T]``: the original piece where masked, padding elsewhere), with ``x`` the final states of
both streams concatenated (``extract_features``' ``src`` and ``tgt``):

* ``L_TLM`` -- every masked piece is predicted from its own final state through the RoBERTa LM
  head (output tied to the input embeddings): ``-log P(piece | x_piece)``.
* ``L_SA`` -- every piece of a masked word ``i`` is predicted from the aggregate of ``i``'s
  SA-Graph neighbours (see :func:`~fairseq_grafusion.models.pretrain_heads.sa_aggregate`)
  through the recovery head:
  ``-log P(piece | a_i, k)`` with ``k`` the piece's position inside its word.  A masked word
  without a visible neighbour contributes no ``L_SA`` term; such words are counted
  (``sa_no_nb``, % of masked words).

The model computes both heads' logits (:meth:`GraFusionModel.pretraining_logits
<fairseq_grafusion.models.grafusion.GraFusionModel.pretraining_logits>`); the criterion only
scores them.  Both are sums over masked pieces; fairseq divides the gradient by ``sample_size`` = number of
masked pieces, so the objective is the paper's ``sum_i L_TLM(i) + L_SA(i)`` per masked piece
(``--sa-loss-weight`` scales ``L_SA``, 1 by default).  Logged, all summable across workers:
``loss`` (per masked piece), ``tlm_loss`` (per masked piece) and ``sa_loss`` (per piece that has
an ``L_SA`` term), in base 2 as fairseq's LM criterions; their accuracies; ``sa_no_nb``; and
``mono`` (% of batches masked mono-lingually).
"""
import math
from dataclasses import dataclass, field

import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..errors import GraFusionError
from .xmrc_span import log_loss


@dataclass
class SAGraphPretrainCriterionConfig(FairseqDataclass):
    sa_loss_weight: float = field(default=1.0, metadata={
        "help": "weight of L_SA in L = L_TLM + w * L_SA (the paper: 1; 0: TLM only)"})


@register_criterion("sa_graph_pretrain", dataclass=SAGraphPretrainCriterionConfig)
class SAGraphPretrainCriterion(FairseqCriterion):
    def __init__(self, task, sa_loss_weight=1.0):
        super().__init__(task)
        self.sa_loss_weight = sa_loss_weight
        self.padding_idx = task.source_dictionary.pad()

    def forward(self, model, sample, reduce=True):
        heads = getattr(model, "pretrain_heads", None)
        if heads is None:
            raise GraFusionError("criterion sa_graph_pretrain needs --task sa_graph_pretrain "
                                 "(the model has no pre-training heads)")
        if "target" not in sample or sample["target"].dim() != 2:
            raise GraFusionError("criterion sa_graph_pretrain needs masked batches from "
                                 "--task sa_graph_pretrain")
        target = sample["target"]
        masked = target.ne(self.padding_idx)
        out = model.pretraining_logits(masked_tokens=masked, **sample["net_input"])

        tlm_target = target[masked]
        tlm_logits = out["tlm"].float()
        tlm_loss = F.cross_entropy(tlm_logits, tlm_target, reduction="sum")

        sa_sel = out["sa_tokens"]
        sa_target = target[sa_sel]
        sa_logits = out["sa"].float()
        sa_loss = F.cross_entropy(sa_logits, sa_target, reduction="sum")
        masked_words, lonely_words = out["masked_words"], out["lonely_words"]

        loss = tlm_loss + self.sa_loss_weight * sa_loss
        n_masked = int(masked.sum())
        masking = sample.get("masking", {})
        logging_output = {
            "loss": loss.data,
            "tlm_loss": tlm_loss.data,
            "sa_loss": sa_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": n_masked,
            "tlm_n": n_masked,
            "sa_n": int(sa_sel.sum()),
            "tlm_correct": int((tlm_logits.argmax(-1) == tlm_target).sum()),
            "sa_correct": int((sa_logits.argmax(-1) == sa_target).sum()),
            "masked_words": masked_words,
            "lonely_words": lonely_words,
            "mono_batches": int(masking.get("mono", 0)),
            "batches": 1,
        }
        return loss, n_masked, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs):
        total = log_loss(logging_outputs)
        for name in ("tlm", "sa"):
            n = total(f"{name}_n")
            if n:
                metrics.log_scalar(f"{name}_loss", total(f"{name}_loss") / n / math.log(2), n,
                                   round=3)
                metrics.log_scalar(f"{name}_acc", 100.0 * total(f"{name}_correct") / n, n,
                                   round=1)
        words = total("masked_words")
        if words:
            metrics.log_scalar("sa_no_nb", 100.0 * total("lonely_words") / words, words, round=1)
        batches = total("batches")
        if batches:
            metrics.log_scalar("mono", 100.0 * total("mono_batches") / batches, batches, round=1)
        metrics.log_scalar("nsentences", total("nsentences"), priority=999, round=0)

    @staticmethod
    def logging_outputs_can_be_summed():
        return True
