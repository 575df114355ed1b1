"""Which fairseq translation models translate a missing side, and how their text is prepared.

A fairseq transformer translates one direction, so there is one model per direction, named by its
role and, in code, by ``from_lang`` / ``to_lang`` (``src`` / ``tgt`` are the QA pair's streams,
English and the target language, whichever way a model translates: docs/design.md, "Naming"):

* ``train`` translates English -> target (translate-train: a QA file without its target side),
* ``test`` translates target -> English (translate-test: a QA file without its English side).

Each direction is what ``fairseq-interactive`` is given for that model: the model directory and
checkpoint (``--path``), the data directory with ``dict.LANG.txt`` of both languages (``data``;
default the model directory), the tokenizer (``--tokenizer moses``) and the BPE with its codes or model file
(``--bpe fastbpe --bpe-codes FILE``)::

    MTConfig(train=MTDirection("wmt19.en-de", checkpoint="model1.pt", tokenizer="moses",
                               bpe="fastbpe", bpe_codes="wmt19.en-de/bpecodes"),
             test=MTDirection("wmt19.de-en", checkpoint="model1.pt", tokenizer="moses",
                              bpe="fastbpe", bpe_codes="wmt19.de-en/bpecodes"))

Without ``bpe_codes`` the file fairseq's hub looks for in the model directory is used
(``bpecodes`` or ``code``; ``sentencepiece.bpe.model``; for ``gpt2`` the directory holding
``encoder.json`` and ``vocab.bpe``).  Each checkpoint is checked before it is built
(:func:`fairseq_grafusion.checkpoint_policy.translation`, :func:`.translate.direction_check`): a
fairseq transformer translation model whose ``cfg.task.source_lang`` / ``target_lang`` are the
direction asked for.
``grafusion-preprocess``, ``grafusion-predict --qa`` and the hub take the same options
(``--mt-model`` for both directions, ``--mt-train-*`` / ``--mt-test-*`` for one).
"""
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from fairseq_grafusion.errors import GraFusionError

# fairseq's registry names (fairseq/data/encoders)
TOKENIZERS = ("moses", "nltk", "space")
BPES = ("fastbpe", "subword_nmt", "sentencepiece", "gpt2")
# the files fairseq's hub_utils.from_pretrained picks up in a model directory, per BPE
DEFAULT_CODES = {"fastbpe": ("bpecodes", "code"), "subword_nmt": ("bpecodes", "code"),
                 "sentencepiece": ("sentencepiece.bpe.model",), "gpt2": (".",)}
GPT2_FILES = ("encoder.json", "vocab.bpe")
ROLES = {"train": "translate-train, English -> target", "test": "translate-test, target -> English"}


@dataclass
class MTDirection:
    """One translation model: what ``fairseq-interactive`` would be given for it."""

    model: Optional[str] = None  # model directory
    checkpoint: str = "model.pt"  # in the model directory
    data: Optional[str] = None  # directory with dict.LANG.txt of both languages (default: model)
    tokenizer: Optional[str] = None  # TOKENIZERS
    bpe: Optional[str] = None  # BPES
    bpe_codes: Optional[str] = None  # codes / SentencePiece model / gpt2 directory
    beam: int = 5

    def resolved(self):
        """This direction with its directories and files absolute (``checkpoint`` is a file
        name inside ``model``)."""
        from fairseq_grafusion.files import resolved

        return replace(self, model=resolved(self.model), data=resolved(self.data),
                       bpe_codes=resolved(self.bpe_codes))

    def check(self, option):
        """One line naming ``option`` (``--mt-train`` / ``--mt-test``) for a bad value."""
        if not self.model:
            return
        if self.tokenizer not in (None,) + TOKENIZERS:
            raise GraFusionError(f"{option}-tokenizer {self.tokenizer}: choose one of {', '.join(TOKENIZERS)}")
        if self.bpe not in (None,) + BPES:
            raise GraFusionError(f"{option}-bpe {self.bpe}: choose one of {', '.join(BPES)}")
        if self.beam < 1:
            raise GraFusionError(f"{option}-beam must be >= 1, got {self.beam}")
        if self.data is not None and not os.path.isdir(self.data):
            raise GraFusionError(f"{option}-data {self.data}: not a directory")
        if self.bpe_codes and not self.bpe:
            raise GraFusionError(f"{option}-bpe-codes {self.bpe_codes}: name the BPE with {option}-bpe")
        if self.bpe:
            self.bpe_codes = self.codes_file(option)

    def codes_file(self, option):
        """``bpe_codes``, or the model directory's file of that BPE (fairseq's names)."""
        if self.bpe_codes:
            path = self.bpe_codes
        elif self.bpe == "gpt2":
            path = self.model
        else:
            found = [os.path.join(self.model, n) for n in DEFAULT_CODES[self.bpe]
                     if os.path.isfile(os.path.join(self.model, n))]
            if not found:
                raise GraFusionError(f"{option}-bpe {self.bpe}: give {option}-bpe-codes FILE (no "
                                     f"{' or '.join(DEFAULT_CODES[self.bpe])} in {self.model})")
            path = found[0]
        if self.bpe == "gpt2":
            missing = [n for n in GPT2_FILES if not os.path.isfile(os.path.join(path, n))]
            if missing:
                raise GraFusionError(f"{option}-bpe-codes {path}: gpt2 needs a directory with "
                                     f"{' and '.join(GPT2_FILES)} ({', '.join(missing)} missing)")
        elif not os.path.isfile(path):
            raise GraFusionError(f"{option}-bpe-codes {path}: file not found")
        return path


@dataclass
class MTConfig:
    """The two directions' models (see the module docstring); either may be absent."""

    train: MTDirection = field(default_factory=MTDirection)
    test: MTDirection = field(default_factory=MTDirection)

    def __post_init__(self):
        for role in ROLES:
            value = getattr(self, role)
            if isinstance(value, dict):
                setattr(self, role, MTDirection(**value))
            getattr(self, role).check(f"--mt-{role}")

    @classmethod
    def both(cls, model, **options):
        """One set of options for both directions (``--mt-model DIR``)."""
        return cls(train=MTDirection(model, **options), test=MTDirection(model, **options))

    def __bool__(self):
        return bool(self.train.model or self.test.model)

    def resolved(self):
        """Both directions with absolute paths (:meth:`MTDirection.resolved`)."""
        return replace(self, train=self.train.resolved(), test=self.test.resolved())

    def fingerprint(self):
        """What the ``pairs`` stage's output depends on."""
        return {role: asdict(getattr(self, role)) for role in ROLES if getattr(self, role).model}

    def translator_for(self, en_lang, xx_lang):
        """``translator_for(from_lang, to_lang)`` for :func:`.pairing.make_units`, between the
        QA pair's English ``en_lang`` (its ``src`` stream) and target language ``xx_lang``: the
        model of the direction asked for, loaded on first use, then kept."""
        from .translate import load_hub_translator

        loaded = {}

        def get(from_lang, to_lang):
            role = "train" if (from_lang, to_lang) == (en_lang, xx_lang) else "test"
            direction = getattr(self, role)
            if not direction.model:
                raise GraFusionError(f"questions need a {from_lang}->{to_lang} translation "
                                     f"({ROLES[role].split(',')[0]}): give --mt-{role}-model DIR "
                                     "(or --mt-model DIR)")
            if role not in loaded:
                loaded[role] = load_hub_translator(direction, from_lang, to_lang, f"--mt-{role}-model")
            return loaded[role]

        return get
