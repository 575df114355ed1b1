"""Dependency edges from real UD CoNLL-U through stanza.utils.conll, and same-word edges."""
import os

import numpy as np
import pytest
from stanza.utils.conll import CoNLL

from conftest import REPO
from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.preprocess.parse import document_arcs, has_parser, read_conllu, same_word_edges

FIXTURES = os.path.join(REPO, "tests", "fixtures", "preprocess")


def _pairs(flat):
    return sorted(zip(flat[::2], flat[1::2]))


def test_ud_romanian_arcs():
    doc = CoNLL.conll2doc(input_file=os.path.join(FIXTURES, "ro_rrt_test.conllu"))
    arcs = document_arcs(doc)
    # test-1 "publicul care urla râzând când s- a dat la fund ." (HEAD column, 0-based, root dropped)
    assert _pairs(arcs[0]) == sorted([(1, 2), (2, 0), (3, 2), (4, 7), (5, 7), (6, 7), (7, 2), (8, 9),
                                      (9, 7), (10, 0)])
    # test-7 "Nu știa de ce turnase tot șirul ăsta de inepții ."
    assert _pairs(arcs[1]) == sorted([(0, 1), (2, 4), (3, 2), (4, 1), (5, 6), (6, 4), (7, 6), (8, 9),
                                      (9, 6), (10, 1)])


def test_multiword_tokens_share_their_token_node():
    doc = CoNLL.conll2doc(input_file=os.path.join(FIXTURES, "es_ancora_mwt.conllu"))
    (arcs,) = document_arcs(doc)
    pairs = _pairs(arcs)
    assert len(doc.sentences[0].tokens) == 29 and len(doc.sentences[0].words) == 31
    # "al" (token 21) = a + el, both attached to "gobierno" (token 23): one edge, no self-loop
    assert pairs.count((21, 23)) == 1
    assert pairs.count((24, 25)) == 1  # "del" -> "presidente"
    assert all(a != b for a, b in pairs)
    assert max(max(p) for p in pairs) < 29
    assert len(pairs) == 31 - 1 - 2  # every word but the root, minus the two merged duplicates


def test_read_conllu_checks_word_counts(tmp_path):
    path = os.path.join(FIXTURES, "ro_rrt_test.conllu")
    assert len(read_conllu(path, [11, 11])) == 2
    with pytest.raises(GraFusionError, match=r"ro_rrt_test.conllu line 17: sentence 2 has 11 tokens, "
                                             r"the words stage has 12 words"):
        read_conllu(path, [11, 12])
    with pytest.raises(GraFusionError, match="2 sentences, but the split has 3"):
        read_conllu(path, [11, 11, 4])
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tx\n")
    with pytest.raises(GraFusionError, match="bad.conllu: not a readable CoNLL-U file"):
        read_conllu(str(bad), [1])


def test_same_word_edges():
    forms = ["The", "Broncos", "beat", "the", "Steelers", ",", "the", "Broncos", ",", "ok"]
    assert _pairs(same_word_edges(forms)) == [(0, 3), (0, 6), (1, 7), (3, 6)]
    # a form more frequent than max_group is chained instead of a clique
    assert _pairs(same_word_edges(["a"] * 5, max_group=3)) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert same_word_edges([",", ","]) == []


def test_no_parser_without_local_model(tmp_path):
    assert not has_parser("ro", None)
    assert not has_parser("ro", str(tmp_path))
    (tmp_path / "ro" / "depparse").mkdir(parents=True)
    assert has_parser("ro", str(tmp_path))


def same_word_edges_reference(forms, max_group=8):
    """The edges by loops: forms in sorted (case-folded) order; a clique of a form's occurrences,
    or a chain of them when it occurs more than ``max_group`` times."""
    occurrences = {}
    for i, w in enumerate(forms):
        if any(c.isalnum() for c in w):
            occurrences.setdefault(w.casefold(), []).append(i)
    edges = []
    for form in sorted(occurrences):
        at = occurrences[form]
        if len(at) > max_group:
            edges += [x for i, j in zip(at, at[1:]) for x in (i, j)]
        else:
            edges += [x for k, i in enumerate(at) for j in at[k + 1:] for x in (i, j)]
    return edges


def test_same_word_edges_match_loops_on_random_forms():
    rng = np.random.RandomState(0)
    vocab = ["a", "A", "b", "B", "c", ",", ".", "é", "É", "x1", "--", "ß", "SS"]
    for _ in range(500):
        forms = [vocab[k] for k in rng.randint(0, len(vocab), rng.randint(0, 40))]
        max_group = int(rng.randint(1, 6))
        assert same_word_edges(forms, max_group) == same_word_edges_reference(forms, max_group), (forms, max_group)
