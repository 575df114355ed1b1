"""A fairseq dataset over a :class:`~.pair_binary.PairReader` split, batching paired examples
with their SA-Graph as padded index tensors.

A batch's ``net_input`` holds ``src_tokens`` (B, Ls) and ``tgt_tokens`` (B, Lt), right-padded;
``word_ids`` (B, Ls + Lt): the word node of each token of ``[S; T]`` with target words numbered
after the example's source words (-1 on padding); ``align_edges`` and ``dep_edges`` (B, E, 2):
undirected word pairs in the same numbering, de-duplicated, self-pairs dropped (the GAT adds its
own self-loops), padded with -1.  ``target`` is (B, 4), the answer-span target (:mod:`.span_target`).
``lang`` is (B,): each example's target language, an index into ``dataset.languages``.
``english_once`` is (B,) bool: whether the example's source stream is the one reading of its
English original in the split (:func:`english_once`), for the models that read the two streams
as independent examples (XLM-R translate-train).

A training split that mixes target languages (translate-train-all) is batched in a random order
without sorting by length, so that every batch mixes languages as the paper's random sampler
does (sorting by length would group languages whose texts have similar token counts).
"""
import collections
import logging

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ..modules.word_graph import count_words
from .span_target import SPAN_FIELD

logger = logging.getLogger(__name__)


def english_once(reader):
    """Per example, whether its source (English) stream is the one reading of that English
    original in the split.  A split that joins several pairs (translate-train-all) holds every
    English question once per target language: with an ``en`` pair (English paired with itself,
    whose target stream is the original) no source stream is needed; otherwise the source streams
    of the first language holding the question (all of its windows) are."""
    if "en" in reader.languages:
        return np.zeros(len(reader), dtype=bool)
    if len(reader.languages) == 1:  # one pair: every English question once already
        return np.ones(len(reader), dtype=bool)
    lang_ids = np.asarray(reader.lang_ids)
    _, question = np.unique(np.asarray(reader.ids, dtype=str), return_inverse=True)
    first = np.full(question.max() + 1 if len(question) else 0, len(reader.languages))
    np.minimum.at(first, question, lang_ids)
    return lang_ids == first[question]


def _pad_pairs(pair_lists):
    width = max((len(p) for p in pair_lists), default=0)
    out = np.full((len(pair_lists), max(width, 1), 2), -1, dtype=np.int64)
    for b, pairs in enumerate(pair_lists):
        out[b, :len(pairs)] = pairs
    return torch.from_numpy(out)


def _undirected_unique(pairs):
    """Canonical (min, max) undirected pairs without duplicates or self-pairs, sorted by rows.

    Deduplicates on one integer per pair (``a * base + b``, rows in lexicographic order), which is
    what ``np.unique(pairs, axis=0)`` gives, without its structured-array sort.
    """
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) == 0:
        return pairs
    low = pairs.min()
    shifted = pairs.astype(np.int64) - low
    base = int(shifted.max()) + 1
    keys = np.unique(shifted[:, 0] * base + shifted[:, 1])
    return np.stack([keys // base, keys % base], axis=1).astype(pairs.dtype) + low


def example_graph(example):
    """One example's global word ids and edges (source words first, then target words)."""
    n_src = int(example["src.word"].max()) + 1 if len(example["src.word"]) else 0
    word_ids = np.concatenate([example["src.word"], example["tgt.word"] + n_src])
    align = example["align"] + np.array([0, n_src])
    dep = np.concatenate([example["src.dep"], example["tgt.dep"] + n_src])
    return word_ids, _undirected_unique(align), _undirected_unique(dep)


class GraphPairDataset(FairseqDataset):
    """Paired examples (optionally with answer spans) from a binarized split.

    With ``group_questions`` (evaluation), examples keep the split's order and a batch always
    holds every window of each of its questions, so answers can be decoded batch by batch (and
    shard by shard in distributed evaluation).
    """

    def __init__(self, reader, pad_idx, shuffle=True, seed=1, group_questions=False, name=None):
        self.reader = reader
        self.pad_idx = pad_idx
        self.shuffle = shuffle and not group_questions
        self.seed = seed
        self.group_questions = group_questions
        self.name = name
        self.src_sizes = np.asarray(reader.src_sizes)
        self.tgt_sizes = np.asarray(reader.tgt_sizes)
        self.epoch = 1
        # once, where the dataset is built (not again in every data-loader worker)
        self.english_once = english_once(reader)

    def __getitem__(self, index):
        example = self.reader[index]
        example["id"] = index
        example["lang"] = self.reader.lang_ids[index]
        return example

    def __len__(self):
        return len(self.reader)

    @property
    def languages(self):
        """Target language codes (``None``: unknown); ``batch["lang"]`` indexes this list."""
        return self.reader.languages

    @property
    def mixes_languages(self):
        return len(self.reader.languages) > 1

    @property
    def sizes(self):
        return self.src_sizes + self.tgt_sizes

    def num_tokens(self, index):
        return int(self.src_sizes[index] + self.tgt_sizes[index])

    def size(self, index):
        return int(self.src_sizes[index]), int(self.tgt_sizes[index])

    def set_epoch(self, epoch):
        self.epoch = epoch

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        """Batches are re-made every epoch from ``(seed, epoch)``: a run resumed in epoch N then
        sees exactly the batches an uninterrupted run sees (fairseq would otherwise keep the
        first epoch's batches in the uninterrupted run and make epoch N's in the resumed one)."""
        return False

    def ordered_indices(self):
        """Shuffled (seeded by epoch), then stably sorted by length as fairseq's datasets do;
        not sorted when the split mixes languages (see the module docstring); in the split's own
        order with ``group_questions``."""
        if self.group_questions:
            return np.arange(len(self))
        if self.shuffle:
            with data_utils.numpy_seed(self.seed, self.epoch):
                order = np.random.permutation(len(self))
        else:
            order = np.arange(len(self))
        if self.shuffle and self.mixes_languages:
            return order
        return order[np.argsort(self.sizes[order], kind="mergesort")]

    def batch_by_size(self, indices, max_tokens=None, max_sentences=None,
                      required_batch_size_multiple=1):
        if not self.group_questions:
            batches = super().batch_by_size(indices, max_tokens, max_sentences,
                                            required_batch_size_multiple)
            # fairseq drops a last batch whose size is not a multiple of
            # --required-batch-size-multiple (default 8; fairseq issue #5036): every epoch would
            # silently lose up to 7 examples (with length-sorted batches, the same longest ones)
            covered = sum(len(b) for b in batches)
            if covered < len(indices):
                batches.append(np.asarray(indices[covered:], dtype=np.int64))
            return batches
        key, sizes = self.reader.question_key, self.sizes
        batches, current, longest = [], [], 0
        start = 0
        indices = list(indices)
        while start < len(indices):  # one question (its consecutive windows) at a time
            stop = start + 1
            while stop < len(indices) and key(indices[stop]) == key(indices[start]):
                stop += 1
            group = indices[start:stop]
            wide = max(longest, max(sizes[i] for i in group))
            count = len(current) + len(group)
            if current and ((max_sentences and count > max_sentences)
                            or (max_tokens and count * wide > max_tokens)):
                batches.append(np.array(current, dtype=np.int64))
                current, wide = [], max(sizes[i] for i in group)
            current += group
            longest = wide
            start = stop
        if current:
            batches.append(np.array(current, dtype=np.int64))
        return batches

    def filter_indices_by_size(self, indices, max_sizes):
        """Drop examples whose source or target stream exceeds ``max_sizes`` tokens."""
        limit = max_sizes if isinstance(max_sizes, (int, float)) else min(max_sizes)
        ok = (self.src_sizes[indices] <= limit) & (self.tgt_sizes[indices] <= limit)
        if not ok.all():  # fairseq warns with a total; say which languages lose examples
            dropped = collections.Counter(self.reader.lang_ids[indices[~ok]].tolist())
            logger.warning("%s: %s example(s) longer than %d tokens dropped, per language: %s",
                           self.name or self.reader.prefix, int((~ok).sum()), limit,
                           ", ".join(f"{self.languages[k]}: {n}" for k, n in sorted(dropped.items())))
        return indices[ok], indices[~ok].tolist()

    def collater(self, samples):
        if not samples:
            return {}
        src = [torch.from_numpy(s["src.tok"]) for s in samples]
        tgt = [torch.from_numpy(s["tgt.tok"]) for s in samples]
        src_tokens = data_utils.collate_tokens(src, self.pad_idx)
        tgt_tokens = data_utils.collate_tokens(tgt, self.pad_idx)
        bsz, len_s, len_t = len(samples), src_tokens.size(1), tgt_tokens.size(1)
        word_ids = np.full((bsz, len_s + len_t), -1, dtype=np.int64)
        aligns, deps = [], []
        for b, s in enumerate(samples):
            words, align, dep = example_graph(s)
            n_src = len(s["src.word"])
            word_ids[b, :n_src] = words[:n_src]
            word_ids[b, len_s:len_s + len(s["tgt.word"])] = words[n_src:]
            aligns.append(align)
            deps.append(dep)
        word_ids, align_edges, dep_edges = torch.from_numpy(word_ids), _pad_pairs(aligns), _pad_pairs(deps)
        batch = {
            "id": torch.LongTensor([s["id"] for s in samples]),
            "lang": torch.LongTensor([int(s["lang"]) for s in samples]),
            "english_once": torch.from_numpy(self.english_once[[s["id"] for s in samples]]),
            "nsentences": bsz,
            "ntokens": int(sum(len(s["src.tok"]) + len(s["tgt.tok"]) for s in samples)),
            "net_input": {
                "src_tokens": src_tokens,
                "tgt_tokens": tgt_tokens,
                "word_ids": word_ids,
                "align_edges": align_edges,
                "dep_edges": dep_edges,
                # word slots per example for the SA-Graph, counted here on the CPU tensors so that
                # the model does not read it back from a GPU
                "num_words": count_words(word_ids, align_edges, dep_edges),
            },
        }
        if SPAN_FIELD in samples[0]:
            batch["target"] = torch.from_numpy(np.stack([s[SPAN_FIELD] for s in samples]))
        if self.name is not None:
            batch["split"] = self.name
        return batch
