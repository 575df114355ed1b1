"""Files between stages: the layout of a run, JSONL with a header line, reused when up to date.

Layout under ``--out DIR``::

    DIR/qa-bin/{dict.txt, SPLIT.*}          xmrc_span data (PairWriter splits, with spans)
    DIR/parallel-bin/{dict.txt, SPLIT.*}    sa_graph_pretrain data (no spans)
    DIR/work/{qa,parallel}/SPLIT/           units / words / align / parse JSONL, aligner input
                                            (aligner-input.{src,tgt}.txt) and parser input
                                            (sentences.{src,tgt}.txt) for external tools
    DIR/work/alignment.priors               the alignment model of the training split's eflomal
                                            run (+ --align-extra), applied to every other split
                                            (eflomal's priors format; ``.key`` beside it)

With ``--num-shards K --shard-id i`` every file of a split gets the suffix ``.shard{i}of{K}``
(binary splits: ``SPLIT.shard{i}of{K}``); a shard holds every K-th passage with all its
questions (every K-th line pair for parallel text).

Every stage output starts with a header ``{"stage": ..., "key": ...}``; ``key`` fingerprints the
inputs (path, size, mtime) and the options that change the output.  A stage whose output exists
with the same key is skipped (resumable runs); anything else is recomputed.  Files are written
atomically (:func:`fairseq_grafusion.files.atomic_path`), so an interrupted or failed stage never
leaves a half-written file, and a stage's stamp comes last: the JSONL file itself (``words``
writes the aligner and parser inputs before it), ``binarize.key`` after the binary split, its
gold files and ``dict.txt`` (:func:`.stages.run_binarize`).  No torch import.
"""
import hashlib
import json
import os

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.files import atomic_path

from .runner import log


class SplitPaths:
    """The files of one split of one chain (``qa`` or ``parallel``)."""

    def __init__(self, out, chain, split, suffix=""):
        self.chain, self.split = chain, split
        self.name = f"{chain}/{split}{suffix}"
        self.work = os.path.join(out, "work", chain, split)
        self.bin_dir = os.path.join(out, f"{chain}-bin")
        self.prefix = os.path.join(self.bin_dir, split + suffix)
        for stage in ("units", "words", "align", "parse"):
            setattr(self, stage, os.path.join(self.work, f"{stage}{suffix}.jsonl"))
        self.aligner_input = {s: os.path.join(self.work, f"aligner-input{suffix}.{s}.txt") for s in ("src", "tgt")}
        self.binarize_key = os.path.join(self.work, f"binarize{suffix}.key")
        self.sentences = {s: os.path.join(self.work, f"sentences{suffix}.{s}.txt") for s in ("src", "tgt")}


def priors_path(out, suffix=""):
    """The run's alignment model (:mod:`.align` priors), estimated on the training split."""
    return os.path.join(out, "work", f"alignment{suffix}.priors")


def fingerprint(paths=(), **options):
    """A short stable hash of files (path, size, mtime) and option values."""
    h = hashlib.sha1()
    for path in paths:
        if path is None:
            h.update(b"-")
            continue
        st = os.stat(path)
        h.update(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def write_jsonl(path, records, stage, key, header=None):
    """Write the header (``stage``, ``key`` and the entries of ``header``, e.g. a stage's report)
    and ``records`` (an iterable of dicts) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps({**(header or {}), "stage": stage, "key": key}, ensure_ascii=False) + "\n")
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_header(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.readline())
    except (OSError, ValueError):
        return None


def key_of(path):
    """The key a stage file was made with, or None."""
    header = read_header(path)
    return header.get("key") if header else None


def write_stamp(path, key):
    """A stamp: a file holding the key of what it vouches for (written atomically, last)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(key + "\n")


def read_stamp(path):
    """The key a stamp holds, or None without one."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def is_current(path, stage, key):
    """True when ``path`` is a complete output of ``stage`` made from the same inputs."""
    header = read_header(path)
    return bool(header) and header.get("stage") == stage and header.get("key") == key


def read_jsonl(path, stage=None):
    """Records of a stage file (the header is checked and skipped)."""
    if not os.path.exists(path):
        raise GraFusionError(f"{path} is missing: run the stage that writes it first"
                             + (f" ({stage})" if stage else ""))
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline() or "{}")
        if stage and header.get("stage") != stage:
            raise GraFusionError(f"{path}: not a '{stage}' stage file")
        return [json.loads(line) for line in f]


class StageFile:
    """One stage's output: reuse it while its key matches, else compute and write it."""

    def __init__(self, path, stage, key, force):
        self.path, self.stage, self.key = path, stage, key
        self.fresh = force or not is_current(path, stage, key)

    def skip_message(self, name):
        log(f"[{self.stage}] {name}: up to date, reusing {self.path} (--force recomputes)")


def shard_suffix(num_shards, shard_id):
    """'' for an unsharded run, else '.shard{i}of{K}'."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise GraFusionError(f"--shard-id must be in [0, {num_shards}) and --num-shards >= 1")
    return "" if num_shards == 1 else f".shard{shard_id}of{num_shards}"
