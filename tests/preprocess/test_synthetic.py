"""The synthetic bilingual task of the ablation: its gold alignment is exact, noise is injected at
the rate asked (half wrong links, half missing), and a noise level changes only the alignment."""
import numpy as np
import pytest

from fairseq_grafusion.data import PairReader
from fairseq_grafusion.synthetic import SyntheticXMRC


def words_of(gen, tokens, word_map):
    """word index -> vocabulary id (``e12`` -> 12), or None for <s> / </s>."""
    out = {}
    for tok, w in zip(tokens, word_map):
        sym = gen.dictionary[int(tok)]
        if sym[0] in "et" and int(w) not in out:
            out[int(w)] = int(sym[1:].rstrip("@_"))
    return out


def link_counts(gen, data_dir, split="train"):
    """(gold links, correct links kept, wrong links, gold links missing) over a split."""
    gold = kept = wrong = 0
    reader = PairReader(f"{data_dir}/{split}")
    for i in range(len(reader)):
        ex = reader[i]
        src = words_of(gen, ex["src.tok"], ex["src.word"])
        tgt = words_of(gen, ex["tgt.tok"], ex["tgt.word"])
        links = ex["align"].reshape(-1, 2)
        ok = [gen.translation[src[a]] == tgt.get(int(b)) for a, b in links]  # noise may hit </s>
        gold += len(src)  # every source word has exactly one gold link
        kept += sum(ok)
        wrong += len(ok) - sum(ok)
    return gold, kept, wrong, gold - kept


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = {}
    for noise in (0.0, 0.3):
        gen = SyntheticXMRC(task="key", homonyms=True, align_noise=noise)
        path = str(tmp_path_factory.mktemp(f"noise{noise}"))
        gen.write(path, splits=(("train", 400),))
        out[noise] = gen, path
    return out


def test_gold_alignment_is_exact(written):
    gen, path = written[0.0]
    gold, kept, wrong, missing = link_counts(gen, path)
    assert gold > 4000 and kept == gold and wrong == 0 and missing == 0


def test_noise_rate_and_kinds(written):
    gen, path = written[0.3]
    gold, kept, wrong, missing = link_counts(gen, path)
    # each link is noised with p = 0.3, then wrong or dropped with 1/2 each (a wrong link that
    # lands on the right word by chance counts as kept: about 1/12 of the wrong ones)
    assert 0.12 < wrong / gold < 0.17, wrong / gold
    assert 0.26 < missing / gold < 0.34, missing / gold
    assert 0.66 < kept / gold < 0.74


def test_noise_levels_share_the_texts(written):
    (_, clean), (_, noisy) = written[0.0], written[0.3]
    for side in ("src", "tgt"):
        with open(f"{clean}/train.{side}.json") as fa, open(f"{noisy}/train.{side}.json") as fb:
            assert fa.read() == fb.read()
    a, b = PairReader(f"{clean}/train"), PairReader(f"{noisy}/train")
    for i in range(0, len(a), 37):
        for key in ("src.tok", "tgt.tok", "src.word", "tgt.word", "src.dep", "tgt.dep", "span"):
            np.testing.assert_array_equal(a[i][key], b[i][key])
    assert any(len(a[i]["align"]) != len(b[i]["align"]) for i in range(len(a)))
