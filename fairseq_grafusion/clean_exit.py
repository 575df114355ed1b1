"""Stop fairseq's batch-prefetch threads before the interpreter shuts down.

fairseq wraps every epoch's DataLoader in a ``BufferedIterator`` whose daemon
``BackgroundConsumer`` thread keeps pulling batches from the DataLoader workers. A run that stops
mid-epoch (``--max-update``) exits with that thread still receiving tensors. If Python finalizes
while the thread is inside torch's C++ code (rebuilding a tensor from shared memory), the thread
is killed with the GIL re-acquire in a ``noexcept`` frame and the whole process dies with
``terminate called without an active exception`` (SIGABRT, exit status 134) after a run that
succeeded: a finished ``fairseq-train`` then breaks the user's ``set -e`` pipeline.

:func:`stop_prefetch_threads` runs at exit (registered by :func:`install`, when the plugin loads; ``atexit``
handlers run before daemon threads are killed and, being registered later, before torch's and
multiprocessing's own): it tells every live consumer to stop after its current batch, drains its
queue so that the ``put`` it is blocked in returns, and joins it.
"""
import atexit
import logging
import queue
import threading
import time

logger = logging.getLogger(__name__)


def _consumers():
    try:
        from fairseq.data.iterators import BackgroundConsumer
    except ImportError:  # fairseq not importable: nothing of its can be running
        return []
    return [t for t in threading.enumerate() if isinstance(t, BackgroundConsumer) and t.is_alive()]


def _drain(q):
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def stop_prefetch_threads(timeout=30.0):
    """Stop and join fairseq's live ``BackgroundConsumer`` threads; returns how many were left
    running after ``timeout`` seconds (0 when all stopped)."""
    threads = _consumers()
    deadline = time.monotonic() + timeout
    for t in threads:
        # the consumer checks ``count >= _max_len`` after every put: 0 stops it after this batch
        t._max_len = 0
    for t in threads:
        while t.is_alive() and time.monotonic() < deadline:
            _drain(t._queue)
            t.join(0.01)
    left = sum(t.is_alive() for t in threads)
    if left:
        logger.warning(f"{left} data prefetch thread(s) still running at exit")
    return left


_registered = []


def install():
    """Run :func:`stop_prefetch_threads` at exit (once per process)."""
    if not _registered:
        atexit.register(stop_prefetch_threads)
        _registered.append(True)
