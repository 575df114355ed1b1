"""What the plugin's tasks share: a data directory with ``dict.txt`` and binarized pair splits,
one dictionary for both languages, and initialisation from XLM-R.

The task records the sha256 of ``DATA/dict.txt`` in its state (``dictionary_sha256``), which
fairseq saves in every checkpoint (``task_state``), so a checkpoint carries the dictionary it was
trained with; a model rebuilt from a checkpoint over a data directory of another dictionary, or a
split binarized with another one, is refused with one line (:mod:`..data.fingerprints`)."""
import logging
import os

from fairseq.data import Dictionary
from fairseq.tasks import FairseqTask

from ..data.fingerprints import DICTIONARY, check_model_dictionary, check_split_dictionary, file_sha256
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

    @property
    def dictionary_sha256(self):
        """sha256 of ``DATA/dict.txt`` (part of the task's state, saved in checkpoints)."""
        return self.state.state_dict.get(DICTIONARY)

    def load_state_dict(self, state_dict):
        """A checkpoint's task state (fairseq: rebuilding a model); its dictionary must be ours."""
        check_model_dictionary(state_dict.get(DICTIONARY), os.path.join(self.cfg.data, "dict.txt"),
                               "the checkpoint", self.dictionary_sha256)
        super().load_state_dict(state_dict)

    def check_split(self, reader):
        """A split binarized with another dictionary than ``DATA/dict.txt`` is one line."""
        check_split_dictionary(reader, os.path.join(self.cfg.data, "dict.txt"), self.dictionary_sha256,
                               len(self.dictionary))

    @classmethod
    def check_config(cls, cfg):
        """One-line errors for option values that do not fit (subclasses add theirs)."""

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        if not os.path.isdir(cfg.data):
            raise GraFusionError(f"data directory {cfg.data} does not exist")
        cls.check_config(cfg)
        dictionary = load_task_dictionary(cfg.data)
        logger.info("dictionary: %d types", len(dictionary))
        task = cls(cfg, dictionary)
        task.state.merge_state_dict({DICTIONARY: file_sha256(os.path.join(cfg.data, "dict.txt"))})
        return task

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
