"""Machine translation of a missing side with the user's fairseq models (one per direction).

A direction (:class:`.mt_config.MTDirection`) is loaded as ``fairseq-interactive`` loads a model:
the checkpoint (read once and checked before anything is built: a fairseq transformer of the
``translation`` task, :func:`fairseq_grafusion.checkpoint_policy.translation`, translating the
direction asked for, :func:`direction_check`), the dictionaries of its data directory, its
tokenizer and BPE, in a fairseq ``GeneratorHubInterface``.  fastBPE
codes are applied by the ``fastBPE`` module when it is installed, else through subword-nmt
(:class:`.fastbpe_codes.FastBPECodes`, the same segmentation).  Any object with
``translate(list_of_str) -> list_of_str`` works in place of a :class:`Translator` (tests use fake
ones).  Texts are translated sentence by sentence (rule-based sentence split) and re-joined.
"""
import importlib.util
import os

from fairseq_grafusion.errors import GraFusionError

from .wordseg import split_sentences, tokenize

_NO_SPACE_LANGS = {"zh", "ja", "th", "lo", "km", "my"}
# the override naming the codes / model file of each BPE (fairseq's config field)
_CODES_FIELD = {"fastbpe": "bpe_codes", "subword_nmt": "bpe_codes", "sentencepiece": "sentencepiece_model"}
_NEEDS = {"moses": "sacremoses", "subword_nmt": "subword_nmt", "fastbpe": "subword_nmt",
          "sentencepiece": "sentencepiece", "nltk": "nltk"}


def fastbpe_installed():
    """Whether the ``fastBPE`` module is importable (else its codes go through subword-nmt)."""
    return importlib.util.find_spec("fastBPE") is not None


class Translator:
    """A loaded direction: ``translate(sentences)`` as the hub's, with the direction's beam; counts
    the source tokens it met and how many of them the model's dictionary did not know."""

    def __init__(self, hub, beam, name):
        self.hub, self.beam, self.name = hub, beam, name
        self.tokens = self.unknown = 0

    def encode(self, sentence):
        """The source token ids of ``sentence`` (tokenizer, BPE, dictionary)."""
        return self.hub.encode(sentence)

    def translate(self, sentences):
        ids = [self.encode(s) for s in sentences]
        unk = self.hub.src_dict.unk()
        self.tokens += sum(len(t) - 1 for t in ids)  # without </s>
        self.unknown += sum(int((t == unk).sum()) for t in ids)
        hypos = self.hub.generate(ids, beam=self.beam)
        return [self.hub.decode(h[0]["tokens"]) for h in hypos]


def _require(name, what):
    module = _NEEDS.get(name)
    if module and importlib.util.find_spec(module) is None:
        raise GraFusionError(f"{what} {name} needs the Python package {module.replace('_', '-')}: "
                             "pip install 'fairseq-grafusion[mt]'")


def load_hub_translator(direction, from_lang, to_lang, option="--mt-model"):
    """A :class:`Translator` for ``from_lang`` -> ``to_lang`` from ``direction`` (an
    :class:`.mt_config.MTDirection`); ``option`` names the model's option in errors."""
    from fairseq import checkpoint_utils, hub_utils

    from fairseq_grafusion import checkpoint_compat, checkpoint_policy

    prefix = option[:-len("-model")] if option.endswith("-model") else option
    model_dir = direction.model
    path = os.path.join(model_dir, direction.checkpoint)
    what = f"{option} {model_dir}: cannot load a {from_lang}->{to_lang} fairseq translation model"
    data = direction.data or model_dir
    if not os.path.isfile(path):
        raise GraFusionError(f"{what} (checkpoint {path} does not exist)")
    for lang in (from_lang, to_lang):
        if not os.path.isfile(os.path.join(data, f"dict.{lang}.txt")):
            raise GraFusionError(f"{what}: {os.path.join(data, f'dict.{lang}.txt')} is missing "
                                 f"(give the dictionaries' directory with {prefix}-data DIR)")
    overrides = {"data": os.path.abspath(data), "source_lang": from_lang,
                 "target_lang": to_lang, "beam": direction.beam}
    if direction.tokenizer:
        _require(direction.tokenizer, f"{prefix}-tokenizer")
        overrides["tokenizer"] = direction.tokenizer
    in_memory_fastbpe = direction.bpe == "fastbpe" and not fastbpe_installed()
    if direction.bpe:
        if not in_memory_fastbpe:
            _require(direction.bpe, f"{prefix}-bpe")
        overrides["bpe"] = None if in_memory_fastbpe else direction.bpe
        if direction.bpe == "gpt2":
            overrides.update(gpt2_encoder_json=os.path.join(direction.bpe_codes, "encoder.json"),
                             gpt2_vocab_bpe=os.path.join(direction.bpe_codes, "vocab.bpe"))
        elif not in_memory_fastbpe:
            overrides[_CODES_FIELD[direction.bpe]] = direction.bpe_codes
    allowed = checkpoint_policy.translation(
        option, extra=direction_check(from_lang, to_lang, option, data))
    try:
        with checkpoint_policy.expecting(allowed):  # the checks: before anything is built
            state = checkpoint_compat.load_checkpoint_to_cpu(path, arg_overrides=overrides)
    except checkpoint_compat.UnreadableCheckpoint as e:
        raise GraFusionError(f"{what} ({e})") from None
    try:
        with checkpoint_compat.trusted_globals():
            models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
                [path], arg_overrides=overrides, state=state)
            if in_memory_fastbpe:  # a checkpoint trained with --bpe fastbpe keeps its section
                from omegaconf import open_dict

                with open_dict(cfg):
                    cfg.bpe = None
            hub = hub_utils.GeneratorHubInterface(cfg, task, models)
        if in_memory_fastbpe:
            from .fastbpe_codes import FastBPECodes

            hub.bpe = FastBPECodes(direction.bpe_codes)
    except GraFusionError:
        raise
    except (Exception, SystemExit) as e:  # fairseq raises many kinds; subword-nmt exits
        raise GraFusionError(f"{what} ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None
    hub.eval()
    return Translator(hub, direction.beam, f"{from_lang}->{to_lang}")


def direction_check(from_lang, to_lang, option="--mt-model", data=None):
    """A check (``state, where``) that a translation checkpoint translates ``from_lang`` ->
    ``to_lang``: as its task's ``source_lang`` / ``target_lang`` say, or, when fairseq-train
    inferred them from the data directory and stored none, as its embedding tables say (the
    encoder's rows are the source dictionary's size, the decoder's the target's:
    ``data/dict.{lang}.txt``; dictionaries of one size cannot tell)."""
    from fairseq_grafusion import checkpoint_policy

    def check(state, where):
        task = checkpoint_policy.resolve(state, where).sections["task"]
        trained = (checkpoint_policy.field_of(task, "source_lang"),
                   checkpoint_policy.field_of(task, "target_lang"))
        how = "cfg.task.source_lang/target_lang"
        if None in trained and data is not None:
            trained, how = _direction_from_embeddings(state, data, from_lang, to_lang), \
                "its embedding tables' sizes"
        if trained and None not in trained and tuple(trained) != (from_lang, to_lang):
            raise GraFusionError(f"{where}: the checkpoint translates {trained[0]}->{trained[1]} "
                                 f"({how}), but {from_lang}->{to_lang} is asked for: give a "
                                 "model of that direction")
    return check


def _direction_from_embeddings(state, data, from_lang, to_lang):
    """``(source, target)`` the embedding sizes show, of the two languages; None if they cannot
    tell (equal dictionary sizes, a dictionary or a table missing)."""
    from fairseq.data import Dictionary

    weights = state.get("model") or {}
    rows = [weights.get(f"{part}.embed_tokens.weight") for part in ("encoder", "decoder")]
    sizes = {}
    for lang in (from_lang, to_lang):
        dict_path = os.path.join(data, f"dict.{lang}.txt")
        if not os.path.isfile(dict_path):
            return None
        sizes[lang] = len(Dictionary.load(dict_path))
    if any(r is None for r in rows) or sizes[from_lang] == sizes[to_lang]:
        return None
    found = {(a, b) for a in sizes for b in sizes if a != b
             and (sizes[a], sizes[b]) == (rows[0].shape[0], rows[1].shape[0])}
    return found.pop() if len(found) == 1 else None


def sentence_spans(text, lang):
    """Character spans of the sentences of ``text``."""
    offsets = tokenize(text, lang)
    starts = split_sentences(text, offsets)
    n = len(offsets) // 2
    bounds = starts + [n]
    return [(offsets[2 * a], offsets[2 * b - 1]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def translate_texts(translator, texts, from_lang, to_lang, batch_size=64):
    """Translate ``texts`` sentence by sentence; returns one translation per text."""
    pieces, owner = [], []
    for k, text in enumerate(texts):
        for s, e in sentence_spans(text, from_lang):
            pieces.append(text[s:e])
            owner.append(k)
    out = []
    for i in range(0, len(pieces), batch_size):
        batch = pieces[i:i + batch_size]
        result = translator.translate(batch)
        if isinstance(result, str):
            result = [result]
        if len(result) != len(batch):
            raise GraFusionError(f"the translator returned {len(result)} translations for {len(batch)} sentences")
        out += [r.strip() for r in result]
    joiner = "" if to_lang in _NO_SPACE_LANGS else " "
    joined = [[] for _ in texts]
    for k, t in zip(owner, out):
        joined[k].append(t)
    return [joiner.join(parts) for parts in joined]
