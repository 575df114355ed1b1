"""Files between stages: JSONL with a header line, written atomically, reused when up to date.

Every stage output starts with a header ``{"stage": ..., "key": ...}``; ``key`` fingerprints the
inputs (path, size, mtime) and the options that change the output.  A stage whose output exists
with the same key is skipped (resumable runs); anything else is recomputed.  Files are written
under a temporary name and moved into place with :func:`os.replace`, so an interrupted or failed
stage never leaves a half-written file.
"""
import contextlib
import hashlib
import json
import os
import uuid

from fairseq_grafusion.errors import GraFusionError


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


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_jsonl(path, records, stage, key):
    """Write the header and ``records`` (an iterable of dicts) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps({"stage": stage, "key": key}) + "\n")
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_header(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.readline())
    except (OSError, ValueError):
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


def shard_suffix(num_shards, shard_id):
    """'' for an unsharded run, else '.shard{i}of{K}'."""
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise GraFusionError(f"--shard-id must be in [0, {num_shards}) and --num-shards >= 1")
    return "" if num_shards == 1 else f".shard{shard_id}of{num_shards}"
