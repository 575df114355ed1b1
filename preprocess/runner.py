"""How the stages run and report: progress on stderr, summaries on stdout, worker processes."""
import collections
import gc
import multiprocessing
import sys

from tqdm import tqdm

from .child_process import child_setup


def log(message=""):
    """Progress and summaries go to stdout; stderr is kept for errors."""
    print(message, flush=True)


def progress(iterable, desc, total=None):
    """A tqdm bar on stderr when it is a terminal (silent in pipes and tests)."""
    return tqdm(iterable, desc=desc, total=total, disable=None, file=sys.stderr, leave=False)


class Summary:
    """Counters of one stage, printed as a short block."""

    def __init__(self, stage, name):
        self.stage, self.name = stage, name
        self.counts = collections.Counter()
        self.notes = []

    def __setitem__(self, key, value):
        self.counts[key] = value

    def __getitem__(self, key):
        return self.counts[key]

    def add(self, key, n=1):
        self.counts[key] += n

    def print(self):
        log(f"[{self.stage}] {self.name}")
        for key, value in self.counts.items():
            if isinstance(value, float):
                value = f"{value:.3f}"
            elif isinstance(value, tuple):
                value = " / ".join(map(str, value))
            log(f"    {key}: {value}")
        for note in self.notes:
            log(f"    {note}")


def parallel_map(func, items, workers, desc, initializer=None, initargs=()):
    """``[func(x) for x in items]`` over ``workers`` processes (in order), with a progress bar.

    ``initializer(*initargs)`` runs once in every process that calls ``func`` (this one when
    ``workers`` is 1); forked workers inherit ``initargs`` without pickling them."""
    return list(parallel_iter(func, items, workers, desc, initializer, initargs))


def parallel_iter(func, items, workers, desc, initializer=None, initargs=()):
    """:func:`parallel_map` as a generator: each result as soon as it and those before it are
    done, so the caller's own work on them overlaps the workers' (the pool ends with the
    generator, also when the caller stops early)."""
    items = list(items)
    if workers <= 1 or len(items) < 2:
        if initializer:
            initializer(*initargs)
        yield from (func(x) for x in progress(items, desc))
        return
    chunk = max(1, len(items) // (workers * 8))
    gc.freeze()  # the forked workers' garbage collector then leaves the parent's objects (and pages) alone
    try:
        # workers die with this process, also when it is killed (child_process)
        with multiprocessing.get_context("fork").Pool(workers, child_setup(initializer, initargs)) as pool:
            yield from progress(pool.imap(func, items, chunksize=chunk), desc, total=len(items))
    finally:
        gc.unfreeze()
