"""What the plugin's tasks share: a data directory with ``dict.txt`` and binarized pair splits,
one dictionary for both languages, and initialisation from XLM-R; and a one-line refusal of
fairseq's text-generation commands (``fairseq-generate``, ``fairseq-interactive``), which do not
apply to span extraction: the error names the command to use instead.

The task records the sha256 of ``DATA/dict.txt`` in its state (``dictionary_sha256``), which
fairseq saves in every checkpoint (``task_state``), so a checkpoint carries the dictionary it was
trained with; a model rebuilt from a checkpoint over a data directory of another dictionary, or a
split binarized with another one, is refused with one line (:mod:`..data.fingerprints`)."""
import logging
import os
import sys

from fairseq.data import Dictionary
from fairseq.tasks import FairseqTask

from .. import checkpoint_policy
from ..data.fingerprints import DICTIONARY, check_model_dictionary, check_split_dictionary, file_sha256
from ..errors import GraFusionError, one_line_for

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


GENERATION_COMMANDS = ("generate", "interactive")


def fairseq_command():
    """The fairseq command this process runs (``"generate"`` for ``fairseq-generate`` and for
    ``python -m fairseq_cli.generate``), or None."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.startswith("fairseq_cli."):
        return spec.name.split(".", 1)[1]
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return name[len("fairseq-"):] if name.startswith("fairseq-") else None


class GraphPairTask(FairseqTask):
    """Base of ``xmrc_span`` and ``sa_graph_pretrain``."""

    # what to run instead of fairseq-generate / fairseq-interactive (one line; per task)
    instead_of_generation = ("grafusion-predict --path CHECKPOINT --data DATA --split SPLIT "
                             "--output pred.json (or the hub: GraFusionModel.from_pretrained)")

    @classmethod
    def refuse_generation(cls, name, command):
        raise GraFusionError(f"{command} does not apply to task {name}, which generates no text: "
                             f"use {cls.instead_of_generation}")

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
    def add_args(cls, parser):
        """fairseq calls this for the task the command line names, before it loads any checkpoint
        (fairseq-validate builds the model and task of ``--path`` from the file): from then on a
        checkpoint must be one of ours (:func:`~fairseq_grafusion.checkpoint_policy.claim_process`).
        The options themselves are the dataclass's, as in every fairseq task."""
        checkpoint_policy.claim_process()
        super().add_args(parser)

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        checkpoint_policy.claim_process()
        one_line_for(OSError)  # this process runs our task: a file error is one line too
        command = fairseq_command()
        if command in GENERATION_COMMANDS:
            cls.refuse_generation(getattr(cfg, "_name", None) or cls.__name__, f"fairseq-{command}")
        if not os.path.isdir(cfg.data):
            raise GraFusionError(f"data directory {cfg.data} does not exist")
        cls.check_config(cfg)
        dictionary = load_task_dictionary(cfg.data)
        logger.info("dictionary: %d types", len(dictionary))
        task = cls(cfg, dictionary)
        task.state.merge_state_dict({DICTIONARY: file_sha256(os.path.join(cfg.data, "dict.txt"))})
        return task

    def checkpoint_to_restore(self):
        """The checkpoint ``fairseq-train`` is about to restore the whole model from
        (:func:`.checkpoint_guard.restore_path`), if it exists; None outside ``fairseq-train`` or
        for a run that starts anew."""
        from ..checkpoint_guard import restore_path

        try:
            save_dir, restore = self.cfg.save_dir, self.cfg.restore_file
        except Exception:  # a task config built without fairseq's checkpoint section
            return None
        if not isinstance(save_dir, str) or not isinstance(restore, str) or "${" in save_dir + restore:
            return None
        path = restore_path(save_dir, restore)
        return path if os.path.isfile(path) else None

    def skip_pretrained(self, option, path):
        """True (and logged) when a run resumes: its checkpoint replaces every weight, so the
        pre-trained ``path`` of ``option`` is not read (XLM-R-large: 12 s and 2.7 GiB)."""
        restoring = self.checkpoint_to_restore()
        if restoring:
            logger.info("%s %s not read: the weights come from %s (resuming)", option, path, restoring)
        return bool(restoring)

    def load_xlmr(self, model, cfg, from_checkpoint):
        """``--pretrained-xlmr DIR`` for a new model (a rebuilt one gets its checkpoint's weights,
        a resumed run its ``checkpoint_last.pt``'s)."""
        path = getattr(cfg, "pretrained_xlmr", None)
        if path and not from_checkpoint and self.skip_pretrained("--pretrained-xlmr", path):
            return
        if path and not from_checkpoint:
            from ..models.xlmr_init import load_xlmr

            load_xlmr(model, path, self.dictionary,
                      init_span_heads=getattr(cfg, "init_span_heads_from_pretrained", False))
        elif getattr(cfg, "init_span_heads_from_pretrained", False) and not from_checkpoint:
            raise GraFusionError("--init-span-heads-from-pretrained needs --pretrained-xlmr (a HuggingFace "
                                 "XLMRobertaForQuestionAnswering directory)")

    def build_generator(self, models, args, **kwargs):
        self.refuse_generation(getattr(self.cfg, "_name", None), "build_generator")

    def build_dataset_for_inference(self, src_tokens, src_lengths, **kwargs):
        self.refuse_generation(getattr(self.cfg, "_name", None), "build_dataset_for_inference")

    def max_positions(self):
        return None

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
