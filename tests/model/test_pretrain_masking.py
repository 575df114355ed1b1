"""Word-node masking for SA-Graph pre-training on hand-built graphs: exact masks for a fixed seed,
the 15% rate, cross-lingual closure over alignment edges, mono-lingual masking confined to one
language, special tokens, reproducibility across epochs and processes, the batch layout."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from conftest import REPO
from fairseq_grafusion.data import GraphMaskingDataset, GraphPairDataset, PairReader, PairWriter
from fairseq_grafusion.data.graph_masking import (
    CROSS,
    MONO,
    alignment_components,
    cross_lingual_mask,
    mono_lingual_mask,
)


def make_dictionary():
    d = Dictionary()
    for i in range(40):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")
    return d


D = make_dictionary()
BOS, EOS, PAD, MASK = D.bos(), D.eos(), D.pad(), D.index("<mask>")

# source: <s> A B1 B2 C D </s>   words 0..5 (global 0..5)
# target: <s> P Q R1 R2 S </s>   words 0..5 (global 6..11)
# alignment A-Q, B-P, C-R, C-S, D-S, and <s>-<s> (specials: never masked, not a closure link)
HAND = dict(
    src_tok=[BOS, 4, 5, 6, 7, 8, EOS], src_word=[0, 1, 2, 2, 3, 4, 5],
    tgt_tok=[BOS, 14, 15, 16, 17, 18, EOS], tgt_word=[0, 1, 2, 3, 3, 4, 5],
    align=[0, 0, 1, 2, 2, 1, 3, 3, 3, 4, 4, 4], src_dep=[1, 2, 2, 3, 3, 4], tgt_dep=[1, 2, 2, 3, 3, 4])
HAND_COMPONENTS = [{1, 8}, {2, 7}, {3, 4, 9, 10}]  # global node ids
SPECIAL_NODES = {0, 5, 6, 11}


def random_pair(rng, n_src, n_tgt):
    """A sentence pair with 1-3 pieces per word and random (many-to-many) alignments."""
    def stream(n):
        pieces = rng.randint(1, 4, size=n)
        word = np.concatenate([[0], np.repeat(np.arange(1, n + 1), pieces), [n + 1]])
        tok = np.concatenate([[BOS], rng.randint(4, 44, size=len(word) - 2), [EOS]])
        return tok, word

    s_tok, s_word = stream(n_src)
    t_tok, t_word = stream(n_tgt)
    links = rng.randint(0, n_src, 3 * n_src // 2) + 1, rng.randint(0, n_tgt, 3 * n_src // 2) + 1
    chain = lambda n: np.array([(k, k + 1) for k in range(1, n)]).reshape(-1)  # noqa: E731
    return dict(src_tok=s_tok, src_word=s_word, tgt_tok=t_tok, tgt_word=t_word,
                align=np.stack(links, 1).reshape(-1), src_dep=chain(n_src), tgt_dep=chain(n_tgt))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("masking")
    rng = np.random.RandomState(0)
    with PairWriter(str(path / "train"), len(D), with_span=False) as w:
        w.add("hand", **HAND)
        for i in range(15):
            w.add(f"r{i}", **random_pair(rng, 20, 24))
    return str(path)


def masking(data_dir, **kw):
    reader = PairReader(os.path.join(data_dir, "train"))
    return GraphMaskingDataset(GraphPairDataset(reader, PAD), D, seed=kw.pop("seed", 1), **kw)


def node_masks(ds, index, strategy, language=None):
    _, _, node_mask = ds.mask_sample(ds[index], strategy, language)
    return set(np.nonzero(node_mask)[0].tolist())


def graph_of(ds, index):
    ex = ds[index]
    n_src = int(ex["src.word"].max()) + 1
    n_nodes = n_src + int(ex["tgt.word"].max()) + 1
    align = ex["align"] + np.array([0, n_src])
    tokens = np.concatenate([ex["src.tok"], ex["tgt.tok"]])
    words = np.concatenate([ex["src.word"], ex["tgt.word"] + n_src])
    special = {int(w) for w, t in zip(words, tokens) if t in (BOS, EOS, PAD)}
    return n_src, n_nodes, align, special


def check_rules(ds, index, mask, strategy, language=None):
    """The rules every mask obeys, independently of the draw."""
    n_src, n_nodes, align, special = graph_of(ds, index)
    assert not mask & special
    if strategy == MONO:
        side = set(range(n_src)) if language == "src" else set(range(n_src, n_nodes))
        assert mask <= side
    else:
        for a, b in align:
            if a not in special and b not in special:
                assert (a in mask) == (b in mask), (a, b, mask)


def test_exact_masks_for_a_fixed_seed(data_dir):
    ds = masking(data_dir, mask_prob=0.5)
    expected = {  # epoch: (mono src, mono tgt, cross, strategy of the batch [0, 5, 7])
        1: ({2, 3}, {8, 9}, {2, 3, 4, 7, 9, 10}, (MONO, "src")),
        2: ({1, 2}, {7, 8}, {1, 2, 7, 8}, (CROSS, None)),
        3: ({3, 4}, {9, 10}, {3, 4, 9, 10}, (MONO, "src")),
        4: ({1, 2}, {7, 8}, {1, 8}, (MONO, "tgt")),
    }
    for epoch, (src, tgt, cross, strategy) in expected.items():
        ds.set_epoch(epoch)
        got = (node_masks(ds, 0, MONO, "src"), node_masks(ds, 0, MONO, "tgt"),
               node_masks(ds, 0, CROSS))
        assert got == (src, tgt, cross), epoch
        assert ds.batch_strategy([0, 5, 7]) == strategy
        check_rules(ds, 0, src, MONO, "src")
        check_rules(ds, 0, tgt, MONO, "tgt")
        check_rules(ds, 0, cross, CROSS)
        assert any(cross == set().union(*c) for c in
                   [(HAND_COMPONENTS[i], HAND_COMPONENTS[j]) for i in range(3) for j in range(3)])
    # the default 15%: 4 candidate source words -> int(0.6 + U) = 0 or 1 of them
    ds = masking(data_dir)
    assert node_masks(ds, 0, MONO, "src") == {3} and node_masks(ds, 0, CROSS) == set()
    # the token level: every piece of a masked word, nothing else
    ds = masking(data_dir, mask_prob=0.5)
    masked, (t_src, t_tgt), _ = ds.mask_sample(ds[0], MONO, "src")
    assert masked["src.tok"].tolist() == [BOS, 4, MASK, MASK, MASK, 8, EOS]
    assert masked["tgt.tok"].tolist() == HAND["tgt_tok"]
    assert t_src.tolist() == [PAD, PAD, 5, 6, 7, PAD, PAD] and set(t_tgt.tolist()) == {PAD}


def draws(ds, epochs, strategy, language=None):
    for epoch in epochs:
        ds.set_epoch(epoch)
        for index in range(1, len(ds)):
            yield index, node_masks(ds, index, strategy, language)


def test_mono_lingual_rate_and_language(data_dir):
    ds = masking(data_dir)
    for language in ("src", "tgt"):
        masked = candidates = 0
        for index, mask in draws(ds, range(1, 201), MONO, language):
            check_rules(ds, index, mask, MONO, language)
            n_src, n_nodes, _, special = graph_of(ds, index)
            side = set(range(n_src)) if language == "src" else set(range(n_src, n_nodes))
            n = len(side - special)
            assert len(mask) in (int(0.15 * n), int(0.15 * n) + 1)
            masked, candidates = masked + len(mask), candidates + n
        assert abs(masked / candidates - 0.15) < 0.01, masked / candidates


def test_cross_lingual_closure_and_rate(data_dir):
    ds = masking(data_dir)
    masked = candidates = 0
    sizes = []
    for index, mask in draws(ds, range(1, 201), CROSS):
        check_rules(ds, index, mask, CROSS)  # closed under alignment, specials untouched
        _, n_nodes, _, special = graph_of(ds, index)
        masked, candidates = masked + len(mask), candidates + n_nodes - len(special)
        sizes.append(len(mask))
    assert abs(masked / candidates - 0.15) < 0.01, masked / candidates
    assert len(set(sizes)) > 5
    # every node is masked with probability 15%, in a component of 2 as in one of 4
    ds = masking(data_dir, mask_prob=0.15)
    hits = np.zeros(12)
    for epoch in range(1, 3001):
        ds.epoch = epoch
        hits[list(node_masks(ds, 0, CROSS))] += 1
    rate = hits / 3000
    assert (rate[sorted(SPECIAL_NODES)] == 0).all()
    assert np.abs(rate[[1, 2, 3, 4, 7, 8, 9, 10]] - 0.15).max() < 0.025, rate
    assert rate[3] == rate[4] == rate[9] == rate[10] and rate[1] == rate[8]


def test_strategy_per_batch(data_dir):
    ds = masking(data_dir)
    rng = np.random.RandomState(0)
    picks = [ds.batch_strategy(rng.choice(1000, 8, replace=False)) for _ in range(2000)]
    mono = [lang for strategy, lang in picks if strategy == MONO]
    assert abs(len(mono) / 2000 - 0.5) < 0.04
    assert abs(mono.count("src") / len(mono) - 0.5) < 0.05
    assert all(lang is None for strategy, lang in picks if strategy == CROSS)
    assert {masking(data_dir, mono_lingual_prob=1.0).batch_strategy([i])[0] for i in range(50)} == {MONO}
    assert {masking(data_dir, mono_lingual_prob=0.0).batch_strategy([i])[0] for i in range(50)} == {CROSS}


def batch_masks(ds, ids):
    batch = ds.collater([ds[i] for i in ids])
    return batch["target"].tolist(), batch["masking"]


def test_reproducible_across_epochs_and_processes(data_dir):
    ids = [3, 1, 7, 12]
    first = masking(data_dir)
    first.set_epoch(3)
    again = masking(data_dir)
    again.set_epoch(3)
    assert batch_masks(first, ids) == batch_masks(again, ids)
    assert first.batch_strategy(ids) == first.batch_strategy(list(reversed(ids)))
    other_epochs = []
    for epoch in (4, 5):
        again.set_epoch(epoch)
        other_epochs.append(batch_masks(again, ids))
    assert all(m != batch_masks(first, ids) for m in other_epochs)
    seeded = masking(data_dir, seed=2)
    seeded.set_epoch(3)
    assert batch_masks(seeded, ids) != batch_masks(first, ids)
    # a data-loader worker is another process, with its own hash randomisation
    code = (
        "import json, sys; sys.path[:0] = ['tests/model', 'tests']; import test_pretrain_masking as t\n"
        f"ds = t.masking({data_dir!r}); ds.set_epoch(3)\n"
        f"print(json.dumps(t.batch_masks(ds, {ids!r})))\n")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    target, strategy = json.loads(out)
    assert (target, strategy) == batch_masks(first, ids)


def test_batch_layout(data_dir):
    ds = masking(data_dir, mask_prob=0.5)
    samples = [ds[i] for i in (0, 4, 9)]
    batch = ds.collater(samples)
    net = batch["net_input"]
    target = batch["target"]
    tokens = torch.cat([net["src_tokens"], net["tgt_tokens"]], dim=1)
    assert target.shape == net["word_ids"].shape == tokens.shape
    original = GraphPairDataset.collater(ds.dataset, samples)["net_input"]
    orig = torch.cat([original["src_tokens"], original["tgt_tokens"]], dim=1)
    masked = target.ne(PAD)
    assert masked.any() and (tokens[masked] == MASK).all()
    assert (target[masked] == orig[masked]).all() and (tokens[~masked] == orig[~masked]).all()
    for key in ("word_ids", "align_edges", "dep_edges"):
        assert torch.equal(net[key], original[key])
    # whole words: a word is either entirely masked or not at all
    for b in range(3):
        for w in net["word_ids"][b].unique().tolist():
            if w >= 0:
                assert masked[b][net["word_ids"][b] == w].unique().numel() == 1
    assert set(batch["masking"]) == {"mono", "language"}


def test_80_10_10_option(data_dir):
    ds = masking(data_dir, leave_unmasked_prob=0.1, random_token_prob=0.1)
    kinds = {"mask": 0, "same": 0, "random": 0}
    for epoch in range(1, 41):
        ds.set_epoch(epoch)
        for index in range(1, len(ds)):
            ex = ds[index]
            masked, (t_src, t_tgt), node_mask = ds.mask_sample(ex, CROSS, None)
            new = np.concatenate([masked["src.tok"], masked["tgt.tok"]])
            target = np.concatenate([t_src, t_tgt])
            words = np.concatenate([ex["src.word"], ex["tgt.word"] + ex["src.word"].max() + 1])
            for w in np.nonzero(node_mask)[0]:
                at = words == w
                if (new[at] == MASK).all():
                    kinds["mask"] += 1
                elif (new[at] == target[at]).all():
                    kinds["same"] += 1
                else:
                    assert not (new[at] == MASK).any() and (new[at] >= D.nspecial).all()
                    kinds["random"] += 1
    n = sum(kinds.values())
    assert abs(kinds["mask"] / n - 0.8) < 0.03 and abs(kinds["same"] / n - 0.1) < 0.03, kinds
    # without the option (the default) every masked piece is <mask>
    ds = masking(data_dir)
    masked, (t_src, _), _ = ds.mask_sample(ds[1], MONO, "src")
    assert (masked["src.tok"][t_src != PAD] == MASK).all()


def test_components_and_closure_helpers():
    labels = alignment_components(7, np.array([[0, 3], [3, 5], [1, 2], [5, 0]]))
    assert labels.tolist() == [0, 1, 1, 0, 4, 0, 6]
    maskable = np.ones(7, dtype=bool)
    maskable[4] = False
    for seed in range(50):
        mask = cross_lingual_mask(maskable, np.array([[0, 3], [3, 5], [1, 2]]), 0.3,
                                  np.random.RandomState(seed))
        assert not mask[4]
        assert mask[0] == mask[3] == mask[5] and mask[1] == mask[2]
        mono = mono_lingual_mask(maskable, 3, "tgt", 0.5, np.random.RandomState(seed))
        assert not mono[:3].any() and not mono[4]


def test_new_masks_each_epoch_in_persistent_workers(data_dir):
    """fairseq's data loaders keep their worker processes across epochs: set_epoch in the
    trainer must still change the masks the workers draw."""
    ds = masking(data_dir)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[[1, 2, 3, 4], [5, 6, 7, 8]],
                                         collate_fn=ds.collater, num_workers=1,
                                         persistent_workers=True)
    seen = {}
    for epoch in (1, 2, 1):
        ds.set_epoch(epoch)
        targets = [b["target"] for b in loader]
        if epoch in seen:
            assert all(torch.equal(a, b) for a, b in zip(seen[epoch], targets))
        seen[epoch] = targets
    assert not all(torch.equal(a, b) for a, b in zip(seen[1], seen[2]))
    ds.set_epoch(2)
    assert all(torch.equal(a, ds.collater([ds[i] for i in ids])["target"])
               for a, ids in zip(seen[2], [[1, 2, 3, 4], [5, 6, 7, 8]]))
