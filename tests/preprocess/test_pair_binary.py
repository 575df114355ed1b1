"""The binary pair format: writer/reader round trip, checks, batching into padded index tensors."""
import json
import os

import numpy as np
import pytest
import torch
from fairseq.data import indexed_dataset

from conftest import restamp_split
from fairseq_grafusion.data import GraphPairDataset, PairReader, PairWriter
from fairseq_grafusion.errors import GraFusionError

VOCAB = 300


def random_example(rng):
    def stream():
        n_words = rng.randint(3, 12)
        pieces = rng.randint(1, 4, size=n_words)
        word = np.repeat(np.arange(n_words), pieces)
        tok = rng.randint(4, VOCAB, size=len(word))
        return tok, word, n_words

    s_tok, s_word, ns = stream()
    t_tok, t_word, nt = stream()
    na, nds, ndt = rng.randint(0, 8), rng.randint(0, 8), rng.randint(0, 8)
    align = np.stack([rng.randint(0, ns, na), rng.randint(0, nt, na)], 1)
    sdep = rng.randint(0, ns, (nds, 2))
    tdep = rng.randint(0, nt, (ndt, 2))
    ss = sorted(rng.randint(0, len(s_tok), 2))
    ts = sorted(rng.randint(0, len(t_tok), 2))
    return dict(src_tok=s_tok, tgt_tok=t_tok, src_word=s_word, tgt_word=t_word,
                align=align.reshape(-1), src_dep=sdep.reshape(-1), tgt_dep=tdep.reshape(-1),
                span=np.array(ss + ts))


def write_split(prefix, examples):
    with PairWriter(prefix, VOCAB) as w:
        for i, ex in enumerate(examples):
            w.add(f"q{i}", **ex)


def test_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    examples = [random_example(rng) for _ in range(50)]
    prefix = str(tmp_path / "train")
    write_split(prefix, examples)
    reader = PairReader(prefix)
    assert len(reader) == 50 and reader.has_span
    assert reader.ids == [f"q{i}" for i in range(50)]
    for i in rng.permutation(50):
        got, ex = reader[i], examples[i]
        for key in ("src_tok", "tgt_tok", "src_word", "tgt_word", "span"):
            np.testing.assert_array_equal(got[key.replace("_", ".")], ex[key])
        for key in ("align", "src_dep", "tgt_dep"):
            np.testing.assert_array_equal(got[key.replace("_", ".")], ex[key].reshape(-1, 2))
    np.testing.assert_array_equal(reader.src_sizes, [len(e["src_tok"]) for e in examples])
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


def test_a_field_empty_in_every_example_round_trips(tmp_path):
    """No dependency edges anywhere (a split for a model without them): the field's data file has
    0 bytes, which fairseq's mmap reader cannot open; the reader still gives empty edge lists."""
    rng = np.random.RandomState(1)
    examples = [dict(random_example(rng), src_dep=np.zeros(0, np.int64), tgt_dep=np.zeros(0, np.int64))
                for _ in range(3)]
    prefix = str(tmp_path / "test")
    write_split(prefix, examples)
    assert os.path.getsize(prefix + ".src.dep.bin") == 0
    reader = PairReader(prefix)
    for i, ex in enumerate(examples):
        got = reader[i]
        assert got["src.dep"].shape == got["tgt.dep"].shape == (0, 2)
        np.testing.assert_array_equal(got["align"], ex["align"].reshape(-1, 2))
    dataset = GraphPairDataset(reader, pad_idx=1)
    dep = dataset.collater([dataset[i] for i in range(3)])["net_input"]["dep_edges"]
    assert dep.shape == (3, 1, 2) and (dep == -1).all()  # padding only


def test_writer_rejects_edges_outside_the_example_and_leaves_nothing(tmp_path):
    rng = np.random.RandomState(1)
    good = random_example(rng)
    bad = dict(good, align=np.array([0, 0, 1, 99]))
    with pytest.raises(GraFusionError, match=r"example 'q1'.*align edge 1 \(1-99\).*target word 99"):
        write_split(str(tmp_path / "train"), [good, bad])
    assert os.listdir(tmp_path) == []


def test_reader_names_the_example_with_a_corrupt_edge(tmp_path):
    rng = np.random.RandomState(2)
    prefix = str(tmp_path / "valid")
    write_split(prefix, [random_example(rng) for _ in range(3)])
    # corrupt the source dependency edges of example 2 behind the writer's back
    builder = indexed_dataset.MMapIndexedDatasetBuilder(prefix + ".src.dep.bin", dtype=np.uint16)
    for edges in ([0, 1], [1, 0], [0, 500]):
        builder.add_item(torch.tensor(edges))
    builder.finalize(prefix + ".src.dep.idx")
    restamp_split(prefix)
    reader = PairReader(prefix)
    reader[0]
    with pytest.raises(GraFusionError) as e:
        reader[2]
    msg = str(e.value)
    assert "valid: example 2 (id 'q2')" in msg and "src.dep edge 0 (0-500)" in msg
    assert "\n" not in msg


def test_missing_file_is_named(tmp_path):
    rng = np.random.RandomState(3)
    prefix = str(tmp_path / "train")
    write_split(prefix, [random_example(rng)])
    os.remove(prefix + ".tgt.word.idx")
    with pytest.raises(GraFusionError, match=r"train\.tgt\.word\.idx is missing"):
        PairReader(prefix)
    with pytest.raises(GraFusionError, match=r"test\.meta\.json is missing"):
        PairReader(str(tmp_path / "test"))


def test_collater_numbers_target_words_after_source_words(tmp_path):
    rng = np.random.RandomState(4)
    examples = [random_example(rng) for _ in range(6)]
    # a duplicate, a reversed duplicate and a self-pair must not reach the model twice / at all
    examples[0]["src_dep"] = np.array([0, 1, 1, 0, 0, 1, 2, 2])
    prefix = str(tmp_path / "train")
    write_split(prefix, examples)
    ds = GraphPairDataset(PairReader(prefix), pad_idx=1)
    batch = ds.collater([ds[i] for i in range(6)])
    net = batch["net_input"]
    len_s, len_t = net["src_tokens"].size(1), net["tgt_tokens"].size(1)
    assert net["word_ids"].shape == (6, len_s + len_t)
    for b, ex in enumerate(examples):
        ns, nt = len(ex["src_tok"]), len(ex["tgt_tok"])
        n_src_words = ex["src_word"].max() + 1
        assert net["src_tokens"][b, :ns].tolist() == ex["src_tok"].tolist()
        assert (net["src_tokens"][b, ns:] == 1).all() and (net["tgt_tokens"][b, nt:] == 1).all()
        words = net["word_ids"][b]
        assert words[:ns].tolist() == ex["src_word"].tolist() and (words[ns:len_s] == -1).all()
        assert words[len_s:len_s + nt].tolist() == (ex["tgt_word"] + n_src_words).tolist()
        assert (words[len_s + nt:] == -1).all()

        def as_set(t):
            return {tuple(sorted(p)) for p in t.tolist() if p[0] >= 0}

        align = {tuple(sorted((s, t + n_src_words))) for s, t in ex["align"].reshape(-1, 2).tolist()}
        dep = {tuple(sorted(p)) for p in ex["src_dep"].reshape(-1, 2).tolist()}
        dep |= {tuple(sorted(p + n_src_words)) for p in ex["tgt_dep"].reshape(-1, 2)}
        dep = {p for p in dep if p[0] != p[1]}
        assert as_set(net["align_edges"][b]) == {p for p in align if p[0] != p[1]}
        assert as_set(net["dep_edges"][b]) == dep
        real = net["dep_edges"][b][net["dep_edges"][b][:, 0] >= 0]
        assert len(real) == len(dep)  # no duplicates
    assert batch["target"].tolist() == [ex["span"].tolist() for ex in examples]
    assert batch["ntokens"] == sum(len(e["src_tok"]) + len(e["tgt_tok"]) for e in examples)


def test_ordering_and_size_filter(tmp_path):
    rng = np.random.RandomState(5)
    examples = [random_example(rng) for _ in range(20)]
    prefix = str(tmp_path / "train")
    write_split(prefix, examples)
    ds = GraphPairDataset(PairReader(prefix), pad_idx=1, seed=3)
    order = ds.ordered_indices()
    assert sorted(order.tolist()) == list(range(20))
    assert (np.diff(ds.sizes[order]) >= 0).all()
    # fairseq's batching drops a last batch smaller than the multiple (issue #5036); ours keeps it
    batches = ds.batch_by_size(order, max_sentences=8, required_batch_size_multiple=8)
    assert np.concatenate(batches).tolist() == order.tolist() and len(batches[-1]) == 4
    limit = 15
    kept, dropped = ds.filter_indices_by_size(order, limit)
    assert all(max(ds.size(i)) <= limit for i in kept)
    assert all(max(ds.size(i)) > limit for i in dropped) and len(kept) + len(dropped) == 20


def test_grouped_batches_keep_every_window_of_a_question_together(tmp_path):
    rng = np.random.RandomState(6)
    prefix = str(tmp_path / "valid")
    windows = rng.randint(1, 4, size=30)  # 1-3 windows per question
    with PairWriter(prefix, VOCAB) as w:
        for q, n in enumerate(windows):
            for _ in range(n):
                w.add(f"q{q}", **random_example(rng))
    ds = GraphPairDataset(PairReader(prefix), pad_idx=1, group_questions=True)
    order = ds.ordered_indices()
    assert order.tolist() == list(range(len(ds)))
    batches = ds.batch_by_size(order, max_sentences=4)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(ds)))
    seen = {}
    for k, batch in enumerate(batches):
        assert len(batch) <= 4 or len({ds.reader.ids[i] for i in batch}) == 1
        for i in batch:
            seen.setdefault(ds.reader.ids[i], set()).add(k)
    assert all(len(ks) == 1 for ks in seen.values())
    assert len(batches) >= len(ds) / 4


def _undirected_unique_before_key(pairs):
    """The dedupe before the integer-key rewrite (``np.unique(axis=0)``), kept as the reference."""
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0)


def test_edge_dedupe_equals_np_unique_rows():
    from fairseq_grafusion.data.graph_pair_dataset import _undirected_unique

    rng = np.random.RandomState(3)
    cases = [np.zeros((0, 2), dtype=np.int64), np.array([[2, 2], [5, 5]]), np.array([[7, 3]])]
    for _ in range(300):
        n, high = rng.randint(1, 60), rng.choice([2, 5, 50, 100_000])
        low = rng.choice([0, 0, -3])  # offsets may shift ids; negatives must not break the key
        cases.append(rng.randint(low, high, (n, 2)).astype(rng.choice([np.int32, np.int64])))
    for pairs in cases:
        new, before = _undirected_unique(pairs), _undirected_unique_before_key(pairs)
        assert new.dtype == before.dtype and new.shape == before.shape
        assert np.array_equal(new, before)


def test_languages_are_recorded_per_example(tmp_path):
    rng = np.random.RandomState(7)
    prefix = str(tmp_path / "valid")
    langs = ["de", "de", "zh", None, "zh", "ar"]
    with PairWriter(prefix, VOCAB, lang="ar", src_lang="en") as w:
        for i, lang in enumerate(langs):
            w.add("same-id" if i < 4 else f"q{i}", lang=lang, **random_example(rng))
    reader = PairReader(prefix)
    expected = [x if x is not None else "ar" for x in langs]  # None: the writer's language
    assert [reader.lang(i) for i in range(len(reader))] == expected
    assert reader.languages == ["de", "zh", "ar"] and reader.version == 2
    assert reader.meta["language_counts"] == {"de": 2, "zh": 2, "ar": 2}
    assert reader.meta["src_lang"] == "en"
    assert reader.question_key(0) == reader.question_key(1) != reader.question_key(2)
    ds = GraphPairDataset(reader, pad_idx=1)
    batch = ds.collater([ds[i] for i in range(len(ds))])
    assert [ds.languages[k] for k in batch["lang"].tolist()] == expected
    with pytest.raises(GraFusionError, match="language code 'd e'"):
        with PairWriter(str(tmp_path / "bad"), VOCAB) as w:
            w.add("q", lang="d e", **random_example(rng))


def test_a_version_1_split_still_loads_with_an_unknown_language(tmp_path):
    rng = np.random.RandomState(8)
    prefix = str(tmp_path / "train")
    examples = [random_example(rng) for _ in range(4)]
    write_split(prefix, examples)
    # what the version-1 writer left on disk: no language file, no language keys
    meta = json.load(open(prefix + ".meta.json"))
    for key in ("languages", "language_counts", "src_lang"):
        del meta[key]
    json.dump(dict(meta, version=1), open(prefix + ".meta.json", "w"))
    for ext in (".bin", ".idx"):
        os.remove(prefix + ".lang" + ext)
    reader = PairReader(prefix)
    assert reader.version == 1 and reader.languages == [None] and reader.lang(3) is None
    np.testing.assert_array_equal(reader[2]["src.tok"], examples[2]["src_tok"])
    ds = GraphPairDataset(reader, pad_idx=1)
    assert ds.collater([ds[0], ds[1]])["lang"].tolist() == [0, 0]

    json.dump(dict(meta, version=7), open(prefix + ".meta.json", "w"))
    with pytest.raises(GraFusionError) as e:
        PairReader(prefix)
    assert "v7" in str(e.value) and "re-run grafusion-preprocess binarize" in str(e.value)
    assert "\n" not in str(e.value)


def test_append_split_and_add_from_copy_examples_with_their_language(tmp_path):
    rng = np.random.RandomState(9)
    parts = {}
    for lang, n in (("de", 5), ("zh", 3)):
        parts[lang] = [random_example(rng) for _ in range(n)]
        # the German part records its language, the Chinese one does not (as version 1)
        with PairWriter(str(tmp_path / f"part-{lang}"), VOCAB, lang="de" if lang == "de" else None) as w:
            for i, ex in enumerate(parts[lang]):
                w.add(f"q{i}", **ex)
    readers = {lang: PairReader(str(tmp_path / f"part-{lang}")) for lang in parts}
    with PairWriter.like(readers["de"], str(tmp_path / "all")) as w:
        w.append_split(readers["de"], "de")
        w.append_split(readers["zh"], "zh")
        w.add_from(readers["de"], 4)  # a copy keeps the language its split records
    joined = PairReader(str(tmp_path / "all"))
    flat = [("de", i, ex) for i, ex in enumerate(parts["de"])] + \
           [("zh", i, ex) for i, ex in enumerate(parts["zh"])] + [("de", 4, parts["de"][4])]
    assert len(joined) == len(flat) == 9
    assert joined.lang(8) == "de" and joined.languages == ["de", "zh"]
    for k, (lang, i, ex) in enumerate(flat):
        assert joined.question_key(k) == (lang, f"q{i}")
        for key in ("src_tok", "tgt_word", "span"):
            np.testing.assert_array_equal(joined[k][key.replace("_", ".")], ex[key])
    # a split binarized with another dictionary size has other token dtypes: refused, named
    with PairWriter(str(tmp_path / "big"), 70000) as w:
        w.add("q0", **random_example(rng))
    with pytest.raises(GraFusionError,
                       match=r"field 'src.tok' is uint32, here uint16 .binarized with another dictionary"):
        with PairWriter.like(readers["de"], str(tmp_path / "mixed")) as w:
            w.append_split(PairReader(str(tmp_path / "big")), "ar")
    assert not [f for f in os.listdir(tmp_path) if f.startswith("mixed")]
    with pytest.raises(GraFusionError, match="records language"):
        with PairWriter.like(readers["de"], str(tmp_path / "mixed")) as w:
            w.append_split(joined, "ar")


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_index_pointers_past_2_gib_do_not_wrap(tmp_path, dtype):
    """A field of more than 2 GiB (``combine`` of 7 SQuAD-scale pairs with XLM-R's dictionary
    wrote 2.9 GB ``tgt.tok.bin``): every item's byte offset is exact.  fairseq's index writer
    summed the ``np.int32`` sizes that ``merge_file_`` copies from an index in int32 (NumPy 2), so
    the offsets wrapped past 2**31 and reading the combined split failed.  Only the indexes are big
    here: a merged index claims items of 2**29 .. 2**30 values over an empty data file."""
    from fairseq_grafusion.data.pair_binary import _Builder

    claimed = [2 ** 30, 2 ** 29 + 7, 2 ** 30, 3]
    part = str(tmp_path / "part")
    with indexed_dataset.MMapIndexedDataset.Index.writer(part + ".idx", dtype) as index:
        index.write(claimed)  # Python ints: fairseq writes these pointers right
    open(part + ".bin", "wb").close()
    builder = _Builder(str(tmp_path / "joined.bin"), dtype=dtype)
    builder.merge_file_(part)
    builder.merge_file_(part)  # as combine appends one pair after the other
    builder.add_bytes(b"", np.int32(5))
    builder.finalize(str(tmp_path / "joined.idx"))
    joined = indexed_dataset.MMapIndexedDataset.Index(str(tmp_path / "joined.idx"))
    sizes = claimed * 2 + [5]
    expected, offset = [], 0
    for size in sizes:
        expected.append(offset)
        offset += size * np.dtype(dtype).itemsize
    assert joined.sizes.tolist() == sizes
    assert joined._pointers.tolist() == expected
    assert expected[-1] > 2 ** 32


def test_a_verified_split_is_hashed_once_until_a_file_changes(tmp_path, monkeypatch):
    """Every reader compares the split's files with its manifest (SHA-1): 11.5 GB at SQuAD scale x
    7 languages took 7 s per start and rank.  A file verified once is not read again while its
    size, modification time and inode are those it was verified with; a file of another run put
    in its place (renamed over it with the same size and time), rewritten in place, or a manifest
    that records another SHA-1, is hashed again and refused."""
    from fairseq_grafusion import digests

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.RandomState(3)
    prefix = str(tmp_path / "train")
    write_split(prefix, [random_example(rng) for _ in range(20)])
    hashed = []
    real = digests.file_digest
    monkeypatch.setattr(digests, "file_digest", lambda path: hashed.append(os.path.basename(path)) or real(path))
    recorded = json.load(open(f"{prefix}.meta.json"))["files"]
    PairReader(prefix)
    assert sorted(hashed) == sorted(f"train.{name}" for name in recorded)
    hashed.clear()
    PairReader(prefix)
    PairReader(prefix)
    assert hashed == []  # verified: nothing read again

    def another_run(path):  # the same size, other bytes
        data = bytearray(open(path, "rb").read())
        data[0] ^= 0xFF
        return bytes(data)

    target = f"{prefix}.align.bin"
    before = os.stat(target)
    other = str(tmp_path / "other.bin")
    with open(other, "wb") as f:
        f.write(another_run(target))
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, target)  # renamed over it: same size and time, a new inode
    assert os.stat(target).st_size == before.st_size and os.stat(target).st_mtime_ns == before.st_mtime_ns
    with pytest.raises(GraFusionError, match="align.bin: not the file"):
        PairReader(prefix)
    write_split(prefix, [random_example(rng) for _ in range(20)])  # a new run: new manifest
    PairReader(prefix)
    hashed.clear()
    with open(target, "r+b") as f:  # rewritten in place: same inode and size, a new time
        f.write(another_run(target)[:1])
    with pytest.raises(GraFusionError, match="align.bin: not the file"):
        PairReader(prefix)
    assert hashed == ["train.align.bin"]  # only the changed file was read again
    # a manifest that records another SHA-1 for a file verified and unchanged since: not vouched for
    restamp_split(prefix)
    PairReader(prefix)  # align.bin verified (and cached) as it is now
    hashed.clear()
    meta = json.load(open(f"{prefix}.meta.json"))
    meta["files"]["align.bin"]["sha1"] = "0" * 40
    json.dump(meta, open(f"{prefix}.meta.json", "w"))
    with pytest.raises(GraFusionError, match="align.bin: not the file"):
        PairReader(prefix)
    assert hashed == ["train.align.bin"]
