"""Machine translation of a missing side with a user-supplied fairseq model (hub interface).

``--mt-model DIR`` is loaded with ``TransformerModel.from_pretrained`` (``DIR/model.pt`` and its
dictionaries, optionally a BPE model); the direction is the one needed: English -> target for
translate-train data without a target file, target -> English for translate-test.  Any object
with ``translate(list_of_str) -> list_of_str`` works in its place (tests use a fake one).
Texts are translated sentence by sentence (rule-based sentence split) and re-joined.
"""
from fairseq_grafusion.errors import GraFusionError

from .wordseg import split_sentences, tokenize

_NO_SPACE_LANGS = {"zh", "ja", "th", "lo", "km", "my"}


def load_hub_translator(model_dir, source_lang, target_lang, checkpoint="model.pt", bpe=None,
                        bpe_model=None, beam=5):
    """A fairseq ``GeneratorHubInterface`` translating ``source_lang`` -> ``target_lang``."""
    from fairseq.models.transformer import TransformerModel

    import os

    from fairseq_grafusion import checkpoint_compat

    path = os.path.join(model_dir, checkpoint)
    try:
        state = checkpoint_compat.load_state(path)
    except GraFusionError as e:
        raise GraFusionError(f"--mt-model {model_dir}: cannot load a {source_lang}->{target_lang} "
                             f"fairseq translation model ({e})") from None
    checkpoint_compat.check_translation(state, path)
    kwargs = {"source_lang": source_lang, "target_lang": target_lang, "beam": beam}
    if bpe == "sentencepiece":
        kwargs.update(bpe="sentencepiece", sentencepiece_model=bpe_model)
    elif bpe == "subword_nmt":
        kwargs.update(bpe="subword_nmt", bpe_codes=bpe_model)
    try:
        hub = TransformerModel.from_pretrained(model_dir, checkpoint_file=checkpoint,
                                               data_name_or_path=model_dir, **kwargs)
    except Exception as e:  # fairseq raises many kinds (missing dict, bad checkpoint, ...)
        raise GraFusionError(f"--mt-model {model_dir}: cannot load a {source_lang}->{target_lang} "
                             f"fairseq translation model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    hub.eval()
    return hub


def sentence_spans(text, lang):
    """Character spans of the sentences of ``text``."""
    offsets = tokenize(text, lang)
    starts = split_sentences(text, offsets)
    n = len(offsets) // 2
    bounds = starts + [n]
    return [(offsets[2 * a], offsets[2 * b - 1]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def translate_texts(translator, texts, source_lang, target_lang, batch_size=64):
    """Translate ``texts`` sentence by sentence; returns one translation per text."""
    pieces, owner = [], []
    for k, text in enumerate(texts):
        for s, e in sentence_spans(text, source_lang):
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
    joiner = "" if target_lang in _NO_SPACE_LANGS else " "
    joined = [[] for _ in texts]
    for k, t in zip(owner, out):
        joined[k].append(t)
    return [joiner.join(parts) for parts in joined]
