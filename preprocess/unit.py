"""The pipeline's unit: one text pair that the stages ``words``, ``align``, ``parse`` and
``binarize`` process, made by ``pairs`` (:mod:`.pairing`, :mod:`.parallel`) and stored in the
``pairs`` stage file as one JSON object per line (:meth:`Unit.record`, :meth:`Unit.from_record`).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

QUESTION_KEYS = ("kind", "uid", "group", "passage", "src", "tgt", "answers", "project")
PAIR_KEYS = ("kind", "uid", "group", "src", "tgt")


@dataclass(frozen=True)
class Unit:
    """A text pair.

    * ``kind``: ``"p"`` a passage pair, ``"q"`` a question pair, ``"s"`` a parallel sentence pair;
    * ``uid``: the unit's id (``p<group>`` for a passage, the question id, the 1-based line number
      of a sentence pair), the id of its examples;
    * ``group``: the passage group (a passage and its questions) or the 0-based line index; a
      shard is the ``shard_id``-th of ``num_shards`` contiguous blocks of groups;
    * ``src`` / ``tgt``: the source (English) and the target text;
    * questions only: ``passage``, the uid of the question's passage unit; ``answers``, per side
      (``"src"``, ``"tgt"``) the SQuAD answers given (``[]`` for a translated side);
      ``project``, the translated side that the ``align`` stage projects the answer to, or None.
    """

    kind: str
    uid: str
    group: int
    src: str
    tgt: str
    passage: Optional[str] = None
    answers: Optional[Dict[str, List[dict]]] = None
    project: Optional[str] = None

    def text(self, side):
        """The text of ``side`` (``"src"`` or ``"tgt"``)."""
        return self.src if side == "src" else self.tgt

    def record(self):
        """The unit as the ``pairs`` stage file holds it (the question fields on questions only)."""
        return {key: getattr(self, key) for key in (QUESTION_KEYS if self.kind == "q" else PAIR_KEYS)}

    @classmethod
    def from_record(cls, record):
        """The unit of a :meth:`record`."""
        return cls(**record)
