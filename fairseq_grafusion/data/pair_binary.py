"""Binary storage of paired (source, target) examples with their SA-Graph (docs/design.md,
"Data formats").

A split ``PREFIX`` (e.g. ``data-bin/train``) is a set of fairseq ``MMapIndexedDataset`` files,
one per field, read lazily through mmap, plus a text file of example ids and a manifest:

=====================  ===========================================================================
``PREFIX.src.tok``     source token ids, ``[<s> question </s></s> passage </s>]``
``PREFIX.tgt.tok``     target token ids, same layout
``PREFIX.src.word``    per source token, the index of its word node (special tokens own a node)
``PREFIX.tgt.word``    per target token, the index of its word node
``PREFIX.align``       alignment edges, flat ``[s0, t0, s1, t1, ...]`` (source word, target word)
``PREFIX.src.dep``     source dependency / same-word edges, flat pairs of source words
``PREFIX.tgt.dep``     target dependency / same-word edges, flat pairs of target words
``PREFIX.span``        optional: the answer-span target, 4 token positions (:mod:`.span_target`)
``PREFIX.<extra>``     optional extra int fields (e.g. character offsets for prediction)
``PREFIX.lang``        (v2) per example, one index into the manifest's ``languages``
``PREFIX.ids.txt``     one example id per line (a question id may repeat across windows, and
                       across languages in a split that holds several)
``PREFIX.meta.json``   manifest: format version, size, fields, ``languages`` (the target language
                       codes, ``null`` for unknown), ``language_counts``, ``src_lang``, the
                       fingerprints of the dictionary and the contexts (:mod:`.fingerprints`),
                       ``inputs`` (the writer's fingerprint of its inputs and options),
                       ``files`` (size and SHA-1 of every file of the split, gold files
                       included) and from grafusion-preprocess ``alignment`` (the alignment
                       model used and the unaligned-word ratio per language; per target language
                       in a combined split); written last
=====================  ===========================================================================

Word ids are local to their stream and dense (``0..n-1``); edges use those local ids.  The writer
checks every example before writing it and writes every file under a temporary name, renaming
them only once the whole split is complete, so a split on disk is never half-written.  Files
that appear with the split (the gold files of ``grafusion-preprocess binarize``) are written as
its companions (:meth:`PairWriter.companion`): renamed with it, before the manifest, and listed in
it.  The reader compares every file with the manifest's ``files`` (:mod:`..digests`), so a split
whose files come from different runs (a run killed during the renames, two runs in one directory)
is refused with the file named.

Version 2 records each example's target language, so that one split can mix languages (the
paper's translate-train-all) and a validation split can be scored per language.  A question is
identified by ``(language, id)``: MLQA and XQuAD use the same id in every language.  Version 1
splits still load; their language is unknown (``None``) for every example.

:class:`PairList` holds examples in memory behind the reader's interface (the hub).
"""
import json
import os
import shutil
import struct

import numpy as np
import torch
from fairseq.data import indexed_dataset

from .. import digests
from ..errors import GraFusionError
from ..files import AtomicFiles, is_write_error
from ..squad import has_line_break
from . import fingerprints
from .span_target import COLUMNS, LAYOUT, SPAN_FIELD, stream_span

FORMAT_NAME = "grafusion-pairs"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
LANG_FIELD = "lang"
REQUIRED_FIELDS = ("src.tok", "tgt.tok", "src.word", "tgt.word", "align", "src.dep", "tgt.dep")
_SIDE = {"src": "source", "tgt": "target"}


def _base_fields(with_span):
    return list(REQUIRED_FIELDS) + ([SPAN_FIELD] if with_span else [])


class _Builder(indexed_dataset.MMapIndexedDatasetBuilder):
    """fairseq's builder of one field, plus :meth:`add_array` for numpy arrays whose values are
    known to fit (``add_item`` takes a torch tensor and converts it back to numpy).

    The index is written here, in fairseq's format, with the item pointers (byte offsets into the
    ``.bin`` file) summed in int64.  fairseq's own writer sums them one item at a time, starting
    from whatever type the sizes have: the ``np.int32`` sizes that ``merge_file_`` copies from an
    index make every pointer past 2 GiB wrap around under NumPy 2, so a ``combine``d field of
    more than 2 GiB (XLM-R's dictionary at SQuAD scale) could not be read.
    """

    def add_array(self, array):
        data = array.astype(self._dtype, copy=False)
        self._data_file.write(data.tobytes())
        self._sizes.append(data.size)

    def add_bytes(self, data, size):
        """An item already in this builder's dtype (:meth:`ExampleLayout.prepare`)."""
        self._data_file.write(data)
        self._sizes.append(size)

    def merge_file_(self, another_file):
        """Append the items of the field file ``another_file`` (index sizes in one step, data copied)."""
        index = indexed_dataset.MMapIndexedDataset.Index(indexed_dataset.index_file_path(another_file))
        if index.dtype != self._dtype:
            raise ValueError(f"{another_file}: dtype {np.dtype(index.dtype)}, here {np.dtype(self._dtype)}")
        self._sizes.extend(index.sizes.tolist())
        with open(indexed_dataset.data_file_path(another_file), "rb") as f:
            shutil.copyfileobj(f, self._data_file, 1 << 24)

    def finalize(self, index_file):
        self._data_file.close()
        write_index(index_file, self._dtype, self._sizes)


def write_index(path, dtype, sizes):
    """An ``MMapIndexedDataset`` index (fairseq's layout: magic, version 1, dtype code, count,
    int32 sizes, int64 pointers), the pointers an int64 cumulative sum of the item byte sizes."""
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    if sizes.size and (sizes.min() < 0 or sizes.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{path}: an item size outside int32 ({sizes.min()}..{sizes.max()})")
    pointers = np.zeros(sizes.size, dtype=np.int64)
    np.cumsum(sizes[:-1] * np.dtype(dtype).itemsize, out=pointers[1:])
    Index = indexed_dataset.MMapIndexedDataset.Index
    with open(path, "wb") as f:
        f.write(Index._HDR_MAGIC)
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", indexed_dataset._dtype_header_code(dtype)))
        f.write(struct.pack("<Q", sizes.size))
        f.write(sizes.astype(np.int32).tobytes(order="C"))
        f.write(pointers.tobytes(order="C"))


class ExampleLayout:
    """The fields of a split, their dtypes and value ranges: checks and casts one example for a
    :class:`PairWriter` (:meth:`prepare`).  Picklable, so worker processes can prepare examples
    that the writer's process then only writes (:meth:`PairWriter.add_prepared`)."""

    def __init__(self, prefix, vocab_size, with_span=True, extra_fields=(), token_dtype=None):
        self.prefix = prefix
        self.fields = _base_fields(with_span) + list(extra_fields)
        self.dtypes = {f: _field_dtype(f, vocab_size, token_dtype) for f in self.fields}  # numpy types, as fairseq
        self.limits = {f: (int(np.iinfo(d).min), int(np.iinfo(d).max)) for f, d in self.dtypes.items()}

    def prepare(self, example_id, fields):
        """``(id, [bytes per field], [length per field])``: the example checked
        (:func:`check_example`, value ranges; a problem is one line naming it) and cast."""
        if has_line_break(str(example_id)):  # ids.txt holds one id per line
            raise GraFusionError(f"{self.prefix}: example id {example_id!r} contains a line break")
        example = {k.replace("_", "."): _as_int_array(v, k) for k, v in fields.items()}
        missing = [f for f in self.fields if f not in example]
        unknown = [f for f in example if f not in self.fields]
        if missing or unknown:
            raise GraFusionError(
                f"{self.prefix}: example {example_id!r}: missing fields {missing}, unknown {unknown}")
        where = f"{self.prefix}: example {example_id!r}"
        check_example(example, where)
        data, sizes = [], []
        for f in self.fields:
            low, high = self.limits[f]
            values = example[f]
            if len(values) and (values.min() < low or values.max() > high):
                raise GraFusionError(f"{where}: field '{f}' has values outside {np.dtype(self.dtypes[f])}")
            data.append(values.astype(self.dtypes[f]).tobytes())
            sizes.append(len(values))
        return str(example_id), data, sizes


def _field_dtype(field, vocab_size, token_dtype=None):
    """Token ids fit the vocabulary; word ids, edges and spans are < 65536; extras are signed."""
    if field.endswith(".tok"):
        return token_dtype or indexed_dataset.best_fitting_int_dtype(vocab_size)
    if field in REQUIRED_FIELDS or field == SPAN_FIELD:
        return np.uint16
    return np.int32


def _as_int_array(value, name):
    if type(value) is np.ndarray and value.dtype.kind in "iu":  # what the pipeline passes
        return value.astype(np.int64, copy=False).reshape(-1)
    array = np.asarray(value)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise GraFusionError(f"field '{name}' must hold integers, got {array.dtype}")
    return array.astype(np.int64).reshape(-1)


def check_example(example, where):
    """Raise :class:`GraFusionError` naming ``where`` if an example is inconsistent.

    ``example`` maps field names to 1-D int arrays (edges flat, as stored).
    """
    for side in ("src", "tgt"):
        tok, word = example[f"{side}.tok"], example[f"{side}.word"]
        if len(tok) != len(word):
            raise GraFusionError(
                f"{where}: {_SIDE[side]} has {len(tok)} tokens but {len(word)} token-to-word entries"
            )
        if len(word) and word.min() < 0:
            raise GraFusionError(f"{where}: {_SIDE[side]} token-to-word map has a negative word index")
    n_words = {side: int(example[f"{side}.word"].max()) + 1 if len(example[f"{side}.word"]) else 0
               for side in ("src", "tgt")}
    for field, (left, right) in (("align", ("src", "tgt")), ("src.dep", ("src", "src")),
                                 ("tgt.dep", ("tgt", "tgt"))):
        flat = example[field]
        if len(flat) % 2:
            raise GraFusionError(f"{where}: field '{field}' has an odd number of entries")
        pairs = flat.reshape(-1, 2)
        for col, side in ((0, left), (1, right)):
            bad = np.nonzero((pairs[:, col] < 0) | (pairs[:, col] >= n_words[side]))[0]
            if len(bad):
                k = int(bad[0])
                raise GraFusionError(
                    f"{where}: {field} edge {k} ({pairs[k, 0]}-{pairs[k, 1]}) refers to {_SIDE[side]} "
                    f"word {pairs[k, col]} but the example has {n_words[side]} {_SIDE[side]} words"
                )
    span = example.get(SPAN_FIELD)
    if span is not None:
        if len(span) != 4:
            raise GraFusionError(f"{where}: span must be {LAYOUT}")
        for side in COLUMNS:
            start, end = stream_span(span, side)
            length = len(example[f"{side}.tok"])
            if not 0 <= start <= end < length:
                raise GraFusionError(
                    f"{where}: {_SIDE[side]} answer span ({start}, {end}) is outside its {length} tokens"
                )


class PairWriter:
    """Write paired examples to ``PREFIX.*``; use as a context manager.

    ``vocab_size`` sets the token dtype as ``fairseq-preprocess`` does.  ``extra_fields`` names
    optional int fields beyond the required ones (``span`` included when examples carry answers).
    ``lang`` is the target language of every example (``add`` may name another one per example);
    ``src_lang`` the source language of the split, recorded in the manifest,
    ``fingerprints`` what :func:`.fingerprints.manifest_fields` gives (dictionary, contexts; the
    attribute may also be set later, before :meth:`close`),
    ``inputs`` the caller's fingerprint of what the split is made from (files and options), and
    ``meta`` more manifest entries (e.g. the pipeline's ``alignment`` report).
    A write that fails (a full disk) is one line; nothing of the split is left on disk.
    """

    def __init__(self, prefix, vocab_size, with_span=True, extra_fields=(), lang=None,
                 src_lang=None, token_dtype=None, fingerprints=None, inputs=None, meta=None):
        self.prefix = prefix
        self.fingerprints = dict(fingerprints or {})
        self.meta = dict(meta or {})
        self.layout = ExampleLayout(prefix, vocab_size, with_span, extra_fields, token_dtype)
        self.fields = self.layout.fields
        self.lang, self.src_lang, self.inputs = lang, src_lang, inputs
        self._companions = {}  # name in the manifest -> temporary path
        self._dtypes = dict(self.layout.dtypes)
        self._dtypes[LANG_FIELD] = np.uint16
        self._ids = []
        self._languages, self._lang_counts = [], []
        self._done = False
        self._files = AtomicFiles()
        self._bins = {f: self._files.path(f"{prefix}.{f}.bin") for f in self.fields + [LANG_FIELD]}
        self._builders = {f: _Builder(path, dtype=self._dtypes[f]) for f, path in self._bins.items()}

    @staticmethod
    def base_fields(with_span):
        """The fields every split has (``span`` for QA splits), before any extra field."""
        return _base_fields(with_span)

    @classmethod
    def like(cls, reader, prefix, **kwargs):
        """A writer for ``prefix`` with the fields and dtypes of ``reader``'s split."""
        extra = [f for f in reader.fields if f not in cls.base_fields(reader.has_span)]
        recorded = reader.meta.get(fingerprints.DICTIONARY)  # contexts: per split, not copied
        kwargs.setdefault("fingerprints", {fingerprints.DICTIONARY: recorded} if recorded else None)
        return cls(prefix, None, with_span=reader.has_span, extra_fields=extra,
                   token_dtype=reader.dtype("src.tok").type, **kwargs)

    def _lang_index(self, lang, count=1):
        if lang is not None and (not isinstance(lang, str) or not lang or any(c.isspace() for c in lang)):
            raise GraFusionError(f"{self.prefix}: language code {lang!r} is not a code like 'de'")
        if lang not in self._languages:
            self._languages.append(lang)
            self._lang_counts.append(0)
        k = self._languages.index(lang)
        self._lang_counts[k] += count
        return k

    def add(self, example_id, lang=None, **fields):
        """Add one example; ``fields`` maps names like ``src_tok`` / ``src.tok`` to int arrays,
        ``lang`` is its target language (default: the writer's ``lang``)."""
        self.add_prepared(self.layout.prepare(example_id, fields), lang)

    def add_prepared(self, prepared, lang=None):
        """Add an example that ``self.layout.prepare`` checked and cast (possibly in another
        process): only its bytes are written here."""
        example_id, data, sizes = prepared
        for f, item, size in zip(self.fields, data, sizes):
            self._builders[f].add_bytes(item, size)
        k = self._lang_index(self.lang if lang is None else lang)
        self._builders[LANG_FIELD].add_array(np.array([k]))
        self._ids.append(example_id)

    def add_from(self, reader, index):
        """Copy example ``index`` of a :class:`PairReader` split, its id and language included."""
        self.add(reader.ids[index], lang=reader.lang(index),
                 **{f: reader.field(f, index) for f in reader.fields})

    def append_split(self, reader, lang=None):
        """Append a whole split file by file (no per-example work), every example getting ``lang``
        (default: the language each example has in ``reader``).

        The split must have this writer's fields with the same dtypes (same dictionary size);
        a split that records another language than ``lang`` is refused.
        """
        where = f"{self.prefix}: cannot append {reader.prefix}"
        if reader.fields != self.fields:
            raise GraFusionError(f"{where}: its fields {reader.fields} differ from {self.fields}")
        for f in self.fields:
            dtype = reader.dtype(f)
            if dtype != np.dtype(self._dtypes[f]):
                raise GraFusionError(f"{where}: field '{f}' is {dtype}, here {np.dtype(self._dtypes[f])} "
                                     "(binarized with another dictionary?)")
        known = [x for x in reader.languages if x is not None]
        if lang is not None and any(x != lang for x in known):
            raise GraFusionError(f"{where}: it records language(s) {', '.join(known)}, not {lang!r}")
        for f in self.fields:
            self._builders[f].merge_file_(f"{reader.prefix}.{f}")
        if lang is None:
            codes = reader.lang_ids
            mapping = np.array([self._lang_index(x, int((codes == k).sum()))
                                for k, x in enumerate(reader.languages)], dtype=np.int64)
            new = mapping[codes] if len(codes) else codes
        else:
            new = np.full(len(reader), self._lang_index(lang, len(reader)), dtype=np.int64)
        for k in new.tolist():
            self._builders[LANG_FIELD].add_array(np.array([k]))
        self._ids.extend(reader.ids)

    def __len__(self):
        return len(self._ids)

    def companion(self, path):
        """A temporary path for a file that belongs with the split (``PREFIX.NAME``, e.g. a gold
        file): write it there before :meth:`close`, which renames it with the split's files
        (before the manifest) and records it in the manifest."""
        base = os.path.basename(self.prefix) + "."
        name = os.path.basename(path)
        if os.path.dirname(os.path.abspath(path)) != os.path.dirname(os.path.abspath(self.prefix)) \
                or not name.startswith(base):
            raise ValueError(f"a companion of {self.prefix} is named {self.prefix}.NAME, not {path}")
        tmp = self._files.path(path)
        self._companions[name[len(base):]] = tmp
        return tmp

    def close(self):
        """Finish every file and move them to their final names (the manifest last)."""
        if self._done:
            return
        pending = {}
        for f in self.fields + [LANG_FIELD]:
            pending[f"{f}.idx"] = self._files.path(f"{self.prefix}.{f}.idx")
            self._builders[f].finalize(pending[f"{f}.idx"])
            pending[f"{f}.bin"] = self._bins[f]
        pending["ids.txt"] = self._files.path(f"{self.prefix}.ids.txt")
        with open(pending["ids.txt"], "w", encoding="utf-8") as out:
            out.writelines(i + "\n" for i in self._ids)
        for name, tmp in self._companions.items():
            if not os.path.exists(tmp):
                self.abort()
                raise ValueError(f"companion {self.prefix}.{name} of the split was not written")
            pending[name] = tmp
        if not self._languages:
            self._lang_index(self.lang, 0)
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "size": len(self._ids),
                "fields": self.fields, "languages": self._languages,
                "language_counts": dict(zip((str(x) for x in self._languages), self._lang_counts)),
                "src_lang": self.src_lang, **self.fingerprints, "inputs": self.inputs,
                "files": digests.record(pending)}
        meta.update({k: v for k, v in self.meta.items() if k not in meta})
        with open(self._files.path(f"{self.prefix}.meta.json"), "w", encoding="utf-8") as out:
            json.dump(meta, out, indent=1)
        self._files.commit()  # the manifest last
        self._done = True

    def abort(self):
        """Remove the temporary files; nothing of this split is left on disk."""
        for builder in self._builders.values():
            try:
                builder._data_file.close()  # fairseq's builder has no public close
            except OSError:  # its buffer could not be flushed (a full disk): removed below
                pass
        self._files.abort()
        self._done = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            try:
                self.close()
                return False
            except BaseException as e:  # close failed: nothing is left, and what it raised is raised
                exc = e
        self.abort()
        if is_write_error(exc, None):
            raise GraFusionError(f"cannot write {self.prefix}.*: {exc.strerror or exc}") from None
        if exc_type is None:
            raise exc
        return False


class _EmptyField:
    """A field that is empty in every example (e.g. the dependency edges of a split prepared for a
    model without them): its data file has 0 bytes, which numpy cannot map, so fairseq's
    ``MMapIndexedDataset`` cannot open it."""

    def __init__(self, index):
        self.sizes = index.sizes
        self._empty = torch.from_numpy(np.empty(0, dtype=index.dtype))

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        return self._empty


class PairReader:
    """Lazy, mmap-backed access to a split written by :class:`PairWriter`.

    ``reader[i]`` returns a dict of numpy int64 arrays (edges as ``(E, 2)``), checked with
    :func:`check_example` so that a corrupt file fails with the split, index and id named.
    ``reader.lang(i)`` is example i's target language (``None`` if unknown, as in version 1).
    """

    def __init__(self, prefix):
        self.prefix = prefix
        meta_path = f"{prefix}.meta.json"
        if not os.path.exists(meta_path):
            directory = os.path.dirname(prefix) or "."
            raise GraFusionError(
                f"{meta_path} is missing: '{os.path.basename(prefix)}' is not a complete grafusion "
                f"split in {directory} (write it with grafusion-preprocess binarize)")
        try:
            with open(meta_path, encoding="utf-8") as f:
                self.meta = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise GraFusionError(f"{meta_path}: cannot read the manifest ({e})") from None
        if self.meta.get("format") != FORMAT_NAME or self.meta.get("version") not in READABLE_VERSIONS:
            raise GraFusionError(
                f"{meta_path}: not a {FORMAT_NAME} manifest of version "
                f"{' or '.join(map(str, READABLE_VERSIONS))} (found {self.meta.get('format')!r} "
                f"v{self.meta.get('version')}); re-run grafusion-preprocess binarize")
        self.version = self.meta["version"]
        self.fields = list(self.meta["fields"])
        for f in self.fields:
            for ext in (".bin", ".idx"):
                if not os.path.exists(f"{prefix}.{f}{ext}"):
                    raise GraFusionError(f"{prefix}.{f}{ext} is missing (field '{f}' of the split)")
        # files of one run only (manifests written before the digests have no "files": not checked)
        digests.check(prefix, meta_path, self.meta.get("files") or {})
        self._data = {f: _open_field(f"{prefix}.{f}") for f in self.fields}
        ids_path = f"{prefix}.ids.txt"
        if not os.path.exists(ids_path):
            raise GraFusionError(f"{ids_path} is missing (example ids of the split)")
        with open(ids_path, encoding="utf-8") as f:
            self.ids = f.read().splitlines()
        size = self.meta["size"]
        for f, ds in self._data.items():
            if len(ds) != size:
                raise GraFusionError(
                    f"{prefix}.{f}: holds {len(ds)} examples, the manifest says {size}")
        if len(self.ids) != size:
            raise GraFusionError(f"{ids_path}: holds {len(self.ids)} ids, the manifest says {size}")
        self._load_languages()

    def _load_languages(self):
        """``languages`` (codes, ``None`` = unknown) and ``lang_ids`` (per example, an index into
        ``languages``); a version-1 split has one unknown language."""
        size = self.meta["size"]
        if self.version == 1:
            self.languages = [None]
            self.lang_ids = np.zeros(size, dtype=np.int64)
            return
        self.languages = list(self.meta.get("languages") or [None])
        prefix = f"{self.prefix}.{LANG_FIELD}"
        for ext in (".bin", ".idx"):
            if not os.path.exists(prefix + ext):
                raise GraFusionError(f"{prefix}{ext} is missing (the examples' languages)")
        index = indexed_dataset.MMapIndexedDataset.Index(indexed_dataset.index_file_path(prefix))
        if len(index) != size or (size and (index.sizes != 1).any()):
            raise GraFusionError(f"{prefix}: expected one language per example for {size} examples")
        # one value per example: the data file is the array itself
        codes = np.fromfile(indexed_dataset.data_file_path(prefix), dtype=index.dtype)
        if len(codes) != size or (size and codes.max() >= len(self.languages)):
            raise GraFusionError(f"{prefix}: language indices do not match the manifest's "
                                 f"{len(self.languages)} languages")
        self.lang_ids = codes.astype(np.int64)

    def lang(self, i):
        """Target language code of example ``i`` (``None`` if the split does not record it)."""
        return self.languages[self.lang_ids[i]]

    def question_key(self, i):
        """``(language, id)``: what identifies a question in a split that mixes languages."""
        return self.lang(i), self.ids[i]

    def dtype(self, name):
        """The stored dtype of field ``name``."""
        path = indexed_dataset.index_file_path(f"{self.prefix}.{name}")
        return np.dtype(indexed_dataset.MMapIndexedDataset.Index(path).dtype)

    @property
    def has_span(self):
        return SPAN_FIELD in self.fields

    def max_token(self):
        """The largest token id of both streams (one pass over the mmap'ed files)."""
        largest = -1
        for f in ("src.tok", "tgt.tok"):
            path = indexed_dataset.data_file_path(f"{self.prefix}.{f}")
            if os.path.getsize(path):
                largest = max(largest, int(np.memmap(path, dtype=self.dtype(f), mode="r").max()))
        return largest

    def __len__(self):
        return self.meta["size"]

    @property
    def src_sizes(self):
        return self._data["src.tok"].sizes

    @property
    def tgt_sizes(self):
        return self._data["tgt.tok"].sizes

    def field(self, name, i):
        return self._data[name][i].numpy()

    def __getitem__(self, i):
        example = {f: self._data[f][i].numpy() for f in self.fields}
        check_example(example, f"{self.prefix}: example {i} (id {self.ids[i]!r})")
        return _edges_as_pairs(example)


def _open_field(prefix):
    """One field's ``MMapIndexedDataset`` (:class:`_EmptyField` for a field without values); a
    damaged index or a data file shorter or longer than its index says (a truncated copy) is one
    line naming the file."""
    try:
        index = indexed_dataset.MMapIndexedDataset.Index(indexed_dataset.index_file_path(prefix))
        expected = int(index.sizes.sum()) * np.dtype(index.dtype).itemsize
    except Exception as e:  # fairseq asserts on the magic bytes, numpy raises on short buffers
        raise GraFusionError(f"{prefix}.idx: damaged index ({type(e).__name__}: "
                             f"{(str(e).splitlines() or [''])[0][:120]}); binarize the split again") from None
    found = os.path.getsize(indexed_dataset.data_file_path(prefix))
    if found != expected:
        raise GraFusionError(f"{prefix}.bin: {found} bytes, its index describes {expected} (a "
                             "truncated or damaged copy); copy or binarize the split again")
    if found == 0:  # numpy cannot mmap an empty file
        return _EmptyField(index)
    return indexed_dataset.MMapIndexedDataset(prefix)


def _edges_as_pairs(example):
    for f in ("align", "src.dep", "tgt.dep"):
        example[f] = example[f].reshape(-1, 2)
    return example


class PairList:
    """Examples held in memory, with :class:`PairReader`'s interface: what the hub batches.

    ``examples`` is a list of ``(id, fields)``, ``fields`` as :meth:`PairWriter.add` takes them;
    every example is checked as the writer checks it (``name`` is the prefix errors show)."""

    def __init__(self, examples, name="examples"):
        self.prefix = name
        self.ids, self._examples = [], []
        for example_id, fields in examples:
            example = {k.replace("_", "."): _as_int_array(v, k) for k, v in fields.items()}
            check_example(example, f"{name}: example {example_id!r}")
            self.ids.append(str(example_id))
            self._examples.append(example)
        self.fields = list(self._examples[0]) if self._examples else list(REQUIRED_FIELDS)
        self.src_sizes = np.array([len(e["src.tok"]) for e in self._examples], dtype=np.int64)
        self.tgt_sizes = np.array([len(e["tgt.tok"]) for e in self._examples], dtype=np.int64)
        self.languages = [None]  # one question's language is not recorded (as version 1)
        self.lang_ids = np.zeros(len(self._examples), dtype=np.int64)

    def lang(self, i):
        return self.languages[self.lang_ids[i]]

    def question_key(self, i):
        return self.lang(i), self.ids[i]

    @property
    def has_span(self):
        return SPAN_FIELD in self.fields

    def __len__(self):
        return len(self._examples)

    def field(self, name, i):
        return self._examples[i][name]

    def __getitem__(self, i):
        return _edges_as_pairs(dict(self._examples[i]))
