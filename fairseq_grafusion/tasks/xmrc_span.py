"""Task ``xmrc_span``: cross-lingual span extraction on paired (English, target) examples.

``DATA`` holds ``dict.txt`` (XLM-R's, or any fairseq dictionary) and the splits written by
``grafusion-preprocess binarize`` (or :class:`~fairseq_grafusion.data.PairWriter`).  Like
fairseq's ``masked_lm`` task, ``<mask>`` is appended to the dictionary so that the vocabulary has
the size of an XLM-R checkpoint's embedding matrix.

With ``--eval-span-f1`` the task decodes the validation splits and logs ``f1`` / ``em``, as
fairseq's translation task computes ``--eval-bleu`` in ``valid_step`` / ``reduce_metrics``: the
criterion only scores.  A split that mixes languages (``grafusion-preprocess combine``) is also
scored per language, each with its own metric: ``f1_<lang>`` / ``em_<lang>`` and their unweighted
mean ``f1_avg`` / ``em_avg`` (the paper's Avg.; ``--best-checkpoint-metric f1_avg``), ``f1`` / ``em``
being then the mean over all questions.  The span logits are the ones the criterion's forward pass computed
(captured with a forward hook), so validation costs no second pass.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq import metrics
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING

from ..data import GraphPairDataset, PairReader
from ..data.fingerprints import check_gold_contexts
from ..data.languages import gold_file, gold_files
from ..errors import GraFusionError
from ..scoring.per_language import reduce_per_language
from ..scoring.span_decoding import MAX_ANSWER_LENGTH
from ..scoring.span_scorer import LanguageSpanScorer, SpanScorer
from ..squad import read_gold
from .graph_pair_task import GraphPairTask

logger = logging.getLogger(__name__)


@dataclass
class XMRCSpanConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "binarized data directory"})
    no_shuffle: bool = field(default=False, metadata={"help": "keep the split's order"})
    eval_span_f1: bool = field(default=False, metadata={
        "help": "decode the validation splits and log F1 / EM (gold: DATA/<split>.<stream>.json); "
                "use with --best-checkpoint-metric f1 --maximize-best-checkpoint-metric"})
    eval_span_stream: ChoiceEnum(["tgt", "src"]) = field(default="tgt", metadata={
        "help": "the language stream whose answers are scored"})
    eval_span_lang: Optional[str] = field(default=None, metadata={
        "help": "language code for the metric's normalisation (MLQA rules per language)"})
    eval_span_metric: ChoiceEnum(["auto", "mlqa", "squad"]) = field(default="auto", metadata={
        "help": "auto: MLQA's metric for MLQA languages, SQuAD v1.1's otherwise"})
    max_answer_length: int = field(default=MAX_ANSWER_LENGTH, metadata={"help": "longest answer, in tokens"})
    seed: int = II("common.seed")
    train_subset: str = II("dataset.train_subset")
    # where fairseq-train restores from: a resumed run does not read --pretrained-* (build_model)
    save_dir: str = II("checkpoint.save_dir")
    restore_file: str = II("checkpoint.restore_file")


@register_task("xmrc_span", dataclass=XMRCSpanConfig)
class XMRCSpanTask(GraphPairTask):
    """Span extraction for GraFusion-MRC (paper eq. 5, for the target and the source stream)."""

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        self.span_scorers = {}

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        reader = PairReader(os.path.join(self.cfg.data, split))
        self.check_split(reader)
        if not reader.has_span:
            raise GraFusionError(f"{reader.prefix}: the split has no answer spans (field 'span'); "
                                 "xmrc_span needs QA data, not parallel text")
        scored = self.cfg.eval_span_f1 and split != self.cfg.train_subset
        self.datasets[split] = GraphPairDataset(
            reader, self.dictionary.pad(), shuffle=not self.cfg.no_shuffle, seed=self.cfg.seed,
            group_questions=scored, name=split)
        if scored and len(reader.languages) > 1:  # a combined split: scored per language
            paths = gold_files(self.cfg.data, split, self.cfg.eval_span_stream, reader.languages)
            self.span_scorers[split] = LanguageSpanScorer(
                reader, {lang: read_gold(path) for lang, path in paths.items()},
                stream=self.cfg.eval_span_stream, metric=self.cfg.eval_span_metric,
                default_lang=self.cfg.eval_span_lang, max_answer_length=self.cfg.max_answer_length)
        elif scored:
            path = gold_file(self.cfg.data, split, self.cfg.eval_span_stream)
            contexts, answers = read_gold(path)
            check_gold_contexts(reader, contexts, self.cfg.eval_span_stream, path)
            self.span_scorers[split] = SpanScorer(
                reader, contexts, answers, stream=self.cfg.eval_span_stream,
                lang=self.cfg.eval_span_lang, metric=self.cfg.eval_span_metric,
                max_answer_length=self.cfg.max_answer_length)
        logger.info("%s: %d examples", reader.prefix, len(reader))
        return self.datasets[split]

    def valid_step(self, sample, model, criterion):
        """The criterion's loss and logging output; on a split with ``--eval-span-f1``, plus the
        summable ``span_f1`` / ``span_em`` / ``span_n`` of the batch's decoded answers."""
        scorer = self.span_scorers.get(sample.get("split"))
        if scorer is None:
            return super().valid_step(sample, model, criterion)
        outputs = []
        hook = model.register_forward_hook(lambda module, args, out: outputs.append(out))
        try:
            loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        finally:
            hook.remove()
        spans = [out for out in outputs if isinstance(out, dict) and f"{scorer.stream}_start" in out]
        if not spans:
            model.eval()
            with torch.no_grad():
                spans = [model(**sample["net_input"])]
        logging_output.update(scorer.decode_and_score(sample, spans[-1]))
        return loss, sample_size, logging_output

    def reduce_metrics(self, logging_outputs, criterion):
        """The criterion's metrics, and ``f1`` / ``em`` (percent of questions) where the batches
        were decoded."""
        super().reduce_metrics(logging_outputs, criterion)
        n = sum(float(log.get("span_n", 0)) for log in logging_outputs)
        if n:
            for key, name in (("span_f1", "f1"), ("span_em", "em")):
                total = sum(float(log.get(key, 0)) for log in logging_outputs)
                metrics.log_scalar(name, 100.0 * total / n, n, round=2)
            reduce_per_language(logging_outputs)  # f1_<lang>, f1_avg, ... of a combined split

    def build_model(self, cfg, from_checkpoint=False):
        """Initialise from ``--pretrained-xlmr`` or ``--pretrained-sagraph`` (+adp) unless the
        model is rebuilt from a checkpoint (prediction) or ``fairseq-train`` resumes one: the
        checkpoint holds the weights."""
        model = super().build_model(cfg, from_checkpoint)
        if from_checkpoint:
            return model
        xlmr, sa_graph = getattr(cfg, "pretrained_xlmr", None), getattr(cfg, "pretrained_sagraph", None)
        if xlmr and sa_graph:
            raise GraFusionError("give --pretrained-sagraph or --pretrained-xlmr, not both (the "
                                 "pre-training checkpoint already holds the XLM-R weights)")
        self.load_xlmr(model, cfg, from_checkpoint)
        if sa_graph and not self.skip_pretrained("--pretrained-sagraph", sa_graph):
            from ..models.sa_graph_init import load_pretrained_sa_graph

            load_pretrained_sa_graph(model, sa_graph, self.dictionary)
        return model
