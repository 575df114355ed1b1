"""What a manifest records of the files it describes, and the check that they are still those files.

A binary split is a dozen files renamed into place one after the other (:class:`.files.AtomicFiles`,
the manifest last).  A run killed between two renames, two runs writing one directory, or a copy
of one file from another run leave a split whose files come from different runs: each file is
whole, the manifest reads fine, and only the content tells.  So the writer records, for every
file of the split, its size and SHA-1 (:func:`record`, computed on the temporary files just before
they are renamed), and every reader compares (:func:`check`): a file that differs is a one-line
:class:`GraFusionError` naming it.  SHA-1 here is a fingerprint against accidents, not a defence
against an attacker who can write the data directory.  No torch import.

Hashing reads every byte: 11.5 GB (7 SQuAD-scale languages, XLM-R's dictionary) take 7 s on a
local disk, on every start of every rank.  A file once verified is recorded in a per-user cache
(``$XDG_CACHE_HOME/fairseq-grafusion/verified/``, default ``~/.cache``) by its size, modification
time and inode, with the SHA-1 it was verified against; while all three are unchanged and the
manifest still records that SHA-1, it is not read again.  Anything that rewrites or replaces the
file changes its time or inode (a copy from another run, a rename over it, a re-run), so it is
hashed again.  The cache is best effort: unreadable or unwritable, everything is hashed.
"""
import hashlib
import json
import os

from .errors import GraFusionError

_CHUNK = 1 << 20


def file_digest(path):
    """``{"size": bytes, "sha1": hex}`` of the file ``path``."""
    h = hashlib.sha1()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            size += len(block)
            h.update(block)
    return {"size": size, "sha1": h.hexdigest()}


def record(files):
    """``{name: digest}`` of ``files``, a mapping ``{name: path}`` (the name as the manifest
    lists it, e.g. ``"src.tok.bin"``; the path may be a temporary one)."""
    return {name: file_digest(path) for name, path in sorted(files.items())}


def mismatch(path, digest):
    """Why the file ``path`` is not the one ``digest`` describes, or None when it is (a missing
    file is the caller's concern: None)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if size != digest.get("size"):
        return f"{size} bytes where the manifest recorded {digest.get('size')}"
    if file_digest(path)["sha1"] != digest.get("sha1"):
        return "its content differs from the one the manifest recorded"
    return None


def _cache_path(prefix):
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha1(os.path.realpath(prefix).encode("utf-8", "surrogatepass")).hexdigest()
    return os.path.join(root, "fairseq-grafusion", "verified", f"{key}.json")


def _stamp(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_cache(path):
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        return cached if isinstance(cached, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path, entries):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(entries, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def check(prefix, manifest_path, recorded):
    """Raise if a file ``PREFIX.NAME`` of ``recorded`` (``{NAME: digest}``) differs from its
    digest: files of two runs mixed in one split.  Files that are missing are left to the caller
    (a field's missing file has its own message; a missing gold file is only needed to decode).
    A file verified before and unchanged since (the module docstring) is not read again."""
    cache_path = _cache_path(prefix)
    cached, verified = _read_cache(cache_path), {}
    for name, digest in recorded.items():
        path = f"{prefix}.{name}"
        try:
            stamp = _stamp(path) + [digest.get("sha1")]
        except OSError:
            continue
        if cached.get(name) == stamp:
            verified[name] = stamp
            continue
        why = mismatch(path, digest)
        if why:
            raise GraFusionError(
                f"{path}: not the file {manifest_path} was written with ({why}): the split mixes files "
                "of different runs (an interrupted or concurrent grafusion-preprocess?); re-run "
                "grafusion-preprocess binarize (or combine) for this split")
        verified[name] = stamp
    if verified != cached:
        _write_cache(cache_path, verified)
