"""The seeded eflomal binary runs from a private directory, checked, by descriptor: a process
that can write in the output folder cannot get its own program run in its place."""
import ctypes
import os
import subprocess
import sys

import pytest

from fairseq_grafusion.errors import GraFusionError
from fairseq_grafusion.preprocess import eflomal_run

# the attacker: for every eflomal work directory that appears in WORK, once its data files are
# written (and the seed file too, where the run keeps it there; at most 5 ms more), exchange it
# atomically (renameat2 RENAME_EXCHANGE) with a directory of its own, which holds a script under
# every name the run could execute
RACER = r'''
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
work, attacker, stop, count = sys.argv[1:5]
seen, swaps, first = set(), 0, {}
while not os.path.exists(stop):
    for name in os.listdir(work) if os.path.isdir(work) else []:
        path = os.path.join(work, name)
        if ".tmp-" not in name or name in seen:
            continue
        try:
            files = set(os.listdir(path))
        except OSError:
            continue
        if not {"src", "tgt"} <= files:
            continue
        first.setdefault(name, time.time())
        if "eflomal.seed" not in files and time.time() - first[name] < 0.005:
            continue
        if libc.renameat2(-100, path.encode(), -100, attacker.encode(), 2) == 0:
            swaps += 1
        seen.add(name)
open(count, "w").write(str(swaps))
'''


def exchange_supported(tmp_path):
    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    libc = ctypes.CDLL(None, use_errno=True)
    ok = libc.renameat2(-100, str(a).encode(), -100, str(b).encode(), 2) == 0
    a.rmdir()
    b.rmdir()
    return ok


def attacker_dir(path, mark):
    path.mkdir()
    script = f"#!/bin/sh\ntouch {mark}\nexit 0\n"
    for name in ("eflomal-seeded", "eflomal"):
        (path / name).write_text(script)
        os.chmod(path / name, 0o755)
    (path / "eflomal.seed").write_bytes(b"\x01" * 8)
    return path


LINES = (["the house is small", "the house is big", "a small book", "the book is big"] * 50,
         ["das haus ist klein", "das haus ist gross", "ein kleines buch", "das buch ist gross"] * 50)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_racing_directory_swap_runs_nothing(tmp_path):
    if not exchange_supported(tmp_path):
        pytest.skip("this filesystem has no RENAME_EXCHANGE")
    work, mark = tmp_path / "out" / "work", tmp_path / "PWNED"
    work.mkdir(parents=True)
    attacker = attacker_dir(tmp_path / "attacker", mark)
    stop, count = tmp_path / "stop", tmp_path / "count"
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(work), str(attacker), str(stop),
                              str(count)])
    reference = eflomal_run.links(*LINES, tmp_prefix=str(tmp_path / "quiet" / "eflomal"))
    outcomes = []
    try:
        for _ in range(4):
            try:
                outcomes.append(eflomal_run.links(*LINES, tmp_prefix=str(work / "eflomal")))
            except Exception as e:  # what it is is checked below, after the marker
                outcomes.append(e)
    finally:
        stop.touch()
        racer.wait(timeout=30)
    assert not mark.exists(), "the swapped-in program ran"
    assert int(count.read_text()) >= 1, "the racer never got to swap"
    for outcome in outcomes:  # each run either failed in one line or gave the real links
        assert outcome == reference or (isinstance(outcome, GraFusionError)
                                        and "\n" not in str(outcome)), repr(outcome)


def test_a_copy_changed_after_writing_is_not_run(tmp_path):
    binary = eflomal_run.eflomal_binary()
    private = tmp_path / "private"
    private.mkdir()
    seeded = eflomal_run.seeded_copy(binary, str(private))
    if seeded is None:
        pytest.skip("this eflomal build does not read /dev/urandom")
    path, digest = seeded
    fd = eflomal_run.open_verified(path, digest)  # as written: accepted
    os.close(fd)
    with open(path, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(GraFusionError, match="changed after it was written"):
        eflomal_run.open_verified(path, digest)
    os.remove(path)
    os.symlink(binary, path)  # a link in its place is not followed either
    with pytest.raises(OSError):
        eflomal_run.open_verified(path, digest)


def test_the_copy_is_private_and_outside_the_output_folder(tmp_path, monkeypatch):
    seen = []
    real = eflomal_run.seeded_copy

    def spy(binary, directory):
        seen.append((directory, oct(os.stat(directory).st_mode & 0o777)))
        return real(binary, directory)

    monkeypatch.setattr(eflomal_run, "seeded_copy", spy)
    out = tmp_path / "out"
    eflomal_run.links(*LINES, tmp_prefix=str(out / "eflomal"))
    (directory, mode), = seen
    assert mode == "0o700" and not directory.startswith(str(out)), seen
    assert not os.path.exists(directory)  # removed after the run
