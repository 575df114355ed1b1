"""Word-node masking for SA-Graph pre-training (paper section 3.4, Figure 3).

Nodes are the words of ``[S; T]`` in the collater's global numbering (source words first, see
:func:`~fairseq_grafusion.data.graph_pair_dataset.example_graph`); a masked node has *every* piece
masked.  Nodes holding a special token (``<s>``, ``</s>``, padding) are never masked.  Each batch
uses one strategy, mono-lingual with probability ``mono_lingual_prob`` (1/2), cross-lingual
otherwise:

* **mono-lingual** -- pick a language (1/2 each, one per batch, as the paper picks one "at each
  iteration"), mask ``rate`` (15%) of the maskable word nodes of that language in every example;
  no node of the other language is masked, so a masked word can be recovered through its
  alignment edges.
* **cross-lingual** -- the masking units are the connected components of the alignment graph over
  the maskable nodes of both languages (an unaligned word is a unit of its own); ``rate`` of the
  units are masked, so a masked node's aligned nodes -- and theirs, transitively -- are masked
  with it and alignment carries no information about a masked word: it must be recovered from
  its dependency neighbours.

The count per example is ``int(rate * n + U[0,1))`` units drawn without replacement (as fairseq's
``MaskTokensDataset`` rounds), so every candidate node is masked with probability exactly
``rate``: 15% of the chosen language's nodes (mono) or 15% of the pair's nodes (cross, like
XLM's TLM, which masks 15% of the pair).

Replacement: masked pieces become ``<mask>`` by default (no 80/10/10).  In cross-lingual masking
a masked word left unchanged (BERT's 10%) would put back the very information the strategy cuts
off, and ``L_SA`` would read the word through its neighbours' states; the train/fine-tune mismatch
that 80/10/10 addresses is small here, as pre-training continues XLM-R (which learnt with
80/10/10) and fine-tuning retrains every layer.  ``leave_unmasked_prob`` / ``random_token_prob``
(per masked word, all its pieces alike) give 80/10/10 for comparison.

Reproducibility: the batch's strategy and language come from ``(seed, epoch, ids of the batch)``,
an example's draws from ``(seed, epoch, index)``, like ``MaskTokensDataset``'s
``numpy_seed(seed, epoch, index)``: the same on every worker and on re-runs, new each epoch.
"""
import numpy as np
import torch
from fairseq.data import BaseWrapperDataset, data_utils

from .graph_pair_dataset import example_graph
from .span_target import SPAN_FIELD

MONO, CROSS = "mono", "cross"
SRC, TGT = "src", "tgt"


def _rng(*keys):
    """A RandomState from int keys (tuple hashes of ints do not depend on PYTHONHASHSEED)."""
    return np.random.RandomState(hash(tuple(int(k) for k in keys)) % (2 ** 32))


def maskable_nodes(tokens, word_ids, num_nodes, special_ids):
    """Nodes none of whose tokens is special; ``tokens``/``word_ids`` over ``[S; T]``."""
    special = np.isin(tokens, np.asarray(special_ids)).astype(np.float64)
    return np.bincount(word_ids, weights=special, minlength=num_nodes)[:num_nodes] == 0


def alignment_components(num_nodes, pairs):
    """Component label (its smallest node) of every node over the undirected ``pairs`` (E, 2);
    min-label propagation with pointer jumping, vectorised over the edges."""
    labels = np.arange(num_nodes)
    if len(pairs) == 0:
        return labels
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        new = labels.copy()
        np.minimum.at(new, a, labels[b])
        np.minimum.at(new, b, labels[a])
        new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def _draw(units, rate, rng):
    count = min(int(rate * len(units) + rng.random_sample()), len(units))
    return rng.choice(units, count, replace=False) if count else units[:0]


def mono_lingual_mask(maskable, n_src_words, language, rate, rng):
    """Boolean node mask: ``rate`` of the maskable nodes of ``language`` ("src" / "tgt")."""
    nodes = np.arange(len(maskable))
    side = nodes < n_src_words if language == SRC else nodes >= n_src_words
    mask = np.zeros(len(maskable), dtype=bool)
    mask[_draw(nodes[maskable & side], rate, rng)] = True
    return mask


def cross_lingual_mask(maskable, align, rate, rng):
    """Boolean node mask closed under alignment: ``rate`` of the alignment components."""
    align = np.asarray(align, dtype=np.int64).reshape(-1, 2)
    align = align[maskable[align[:, 0]] & maskable[align[:, 1]]]
    labels = alignment_components(len(maskable), align)
    units = np.unique(labels[maskable])
    return np.isin(labels, _draw(units, rate, rng)) & maskable


def mask_example(tokens, word_ids, n_src_words, align, strategy, language, rng, rate, mask_idx,
                 special_ids, leave_unmasked_prob=0.0, random_token_prob=0.0, random_ids=None):
    """Mask one example.  ``tokens`` / ``word_ids``: ``[S; T]``; returns ``(node_mask,
    token_mask, new_tokens)``."""
    num_nodes = int(word_ids.max()) + 1 if len(word_ids) else 0
    maskable = maskable_nodes(tokens, word_ids, num_nodes, special_ids)
    if strategy == MONO:
        node_mask = mono_lingual_mask(maskable, n_src_words, language, rate, rng)
    else:
        node_mask = cross_lingual_mask(maskable, align, rate, rng)
    token_mask = node_mask[word_ids]
    new_tokens = tokens.copy()
    replace = token_mask
    if leave_unmasked_prob > 0 or random_token_prob > 0:
        u = rng.random_sample(num_nodes)[word_ids]
        leave = token_mask & (u < leave_unmasked_prob)
        randomise = token_mask & ~leave & (u < leave_unmasked_prob + random_token_prob)
        replace = token_mask & ~leave & ~randomise
        if randomise.any():
            new_tokens[randomise] = rng.choice(random_ids, int(randomise.sum()))
    new_tokens[replace] = mask_idx
    return node_mask, token_mask, new_tokens


class GraphMaskingDataset(BaseWrapperDataset):
    """Wraps a :class:`~fairseq_grafusion.data.GraphPairDataset`; its collater masks word nodes.

    The batch is the wrapped collater's, built from the masked tokens, plus ``target`` (B,
    Ls + Lt) laid out like ``word_ids`` over ``[S; T]``: the original token at masked pieces,
    padding elsewhere; ``masking``: ``{"mono": 0/1, "language": 0 src / 1 tgt / -1 both}``.
    Answer spans, if the split has them, are ignored.
    """

    def __init__(self, dataset, dictionary, seed=1, mask_prob=0.15, mono_lingual_prob=0.5,
                 leave_unmasked_prob=0.0, random_token_prob=0.0):
        super().__init__(dataset)
        if not 0.0 < mask_prob < 1.0:
            raise ValueError("mask_prob must be in (0, 1)")
        if leave_unmasked_prob + random_token_prob > 1.0:
            raise ValueError("leave_unmasked_prob + random_token_prob must be <= 1")
        self.dictionary = dictionary
        self.pad_idx = dictionary.pad()
        self.mask_idx = dictionary.index("<mask>")
        self.special_ids = [dictionary.bos(), dictionary.eos(), dictionary.pad()]
        self.random_ids = np.array([i for i in range(dictionary.nspecial, len(dictionary))
                                    if i != self.mask_idx], dtype=np.int64)
        self.seed, self.mask_prob, self.mono_lingual_prob = seed, mask_prob, mono_lingual_prob
        self.leave_unmasked_prob, self.random_token_prob = leave_unmasked_prob, random_token_prob
        # fairseq keeps its data-loader workers alive across epochs (persistent_workers), each
        # with its own copy of the dataset: a plain attribute set by set_epoch in the trainer
        # would never reach them, and every epoch would repeat the first epoch's masks.  The
        # epoch lives in shared memory instead; set_epoch runs before the epoch's first batch
        # of indices is sent to the workers.
        self._epoch = torch.ones(1, dtype=torch.long).share_memory_()

    @property
    def epoch(self):
        return int(self._epoch[0])

    @epoch.setter
    def epoch(self, value):
        self._epoch[0] = int(value)

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        self.epoch = epoch

    def batch_strategy(self, ids):
        """``(strategy, language)`` of a batch, from the seed, the epoch and its example ids."""
        rng = _rng(self.seed, self.epoch, -1, *sorted(int(i) for i in ids))
        mono = rng.random_sample() < self.mono_lingual_prob
        language = SRC if rng.random_sample() < 0.5 else TGT
        return (MONO, language) if mono else (CROSS, None)

    def mask_sample(self, sample, strategy, language):
        """``(masked sample, target pieces over [S; T], node mask)`` of one example."""
        words, align, _ = example_graph(sample)
        n_src_tok = len(sample["src.tok"])
        n_src_words = int(sample["src.word"].max()) + 1 if n_src_tok else 0
        tokens = np.concatenate([sample["src.tok"], sample["tgt.tok"]]).astype(np.int64)
        rng = _rng(self.seed, self.epoch, sample["id"])
        node_mask, token_mask, new_tokens = mask_example(
            tokens, words, n_src_words, align, strategy, language, rng, self.mask_prob,
            self.mask_idx, self.special_ids, self.leave_unmasked_prob, self.random_token_prob,
            self.random_ids)
        masked = {k: v for k, v in sample.items() if k != SPAN_FIELD}
        masked["src.tok"], masked["tgt.tok"] = new_tokens[:n_src_tok], new_tokens[n_src_tok:]
        target = np.where(token_mask, tokens, self.pad_idx)
        return masked, (target[:n_src_tok], target[n_src_tok:]), node_mask

    def collater(self, samples):
        if not samples:
            return {}
        strategy, language = self.batch_strategy([s["id"] for s in samples])
        masked, src_target, tgt_target = [], [], []
        for sample in samples:
            m, (t_src, t_tgt), _ = self.mask_sample(sample, strategy, language)
            masked.append(m)
            src_target.append(torch.from_numpy(t_src))
            tgt_target.append(torch.from_numpy(t_tgt))
        batch = self.dataset.collater(masked)
        batch["target"] = torch.cat([data_utils.collate_tokens(src_target, self.pad_idx),
                                     data_utils.collate_tokens(tgt_target, self.pad_idx)], dim=1)
        batch["masking"] = {"mono": int(strategy == MONO),
                            "language": {SRC: 0, TGT: 1, None: -1}[language]}
        return batch
