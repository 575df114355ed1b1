"""fairseq's prefetch thread is stopped before the interpreter finalizes (clean_exit.py).

Killing that daemon thread while it is inside torch's C++ code aborts a finished run with
"terminate called without an active exception" (seen once in CI after ``--max-update 1``)."""
import os
import subprocess
import sys
import textwrap

import torch
from fairseq.data import iterators

from conftest import REPO
from fairseq_grafusion.clean_exit import stop_prefetch_threads


class Endless(torch.utils.data.Dataset):
    def __len__(self):
        return 10 ** 6

    def __getitem__(self, i):
        return [torch.full((4,), float(i)) for _ in range(8)]


def consumer_of(itr):
    return itr._consumer


def test_stop_joins_a_busy_consumer():
    loader = torch.utils.data.DataLoader(Endless(), batch_size=1, num_workers=1)
    itr = iterators.BufferedIterator(10 ** 6, loader)  # never full: always fetching
    first = next(itr)
    assert first[0][0, 0].item() == 0.0
    thread = consumer_of(itr)
    assert thread.is_alive()
    assert stop_prefetch_threads(timeout=30) == 0
    assert not thread.is_alive()
    assert stop_prefetch_threads() == 0  # nothing left: a no-op


def test_the_hook_runs_at_exit_before_daemon_threads_die():
    # an atexit handler registered before the plugin runs after the plugin's (LIFO): it sees
    # whether the consumer is still running when the interpreter starts to finalize
    script = textwrap.dedent("""
        import atexit, threading, torch
        from fairseq.data import iterators
        atexit.register(lambda: print("alive at exit:", sum(
            isinstance(t, iterators.BackgroundConsumer) for t in threading.enumerate())))
        import fairseq_grafusion.plugin  # noqa
        from test_clean_exit import Endless
        loader = torch.utils.data.DataLoader(Endless(), batch_size=1, num_workers=1)
        itr = iterators.BufferedIterator(10 ** 6, loader)
        next(itr)
        print("alive before exit:", sum(
            isinstance(t, iterators.BackgroundConsumer) for t in threading.enumerate()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=f"{REPO}/tests/model", timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONPATH=f"{REPO}/tests"))  # conftest
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "alive before exit: 1" in proc.stdout and "alive at exit: 0" in proc.stdout, proc.stdout
