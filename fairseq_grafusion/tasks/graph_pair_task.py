"""What the plugin's tasks share: a data directory with ``dict.txt`` and binarized pair splits,
one dictionary for both languages, and initialisation from XLM-R.

The task records the sha256 of ``DATA/dict.txt`` in its config (``dictionary_sha256``), so every
checkpoint carries the dictionary it was trained with; a model rebuilt from a checkpoint over a
data directory of another dictionary, or a split binarized with another one, is refused with one
line (:mod:`..data.fingerprints`)."""
import logging
import os

from fairseq.data import Dictionary
from fairseq.tasks import FairseqTask

from ..data.fingerprints import check_model_dictionary, check_split_dictionary, file_sha256
from ..errors import GraFusionError

logger = logging.getLogger(__name__)


def load_task_dictionary(data_dir):
    """``DATA/dict.txt`` plus ``<mask>`` (as fairseq's ``masked_lm`` adds it, so that the
    vocabulary has the size of an XLM-R checkpoint's embeddings); one line if it is missing."""
    path = os.path.join(data_dir, "dict.txt")
    if not os.path.isfile(path):
        raise GraFusionError(f"{path} is missing: the data directory needs the dictionary "
                             "the data was binarized with")
    dictionary = Dictionary.load(path)
    dictionary.add_symbol("<mask>")
    return dictionary


class GraphPairTask(FairseqTask):
    """Base of ``xmrc_span`` and ``sa_graph_pretrain``."""

    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary

    @staticmethod
    def record_dictionary(cfg):
        """Compare ``DATA/dict.txt`` with the dictionary ``cfg`` was trained with (a checkpoint's
        config) and record its sha256 in ``cfg`` (saved in the checkpoints of a new run)."""
        path = os.path.join(cfg.data, "dict.txt")
        sha = file_sha256(path)
        check_model_dictionary(getattr(cfg, "dictionary_sha256", None), path, "the checkpoint", sha)
        try:
            cfg.dictionary_sha256 = sha
        except Exception:  # the config of an old checkpoint, without the field: nothing to record
            pass
        return sha

    def check_split(self, reader):
        """A split binarized with another dictionary than ``DATA/dict.txt`` is one line."""
        check_split_dictionary(reader, os.path.join(self.cfg.data, "dict.txt"),
                               getattr(self.cfg, "dictionary_sha256", None))

    @classmethod
    def check_config(cls, cfg):
        """One-line errors for option values that do not fit (subclasses add theirs)."""

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        if not os.path.isdir(cfg.data):
            raise GraFusionError(f"data directory {cfg.data} does not exist")
        cls.check_config(cfg)
        dictionary = load_task_dictionary(cfg.data)
        cls.record_dictionary(cfg)
        logger.info("dictionary: %d types", len(dictionary))
        return cls(cfg, dictionary)

    def load_xlmr(self, model, cfg, from_checkpoint):
        """``--pretrained-xlmr DIR`` for a new model (a rebuilt one gets its checkpoint's weights)."""
        path = getattr(cfg, "pretrained_xlmr", None)
        if path and not from_checkpoint:
            from ..models.xlmr_init import load_xlmr

            load_xlmr(model, path, self.dictionary)

    def max_positions(self):
        return None

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
