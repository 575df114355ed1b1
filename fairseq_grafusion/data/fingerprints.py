"""Fingerprints of what a binarized split was made from, checked where data meets a model.

* **The dictionary.**  A split's manifest records the sha256 of the ``dict.txt`` it was binarized
  with (``dictionary_sha256``), and a task records the one it trains with in its config
  (``dictionary_sha256``, saved in every checkpoint).  Token ids mean nothing under another
  dictionary: one of the same size gives wrong answers without an error, a smaller one an index
  error deep inside the model.  Reading a split under another ``DATA/dict.txt``, or using a
  checkpoint with a data directory of another dictionary, is one line naming both files.
* **The contexts.**  Per stream, the sha256 of the split's questions' ``(id, context)``
  (``contexts_sha256``), so that a ``--gold`` file of another language or stream (question ids
  repeat across the languages of MLQA / XQuAD) is refused before decoding instead of answers being
  cut from the wrong text.

Splits written before these fields existed are read without the checks.  No torch import.
"""
import hashlib

from ..errors import GraFusionError

DICTIONARY = "dictionary_sha256"
CONTEXTS = "contexts_sha256"
_STREAMS = {"src": "source (English)", "tgt": "target"}


def file_sha256(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise GraFusionError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


def contexts_sha256(ids, contexts):
    """sha256 over ``id<TAB>context`` of the distinct ``ids`` (sorted), contexts by id."""
    h = hashlib.sha256()
    for qid in sorted(set(ids)):
        h.update(f"{qid}\t{contexts[qid]}\0".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def manifest_fields(dictionary=None, golds=None):
    """What :class:`~.pair_binary.PairWriter` adds to a split's manifest: ``dictionary`` (a
    ``dict.txt`` path) and ``golds``, the gold files of the split's streams as
    :func:`~fairseq_grafusion.squad.read_squad` gives them (``{stream: (passages, questions)}``),
    each optional."""
    fields = {}
    if dictionary:
        fields[DICTIONARY] = file_sha256(dictionary)
    if golds:
        fields[CONTEXTS] = {
            stream: contexts_sha256([q["id"] for q in questions],
                                    {q["id"]: passages[q["passage"]]["context"] for q in questions})
            for stream, (passages, questions) in golds.items()}
    return fields


def _short(sha):
    return str(sha)[:12]


def check_split_dictionary(reader, dict_path, dict_sha=None, vocab_size=None):
    """A split binarized with another dictionary than ``dict_path`` is one line; a split from
    before the fingerprint at least has no token id beyond ``vocab_size``."""
    recorded = getattr(reader, "meta", {}).get(DICTIONARY)
    if not recorded:
        if vocab_size is not None and hasattr(reader, "max_token"):
            largest = reader.max_token()
            if largest >= vocab_size:
                raise GraFusionError(f"{reader.prefix}: token id {largest} is beyond the {vocab_size} "
                                     f"pieces of {dict_path}: the split was binarized with another dictionary")
        return
    dict_sha = dict_sha or file_sha256(dict_path)
    if recorded != dict_sha:
        raise GraFusionError(
            f"{reader.prefix}.meta.json: the split was binarized with another dictionary than "
            f"{dict_path} (sha256 {_short(recorded)} vs {_short(dict_sha)}); put the dict.txt it was "
            "binarized with in the data directory, or binarize it again with this one")


def check_model_dictionary(trained_sha, dict_path, model_path, dict_sha=None):
    """A model trained with another dictionary than ``dict_path`` is one line naming both."""
    if not trained_sha:
        return
    dict_sha = dict_sha or file_sha256(dict_path)
    if trained_sha != dict_sha:
        raise GraFusionError(
            f"{model_path} was trained with another dictionary than {dict_path} (sha256 "
            f"{_short(trained_sha)} vs {_short(dict_sha)}): its token ids would mean other "
            "pieces; use a data directory binarized with the checkpoint's dict.txt")


def check_gold_contexts(reader, contexts, stream, gold_path):
    """The contexts ``{id: context}`` read from ``gold_path`` are those of the split's ``stream``
    (same language, same stream); one line otherwise, naming the stream the file does hold."""
    recorded = getattr(reader, "meta", {}).get(CONTEXTS) or {}
    if stream not in recorded or len(getattr(reader, "languages", [None])) > 1:
        return
    ids = [q for q in dict.fromkeys(reader.ids)]
    missing = next((q for q in ids if q not in contexts), None)
    if missing is not None:
        raise GraFusionError(f"{gold_path}: question {missing!r} of split {reader.prefix} is not in "
                             "this gold file")
    found = contexts_sha256(ids, contexts)
    if found == recorded[stream]:
        return
    other = next((s for s, sha in recorded.items() if s != stream and sha == found), None)
    lang = reader.languages[0] if stream == "tgt" else reader.meta.get("src_lang")
    what = (f"it holds the {_STREAMS[other]} stream's contexts (answers are cut from the {stream} "
            f"stream: give its file, or --stream {other})" if other else
            "its contexts differ from the text the split was binarized from (a file of another "
            f"language?); give the {stream} stream's file")
    raise GraFusionError(f"{gold_path}: not the {_STREAMS[stream]}{f' ({lang})' if lang else ''} gold "
                         f"file of split {reader.prefix}: {what} (default {reader.prefix}.{stream}.json)")
