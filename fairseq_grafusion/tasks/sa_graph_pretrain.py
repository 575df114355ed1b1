"""Task ``sa_graph_pretrain``: pre-training the SA-Graph on parallel sentences (paper section 3.4,
the ``+adp`` variant), with criterion ``sa_graph_pretrain`` (``L_TLM + L_SA``).

``DATA`` holds ``dict.txt`` and splits in the plugin's binary pair format, as written by
``grafusion-preprocess parallel`` (``PairWriter(prefix, vocab, with_span=False)``: one sentence
pair per example, ``[<s> sentence </s>]`` per stream, token-to-word maps, alignment and
dependency edges).  Splits with answer spans (QA data) are accepted too; the spans are ignored.
Every batch is masked at word-node level by :class:`~fairseq_grafusion.data.GraphMaskingDataset`
(mono-lingual or cross-lingual masking, 1/2 each).  The model gets the TLM and recovery heads
instead of the span heads; ``--pretrained-xlmr DIR`` starts pre-training from XLM-R.  The
resulting checkpoint initialises fine-tuning: ``--task xmrc_span --pretrained-sagraph CKPT``.
"""
import logging
import os
from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import register_task
from omegaconf import II, MISSING

from ..data import GraphMaskingDataset, GraphPairDataset, PairReader
from ..errors import GraFusionError
from .graph_pair_task import GraphPairTask

logger = logging.getLogger(__name__)


@dataclass
class SAGraphPretrainConfig(FairseqDataclass):
    data: str = field(default=MISSING, metadata={"help": "binarized parallel data directory"})
    mask_prob: float = field(default=0.15, metadata={
        "help": "fraction of word nodes masked: of the chosen language's nodes (mono-lingual) or "
                "of the pair's alignment components (cross-lingual)"})
    mono_lingual_prob: float = field(default=0.5, metadata={
        "help": "probability that a batch is masked mono-lingually, else cross-lingually "
                "(paper: 1/2; 1 or 0 for one strategy only, as in section 4.4)"})
    leave_unmasked_prob: float = field(default=0.0, metadata={
        "help": "fraction of masked words left unchanged (BERT's 80/10/10: 0.1; default 0)"})
    random_token_prob: float = field(default=0.0, metadata={
        "help": "fraction of masked words replaced by random pieces (80/10/10: 0.1; default 0)"})
    no_shuffle: bool = field(default=False, metadata={"help": "keep the split's order"})
    seed: int = II("common.seed")
    # where fairseq-train restores from: a resumed run does not read --pretrained-xlmr (build_model)
    save_dir: str = II("checkpoint.save_dir")
    restore_file: str = II("checkpoint.restore_file")


@register_task("sa_graph_pretrain", dataclass=SAGraphPretrainConfig)
class SAGraphPretrainTask(GraphPairTask):
    """TLM + graph-node recovery on parallel sentence pairs with their SA-Graph."""

    instead_of_generation = ("its checkpoints to initialise fine-tuning (--pretrained-sagraph), "
                             "then grafusion-predict")

    @classmethod
    def check_config(cls, cfg):
        if not 0.0 < cfg.mask_prob < 1.0:
            raise GraFusionError(f"--mask-prob must be between 0 and 1, got {cfg.mask_prob}")
        if not 0.0 <= cfg.mono_lingual_prob <= 1.0:
            raise GraFusionError(
                f"--mono-lingual-prob must be between 0 and 1, got {cfg.mono_lingual_prob}")
        replaced = cfg.leave_unmasked_prob + cfg.random_token_prob
        if min(cfg.leave_unmasked_prob, cfg.random_token_prob) < 0 or replaced > 1:
            raise GraFusionError("--leave-unmasked-prob and --random-token-prob must be >= 0 "
                                 f"with a sum <= 1, got {replaced}")

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        reader = PairReader(os.path.join(self.cfg.data, split))
        self.check_split(reader)
        pairs = GraphPairDataset(reader, self.dictionary.pad(), shuffle=not self.cfg.no_shuffle,
                                 seed=self.cfg.seed)
        self.datasets[split] = GraphMaskingDataset(
            pairs, self.dictionary, seed=self.cfg.seed, mask_prob=self.cfg.mask_prob,
            mono_lingual_prob=self.cfg.mono_lingual_prob,
            leave_unmasked_prob=self.cfg.leave_unmasked_prob,
            random_token_prob=self.cfg.random_token_prob)
        self.datasets[split].set_epoch(epoch)
        logger.info("%s: %d sentence pairs%s", reader.prefix, len(reader),
                    " (answer spans ignored)" if reader.has_span else "")
        return self.datasets[split]

    def build_model(self, cfg, from_checkpoint=False):
        if getattr(cfg, "pretrained_sagraph", None):
            raise GraFusionError("--pretrained-sagraph initialises fine-tuning (--task xmrc_span); "
                                 "to continue pre-training use --restore-file or "
                                 "--finetune-from-model")
        model = super().build_model(cfg, from_checkpoint)
        model.register_pretraining_heads()
        self.load_xlmr(model, cfg, from_checkpoint)
        return model
