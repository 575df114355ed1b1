"""SentencePiece + dictionary encoding: character -> token answer mapping and windows on the sample."""
import glob
import json
import os

import numpy as np
import pytest

from conftest import REPO
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.preprocess.encode import Encoder, char_span_to_tokens, windows, word_nodes
from fairseq_grafusion.preprocess.vocab import train_vocab
from fairseq_grafusion.preprocess.wordseg import tokenize

SAMPLE = os.path.join(REPO, "examples", "sample")


def sample_examples():
    out = []
    for path in sorted(glob.glob(os.path.join(SAMPLE, "qa", "*.json"))):
        lang = path.rsplit(".", 2)[-2]
        with open(path, encoding="utf-8") as f:
            for article in json.load(f)["data"]:
                for p in article["paragraphs"]:
                    for q in p["qas"]:
                        out.append((lang, q["id"], p["context"], q["answers"][0]))
    return out


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A small SentencePiece model and fairseq dictionary trained here on the bundled text (its
    1218 characters, Han included, need more than a few hundred pieces)."""
    lines = []
    for _, _, context, _ in sample_examples():
        lines.append(context)
    for path in glob.glob(os.path.join(SAMPLE, "parallel", "*")):
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()
    spm_path, dict_path = train_vocab(lines, str(tmp_path_factory.mktemp("spm")), vocab_size=2000)
    return Encoder(spm_path, dict_path)


def test_every_sample_answer_maps_to_tokens(encoder):
    examples = sample_examples()
    assert len(examples) == 5 * 74  # en, de, zh, ar, ro
    for lang, qid, context, answer in examples:
        offsets = tokenize(context, lang)
        ids, starts, ends, word = encoder.encode(context, offsets)
        assert len(ids) == len(starts) == len(ends) == len(word)
        assert (np.diff(starts) >= 0).all() and (ends >= starts).all()
        node, _, n_nodes = word_nodes(word, len(offsets) // 2)
        assert set(node.tolist()) == set(range(n_nodes))  # every word node has a token
        a, b = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        first, last = char_span_to_tokens(starts, ends, a, b)
        assert first <= last, qid
        span = context[starts[first]:ends[last]]
        assert answer["text"].strip() in span, (lang, qid)  # the smallest token span covers it
        if a in set(starts.tolist()) and b in set(ends.tolist()):  # both ends are piece boundaries
            assert span == answer["text"], (lang, qid)
            decoded = encoder.decode(ids[first:last + 1])
            assert decoded.replace(" ", "") == answer["text"].replace(" ", ""), (lang, qid, decoded)


def test_token_offsets_of_non_ascii_words(encoder):
    text = "Apărarea a cedat 6½ sack-uri, câștigând."
    offsets = tokenize(text, "ro")
    ids, starts, ends, word = encoder.encode(text, offsets)
    for k in range(len(offsets) // 2):
        sel = word == k
        # the pieces of a word tile exactly its characters (the '▁' piece has no width)
        assert starts[sel].min() == offsets[2 * k] and ends[sel].max() == offsets[2 * k + 1]
        covered = "".join(text[s:e] for s, e in zip(starts[sel], ends[sel]))
        assert covered == text[offsets[2 * k]:offsets[2 * k + 1]]


def test_windows_cover_every_word_and_answer(encoder):
    multi = 0
    for lang, qid, context, answer in sample_examples():
        offsets = tokenize(context, lang)
        ids, starts, ends, word = encoder.encode(context, offsets)
        per_word = np.bincount(word, minlength=len(offsets) // 2)
        wins = windows(per_word, budget=64, stride=20)
        seen = np.zeros(len(per_word), dtype=bool)
        for a, b in wins:
            assert per_word[a:b].sum() <= 64 or b - a == 1
            seen[a:b] = True
        assert seen.all()
        assert [w[0] for w in wins] == sorted({w[0] for w in wins})  # strictly increasing starts
        first, last = char_span_to_tokens(starts, ends, answer["answer_start"],
                                          answer["answer_start"] + len(answer["text"]))
        wf, wl = word[first], word[last]
        # consecutive windows overlap by at least budget - stride - (a word) tokens: enough for
        # every answer of the sample
        assert any(a <= wf and wl < b for a, b in wins), (lang, qid)
        multi += len(wins) > 1
    assert multi > 50  # most passages need several windows at this budget


def test_stride_is_the_step_between_window_starts():
    per_word = np.ones(100, dtype=int)
    assert windows(per_word, budget=40, stride=25) == [(0, 40), (25, 65), (50, 90), (75, 100)]
    assert windows(per_word, budget=200, stride=25) == [(0, 100)]
    assert windows(np.array([3, 50, 2]), budget=10, stride=5) == [(0, 1), (1, 2), (2, 3)]


def test_unreadable_models(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(GraFusionError, match="bad.model: cannot load the SentencePiece model"):
        Encoder(str(bad), os.path.join(SAMPLE, "spm", "dict.txt"))
    bad_dict = tmp_path / "dict.txt"
    bad_dict.write_text("a b c\n")
    with pytest.raises(GraFusionError, match="cannot load the fairseq dictionary"):
        Encoder(os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"), str(bad_dict))
