"""The translation options of ``grafusion-preprocess`` and ``grafusion-predict --qa``: argparse
for :class:`fairseq_grafusion.preprocess.mt_config.MTConfig`.

``--mt-model DIR`` and the ``--mt-*`` options below it apply to both directions; ``--mt-train-*``
(English -> target, translate-train) and ``--mt-test-*`` (target -> English, translate-test)
set one direction and take precedence.  The names are fairseq-interactive's (``--path``,
``--tokenizer``, ``--bpe``, ``--bpe-codes``, ``--beam``) under an ``--mt-`` prefix.
"""
import dataclasses

from .mt_config import BPES, ROLES, TOKENIZERS, MTConfig, MTDirection

_FIELDS = tuple(f.name for f in dataclasses.fields(MTDirection))  # --mt-NAME, --mt-ROLE-NAME


def add_mt_arguments(parser):
    """The ``--mt-*`` options, in their own argument group of ``parser``."""
    g = parser.add_argument_group(
        "translation of a missing side (fairseq translation models, one per direction)",
        "--mt-model and the --mt-* options apply to both directions; --mt-train-* (English -> "
        "target, translate-train) and --mt-test-* (target -> English, translate-test) to one")
    g.add_argument("--mt-model", metavar="DIR", help="fairseq translation model directory; its "
                   "checkpoint must translate the direction it is used for")
    g.add_argument("--mt-checkpoint", metavar="FILE", help="checkpoint file in the model directory "
                   "(default model.pt)")
    g.add_argument("--mt-data", metavar="DIR", help="directory with dict.SRC.txt and dict.TGT.txt "
                   "(default: the model directory)")
    g.add_argument("--mt-tokenizer", choices=TOKENIZERS, help="the model's tokenizer, as fairseq "
                   "names it (fairseq's wmt models: moses)")
    g.add_argument("--mt-bpe", choices=BPES, help="the model's BPE, as fairseq names it (fastbpe "
                   "codes work without the fastBPE module)")
    g.add_argument("--mt-bpe-codes", "--mt-bpe-model", metavar="FILE", dest="mt_bpe_codes",
                   help="codes (fastbpe, subword_nmt), SentencePiece model, or for gpt2 the "
                   "directory with encoder.json and vocab.bpe (default: the model directory's "
                   "bpecodes / code / sentencepiece.bpe.model)")
    g.add_argument("--mt-beam", type=int, metavar="N", help="beam size (default 5)")
    for role, what in ROLES.items():
        for name, kind in (("model", "DIR"), ("checkpoint", "FILE"), ("data", "DIR"),
                           ("tokenizer", TOKENIZERS), ("bpe", BPES), ("bpe-codes", "FILE"),
                           ("beam", "N")):
            extra = {"choices": kind} if isinstance(kind, tuple) else {"metavar": kind}
            if name == "beam":
                extra["type"] = int
            g.add_argument(f"--mt-{role}-{name}", help=f"--mt-{name} of the {what} model", **extra)
    return g


def pop_mt_config(options):
    """Remove the ``mt_*`` entries of ``options`` (``vars(args)``); the :class:`MTConfig` they
    make, or None without a model."""
    values = {key: options.pop(key) for key in list(options) if key.startswith("mt_")}
    directions = {}
    for role in ROLES:
        chosen = {}
        for name in _FIELDS:
            value = values.get(f"mt_{role}_{name}")
            value = values.get(f"mt_{name}") if value is None else value
            if value is not None:
                chosen[name] = value
        directions[role] = MTDirection(**chosen)
    cfg = MTConfig(**directions)
    return cfg if cfg else None
