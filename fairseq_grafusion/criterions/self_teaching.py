"""Criterion ``xmrc_span_self_teaching``: FILTER's self-teaching loss (Fang et al., AAAI 2021).

A teacher (a FILTER model trained first with ``xmrc_span``) gives soft labels for the target
stream (the translated target-language text); the student's loss is

    L = (1 - alpha) * CE(T) + alpha * T^2 * KL(p_teacher^T || p_student^T) + CE(S)

with ``CE(X) = CE(start) + CE(end)`` (eq. 5), ``KL = KL(start) + KL(end)`` and ``p^T`` the
position distribution at temperature ``T`` (softmax of logits / T over the stream's non-padding
tokens).  The English stream keeps its plain cross-entropy and never gets the KL term.  This is
the loss of FILTER's ``FilterForQuestionAnswering.forward`` (yuwfan/FILTER,
``src/transformers/modeling_xlm_roberta.py``: ``(1 - alpha) * loss_other + alpha * kd_loss +
loss_eng``, where ``loss_other`` / ``kd_loss`` are the first, non-English input's), written in
this plugin's units (a sum over examples of start + end terms, where FILTER averages them).

FILTER computes the teacher's logits once, in eval mode, on the training split (``--eval_train``
writes them to ``*.logits.pkl``); here the teacher runs in eval mode without gradients on each
batch, which gives the same soft labels.  Several teachers (``A.pt:B.pt``) are averaged, as
FILTER averages the logits files of ``--pkl_index 0,1``.

The KL is reduced as FILTER's code reduces it (``--self-teaching-kl flat-batch``, the default):
the non-padding logits of the whole batch are selected into one vector (``masked_select``), so
one softmax runs over all examples' tokens together, and ``KLDivLoss(reduction="batchmean")``
divides by the number of those tokens.  ``--self-teaching-kl example`` is the KL of each
example's own distribution, summed over the examples, as the paper's equation reads; the two
differ by about the number of non-padding tokens in a batch (a thousand and more at 384-token
windows), so ``example`` weighs the KL about that much more than FILTER's published runs.
"""
import math
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..errors import GraFusionError
from .xmrc_span import XMRCSpanCriterion

KL_MODES = ("example", "flat-batch")


@dataclass
class SelfTeachingConfig(FairseqDataclass):
    self_teaching_teacher: Optional[str] = field(default=None, metadata={
        "help": "the teacher: an xmrc_span checkpoint trained first (FILTER's phase 1); several "
                "separated by ':' have their logits averaged"})
    self_teaching_alpha: float = field(default=0.5, metadata={
        "help": "alpha: weight of the KL term on the target stream, whose cross-entropy gets "
                "1 - alpha (FILTER's --alpha)"})
    self_teaching_temperature: float = field(default=6.0, metadata={
        "help": "T: temperature of both distributions; the KL is scaled by T^2 (FILTER's "
                "--temperature, default 6 in its run_xqa.py)"})
    self_teaching_kl: ChoiceEnum(KL_MODES) = field(default="flat-batch", metadata={
        "help": "flat-batch: one distribution over all tokens of the batch, divided by their "
                "number (FILTER's code, the default); example: the KL of each example's "
                "distribution, summed (the paper's equation; about as many times larger as a "
                "batch has non-padding tokens)"})


def self_teaching_kl(student, teacher, pad, temperature, mode="example"):
    """``KL(softmax(teacher / T) || softmax(student / T))`` of one position distribution (start
    or end), summed over the batch.

    ``student``, ``teacher``: logits (B, L); ``pad`` (B, L): True on padding, which is outside
    both distributions.  ``flat-batch`` (FILTER's code): the non-padding logits of the whole batch
    form one distribution and the KL is divided by their number; the result is multiplied by B so
    that fairseq's division by the number of examples gives FILTER's value.
    """
    if mode not in KL_MODES:
        raise ValueError(f"unknown KL mode {mode!r}; choose from {KL_MODES}")
    scale = 1.0
    student, teacher = student.float() / temperature, teacher.float() / temperature
    if mode == "flat-batch":
        keep = ~pad
        scale = student.size(0) / keep.sum().clamp(min=1)
        student, teacher = student[keep].unsqueeze(0), teacher[keep].unsqueeze(0)
        pad = torch.zeros_like(student, dtype=torch.bool)
    log_p_student = torch.log_softmax(student.masked_fill(pad, float("-inf")), dim=-1)
    log_p_teacher = torch.log_softmax(teacher.masked_fill(pad, float("-inf")), dim=-1)
    terms = log_p_teacher.exp() * (log_p_teacher.masked_fill(pad, 0) - log_p_student.masked_fill(pad, 0))
    return terms.sum() * scale


def load_teachers(paths, task):
    """The teacher models, in eval mode and without gradients, built by the student's task."""
    from fairseq import checkpoint_utils

    from .. import checkpoint_policy

    teachers = []
    for path in paths:
        if not os.path.isfile(path):
            raise GraFusionError(f"--self-teaching-teacher {path}: no such checkpoint file")
        # an xmrc_span checkpoint of ours, checked before the student's task builds it
        allowed = checkpoint_policy.ours(("xmrc_span",), label="--self-teaching-teacher")
        with checkpoint_policy.expecting(allowed):
            state = checkpoint_utils.load_checkpoint_to_cpu(path)
        try:
            models, _ = checkpoint_utils.load_model_ensemble([path], task=task, state=state)
        except RuntimeError as e:  # torch's size-mismatch message runs over many lines
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise GraFusionError(f"--self-teaching-teacher {path} does not fit the data's "
                                 f"dictionary or the task ({first})") from None
        teachers.append(models[0].eval().requires_grad_(False))
    return teachers


@register_criterion("xmrc_span_self_teaching", dataclass=SelfTeachingConfig)
class SelfTeachingCriterion(XMRCSpanCriterion):
    """``xmrc_span`` plus FILTER's KL term on the target stream (module docstring)."""

    def __init__(self, cfg, task):
        super().__init__(task)
        if not cfg.self_teaching_teacher:
            raise GraFusionError("--criterion xmrc_span_self_teaching needs --self-teaching-teacher "
                                 "CHECKPOINT (a model trained first with --criterion xmrc_span)")
        if not 0.0 <= cfg.self_teaching_alpha <= 1.0:
            raise GraFusionError(f"--self-teaching-alpha must be in [0, 1], got {cfg.self_teaching_alpha}")
        if cfg.self_teaching_temperature <= 0:
            raise GraFusionError("--self-teaching-temperature must be positive, got "
                                 f"{cfg.self_teaching_temperature}")
        self.alpha, self.temperature = cfg.self_teaching_alpha, cfg.self_teaching_temperature
        self.kl_mode = cfg.self_teaching_kl
        # a tuple, not a submodule: the teacher stays out of the optimizer, the checkpoints and
        # criterion.train(); it follows the student's device and dtype in teacher_logits
        self.teachers = tuple(load_teachers(cfg.self_teaching_teacher.split(":"), task))

    def teacher_logits(self, sample, like):
        """The teachers' mean target-stream logits ``{"tgt_start", "tgt_end"}`` for the batch,
        computed on the device and in the dtype of ``like`` (the student's logits)."""
        total = {}
        with torch.no_grad():
            for teacher in self.teachers:
                weight = next(teacher.parameters())
                if weight.device != like.device or weight.dtype != like.dtype:
                    teacher.to(device=like.device, dtype=like.dtype)
                out = teacher(**sample["net_input"])
                for key in ("tgt_start", "tgt_end"):
                    total[key] = total.get(key, 0) + out[key].float()
        return {key: value / len(self.teachers) for key, value in total.items()}

    def stream_loss(self, lang, out, sample, logging_output, read=None):
        ce = super().stream_loss(lang, out, sample, logging_output, read)
        if lang != "tgt":  # FILTER: the English stream keeps its plain cross-entropy
            return ce
        teacher = self.teacher_logits(sample, out["tgt_start"])
        pad = sample["net_input"]["tgt_tokens"].eq(self.task.source_dictionary.pad())
        kl = sum(self_teaching_kl(out[key], teacher[key], pad, self.temperature, self.kl_mode)
                 for key in ("tgt_start", "tgt_end"))
        logging_output["tgt_ce"], logging_output["tgt_kl"] = ce.data, kl.data
        return (1 - self.alpha) * ce + self.alpha * self.temperature ** 2 * kl

    @staticmethod
    def reduce_metrics(logging_outputs):
        XMRCSpanCriterion.reduce_metrics(logging_outputs)
        n = sum(float(log.get("tgt_n", 0)) for log in logging_outputs)
        if n:
            for key in ("tgt_ce", "tgt_kl"):
                value = sum(float(log.get(key, 0)) for log in logging_outputs)
                metrics.log_scalar(key, value / n / math.log(2), n, round=3)
