"""``--window-pairing``: the source (English) window each target window of a long passage is read
with.  ``alignment`` (the default, unchanged): the one sharing the most passage alignment links (the
one holding the source answer when the target window holds the target answer); ``position``
(FILTER's code): the k-th target window with the k-th source window, the last one when the source
passage has fewer, whatever the links and the answers.

:func:`.binarize.build_group` runs on passages of 3 to 9 windows (``--max-len 40``) with the
bundled sample's SentencePiece model: a few seconds, no pipeline run."""
import os

import numpy as np
import pytest

from conftest import REPO
from fairseq_grafusion.data.span_target import SPAN_FIELD, has_answer
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.preprocess import binarize
from fairseq_grafusion.preprocess.cli import get_parser
from fairseq_grafusion.preprocess.config import PipelineConfig
from fairseq_grafusion.preprocess.encode import Encoder, token_windows
from fairseq_grafusion.preprocess.stages import binarize_stage_key
from fairseq_grafusion.preprocess.unit import Unit
from fairseq_grafusion.preprocess.wordseg import tokenize
from fairseq_grafusion.preprocess.workdir import SplitPaths, fingerprint, key_of

SPM = os.path.join(REPO, "examples", "sample", "spm")
MAX_LEN, MAX_QUERY_LEN = 40, 8
QUESTION = {"src": "Which river runs past the town?", "tgt": "Ce râu trece pe lângă oraș?"}
SENTENCE = {"src": "The river number {} runs past the old town and the green hills.",
            "tgt": "Râul numărul {} trece pe lângă orașul vechi și dealurile verzi."}
LANG = {"src": "en", "tgt": "ro"}


@pytest.fixture(scope="module")
def encoder():
    enc = Encoder(os.path.join(SPM, "sentencepiece.bpe.model"), os.path.join(SPM, "dict.txt"))
    binarize.use_encoder(enc)
    return enc


def passage(side, n):
    return " ".join(SENTENCE[side].format(i) for i in range(n))


def answer(text, phrase, last=False):
    return {"text": phrase, "answer_start": text.rindex(phrase) if last else text.index(phrase)}


def links(texts, reverse=False):
    """Word links spread evenly over the two passages (flat source, target pairs): in order, or
    reversed (the first target words linked to the last source words)."""
    n_src, n_tgt = (len(tokenize(texts[side], LANG[side])) // 2 for side in ("src", "tgt"))
    t = np.arange(n_tgt)
    s = t * n_src // n_tgt
    return np.stack([n_src - 1 - s if reverse else s, t], 1).reshape(-1).tolist()


def build(texts, p_links, pairing=None, answers=None, stride=MAX_LEN):
    """The examples of one question on the passage pair ``texts``, in target window order."""
    pw = {side: tokenize(texts[side], LANG[side]) for side in texts}
    qw = {side: tokenize(QUESTION[side], LANG[side]) for side in QUESTION}
    opts = {"max_len": MAX_LEN, "doc_stride": stride, "max_query_len": MAX_QUERY_LEN}
    if pairing is not None:
        opts["window_pairing"] = pairing
    task = ((Unit("p", "p0", 0, texts["src"], texts["tgt"]), pw, {"links": p_links}, {"src": [], "tgt": []}),
            [(Unit("q", "q0", 0, QUESTION["src"], QUESTION["tgt"], passage="p0"), qw,
              {"links": [], "answers": answers or {}}, {"src": [], "tgt": []})], opts)
    out, _ = binarize.build_group(task)
    return [fields for _, fields in out]


def windows(enc, texts, side, stride=MAX_LEN):
    """``[(char_start, char_end) per token]`` of each window of one side's passage, as
    :func:`.encode.token_windows` makes them for the question (the k-th is the k-th window)."""
    p = binarize.Encoded(enc, texts[side], tokenize(texts[side], LANG[side]), passage=True)
    q = binarize.Encoded(enc, QUESTION[side], tokenize(QUESTION[side], LANG[side]))
    budget = MAX_LEN - binarize._question(q, q.arcs(), MAX_QUERY_LEN)[1] - 4
    spans = np.stack([p.starts, p.ends], 1)
    return [spans[t0:t1] for t0, t1 in token_windows(p.per_word, budget, min(stride, budget))]


def passage_offsets(example, side):
    off = example[f"{side}.offsets"].reshape(-1, 2)
    return off[off[:, 0] >= 0]


def window_index(example, side, side_windows):
    """The window of ``side_windows`` that the example's stream holds (by its token offsets)."""
    found = [k for k, w in enumerate(side_windows) if np.array_equal(passage_offsets(example, side), w)]
    assert len(found) == 1, found
    return found[0]


def pairing_of(enc, texts, examples, stride=MAX_LEN):
    """``[source window index]`` per target window, the target windows checked to come in order."""
    tgt_windows, src_windows = windows(enc, texts, "tgt", stride), windows(enc, texts, "src", stride)
    assert [window_index(ex, "tgt", tgt_windows) for ex in examples] == list(range(len(tgt_windows)))
    return [window_index(ex, "src", src_windows) for ex in examples]


@pytest.mark.parametrize("n_src", [8, 3])  # about as many source windows as target ones; fewer
def test_position_pairs_the_kth_windows(encoder, n_src):
    texts = {"src": passage("src", n_src), "tgt": passage("tgt", 8)}
    n_win = {side: len(windows(encoder, texts, side)) for side in texts}
    assert n_win["tgt"] >= 3 and n_win["src"] >= 3 and n_win["tgt"] > n_win["src"]
    # reversed links and answers at opposite ends: neither may move the pairing by position
    answers = {"src": answer(texts["src"], "The river number 0"),
               "tgt": answer(texts["tgt"], "Râul numărul 7", last=True)}
    for p_links in (links(texts, reverse=True), links(texts), []):
        examples = build(texts, p_links, "position", answers)
        assert pairing_of(encoder, texts, examples) == [min(k, n_win["src"] - 1) for k in range(n_win["tgt"])]
    # overlapping windows (--doc-stride below the budget) pair by position too
    examples = build(texts, links(texts, reverse=True), "position", stride=12)
    n_src_overlap = len(windows(encoder, texts, "src", 12))
    assert pairing_of(encoder, texts, examples, 12) == [min(k, n_src_overlap - 1)
                                                       for k in range(len(examples))]


def test_alignment_is_the_default_and_differs_from_position(encoder):
    texts = {"src": passage("src", 8), "tgt": passage("tgt", 8)}
    reversed_links = links(texts, reverse=True)
    by_links = build(texts, reversed_links, "alignment")
    default = build(texts, reversed_links)  # no window_pairing option: the pairing before the option
    assert len(by_links) == len(default)
    for ex, ref in zip(by_links, default):
        assert ex.keys() == ref.keys() and all(np.array_equal(ex[k], ref[k]) for k in ex)
    n_src = len(windows(encoder, texts, "src"))
    pairs = pairing_of(encoder, texts, by_links)
    # reversed links: the first target window goes with the end of the source passage, the last
    # with its start, and the pairing never moves forward
    assert pairs[0] >= n_src - 2 and pairs[-1] == 0 and all(np.diff(pairs) <= 0)
    assert pairs != pairing_of(encoder, texts, build(texts, reversed_links, "position"))
    # links in order: the pairing follows them forward, from the first source window to the last
    forward = pairing_of(encoder, texts, build(texts, links(texts), "alignment"))
    assert forward[0] == 0 and forward[-1] == n_src - 1 and all(np.diff(forward) >= 0)
    # the target answer's window goes with the source answer's window (not with its links)
    answers = {"src": answer(texts["src"], "The river number 0"),
               "tgt": answer(texts["tgt"], "Râul numărul 7", last=True)}
    by_links = build(texts, links(texts), "alignment", answers)
    with_answer = [k for k, ex in enumerate(by_links) if has_answer(ex[SPAN_FIELD], "tgt")]
    assert with_answer and all(pairing_of(encoder, texts, by_links)[k] == 0 for k in with_answer)


def test_key_holds_the_pairing_only_when_not_the_default(tmp_path, encoder):
    default = PipelineConfig(command="binarize", sample=True, out=str(tmp_path))
    position = PipelineConfig(command="binarize", sample=True, out=str(tmp_path), window_pairing="position")
    qa, parallel = SplitPaths(str(tmp_path), "qa", "train"), SplitPaths(str(tmp_path), "parallel", "train")
    # the key as it was before the option: the binary splits of existing work directories stay valid
    before = fingerprint([default.spm, default.dict], max_len=default.max_len, stride=default.doc_stride,
                         query=default.max_query_len, encoding="raw-text", answer_ends="clause-cut",
                         prev=[key_of(p) for p in (qa.units, qa.words, qa.align, qa.parse)])
    assert binarize_stage_key(qa, default) == before
    assert binarize_stage_key(qa, position) != before
    assert binarize_stage_key(parallel, position) == binarize_stage_key(parallel, default)  # no windows there


def test_option_parsed_and_unknown_value_is_one_line(tmp_path, capsys):
    parser = get_parser()
    for command in ("binarize", "all"):
        assert parser.parse_args([command]).window_pairing == "alignment"
        assert parser.parse_args([command, "--window-pairing", "position"]).window_pairing == "position"
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["binarize", "--window-pairing", "overlap"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert exit_.value.code == 2 and len(errors) == 1
    assert "--window-pairing" in errors[0] and "'overlap'" in errors[0]
    with pytest.raises(GraFusionError) as error:
        PipelineConfig(command="binarize", sample=True, out=str(tmp_path), window_pairing="overlap")
    assert str(error.value) == "--window-pairing overlap: choose one of alignment, position"
