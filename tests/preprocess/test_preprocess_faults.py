"""grafusion-preprocess under faults: kills at chosen points, two runs at once, repeated runs.

The kills are injected, not timed: a ``sitecustomize`` on the killed run's ``PYTHONPATH`` wraps
``os.replace`` (every file of the pipeline reaches its final name through it) and
``subprocess.Popen``, and SIGKILLs the process at the rename named by the test, or right after
eflomal has started (eflomal itself stopped, so that it cannot end by itself before the check).
The data is the bundled sample's 27 validation questions (en-ro).
"""
import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from test_pretrain_loss import build

from conftest import REPO

SAMPLE = os.path.join(REPO, "examples", "sample")
QA = ["--qa", "valid", os.path.join(SAMPLE, "qa", "valid.en.json"), os.path.join(SAMPLE, "qa", "valid.ro.json")]
ARGS = ["--src-lang", "en", "--tgt-lang", "ro", *QA, "--spm", os.path.join(SAMPLE, "spm", "sentencepiece.bpe.model"),
        "--dict", os.path.join(SAMPLE, "spm", "dict.txt")]
OTHER_OPTIONS = ["--max-len", "64", "--doc-stride", "32"]  # another binarization of the same split

HOOK = '''
import os, signal, subprocess
_kill_at = os.environ.get("GRAFUSION_TEST_KILL_AT")
_stop_at = os.environ.get("GRAFUSION_TEST_STOP_AT")
_child_pid = os.environ.get("GRAFUSION_TEST_KILL_AFTER_CHILD")
if _kill_at or _stop_at:
    _replace = os.replace

    def replace(src, dst, *args, **kwargs):
        name = os.path.basename(str(dst))
        if name == _kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if name == _stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)
        return _replace(src, dst, *args, **kwargs)

    os.replace = replace
if _child_pid:
    _Popen = subprocess.Popen

    class Popen(_Popen):
        def __init__(self, args, *rest, **kwargs):
            super().__init__(args, *rest, **kwargs)
            if any("eflomal" in str(a) for a in args):  # run by descriptor: its files name it
                os.kill(self.pid, signal.SIGSTOP)  # it cannot end by itself before the check
                with open(_child_pid, "w") as f:
                    f.write(f"{self.pid} {os.getpid()}")
                os.kill(os.getpid(), signal.SIGKILL)

    subprocess.Popen = Popen
'''


def command(*args, hook=None, **env):
    """``python -m fairseq_grafusion.preprocess ARGS`` (with the kill hook when ``env`` names a
    point) as a list and its environment."""
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    if hook:
        full["PYTHONPATH"] = f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    return [sys.executable, "-m", "fairseq_grafusion.preprocess", *map(str, args)], full


def preprocess(*args, hook=None, **env):
    argv, full = command(*args, hook=hook, **env)
    return subprocess.run(argv, cwd=REPO, env=full, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def killed_run(log, *args, hook, **env):
    """A run that the hook kills: its output goes to the file ``log`` (an orphan it leaves could
    hold a pipe open for ever); returns its exit status and output."""
    argv, full = command(*args, hook=hook, **env)
    with open(log, "w+") as f:
        status = subprocess.Popen(argv, cwd=REPO, env=full, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).wait(timeout=300)
        f.seek(0)
        return status, f.read()


def ok(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def hook(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hook")
    (directory / "sitecustomize.py").write_text(HOOK)
    return directory


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean run of every stage (the reference every repaired run must equal)."""
    out = tmp_path_factory.mktemp("clean") / "out"
    ok(preprocess("all", "--out", out, *ARGS))
    return out


def outputs(out):
    """Every file a run leaves (relative paths), the lock file aside."""
    found = set()
    for directory, _, files in os.walk(out):
        for name in files:
            found.add(os.path.relpath(os.path.join(directory, name), out))
    return found - {".grafusion-preprocess.lock"}


def assert_same_outputs(out, reference):
    names = outputs(out)
    assert names == outputs(reference), sorted(names ^ outputs(reference))
    differ = [n for n in sorted(names) if not filecmp.cmp(out / n, reference / n, shallow=False)]
    assert not differ, f"differ from the clean run: {differ}"


def test_two_clean_runs_are_byte_identical(clean, tmp_path):
    # eflomal samples: unseeded, work/qa/valid/align.jsonl and valid.align.* differed run to run;
    # the second run with 2 worker processes and eflomal's two directions side by side
    ok(preprocess("all", "--out", tmp_path / "out", *ARGS, "--workers", "2"))
    assert_same_outputs(tmp_path / "out", clean)
    assert len(outputs(clean)) > 25


def test_kill_between_the_outputs_and_the_stamp(clean, hook, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    # binarize with other options, killed after its outputs, before its stamp
    status, log = killed_run(tmp_path / "log", "binarize", "--out", out, *ARGS, *OTHER_OPTIONS, hook=hook,
                             GRAFUSION_TEST_KILL_AT="binarize.key")
    assert status == -signal.SIGKILL, log[-2000:]
    # the rerun with the first options must not take the other run's split for its own
    rerun = ok(preprocess("all", "--out", out, *ARGS))
    assert "[binarize] qa/valid: up to date" not in rerun.stdout
    assert_same_outputs(out, clean)  # the stamp included: the next run reuses the split


def test_kill_during_the_renames_of_a_split(clean, hook, tmp_path):
    from fairseq_grafusion.data import PairReader
    from fairseq_grafusion.errors import GraFusionError

    out = tmp_path / "out"
    shutil.copytree(clean, out)
    prefix = out / "qa-bin" / "valid"
    # killed half-way through renaming: src.dep.bin (and every .bin before it) of the new run,
    # tgt.dep.bin, every .idx and the manifest of the old one
    status, log = killed_run(tmp_path / "log", "binarize", "--out", out, *ARGS, *OTHER_OPTIONS, hook=hook,
                             GRAFUSION_TEST_KILL_AT="valid.tgt.dep.bin")
    assert status == -signal.SIGKILL, log[-2000:]
    assert not filecmp.cmp(f"{prefix}.src.dep.bin", clean / "qa-bin" / "valid.src.dep.bin", shallow=False)
    assert filecmp.cmp(f"{prefix}.tgt.dep.bin", clean / "qa-bin" / "valid.tgt.dep.bin", shallow=False)
    left = [n for n in os.listdir(out / "qa-bin") if ".tmp-" in n]  # the files not renamed yet
    with pytest.raises(GraFusionError) as e:  # the reader of the tasks and of grafusion-predict
        PairReader(str(prefix))
    message = str(e.value)
    assert "\n" not in message
    assert f"{prefix}.align.bin: not the file {prefix}.meta.json was written with" in message, message
    with pytest.raises(GraFusionError) as e:
        build(str(out / "qa-bin"), "xmrc_span")[0].load_dataset("valid")
    assert str(e.value) == message
    assert len(left) == 20, left
    rerun = ok(preprocess("all", "--out", out, *ARGS))
    assert "removed 20 temporary files of an interrupted run" in rerun.stdout, rerun.stdout
    assert_same_outputs(out, clean)
    assert len(PairReader(str(prefix))) > 0


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_killed_run_leaves_no_eflomal_and_its_files_go_with_the_next_run(clean, hook, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    pid_file = tmp_path / "eflomal.pid"
    status, log = killed_run(tmp_path / "log", "align", "--out", out, *ARGS, "--force", hook=hook,
                             GRAFUSION_TEST_KILL_AFTER_CHILD=str(pid_file))
    assert status == -signal.SIGKILL, log[-2000:]
    child, parent = map(int, pid_file.read_text().split())
    try:
        deadline = time.time() + 10
        while alive(child) and time.time() < deadline:
            time.sleep(0.05)
        assert not alive(child), "eflomal outlived the run that started it"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
    work = out / "work" / "qa" / "valid"
    assert [n for n in os.listdir(work) if n.startswith("eflomal.tmp-")]  # eflomal's files, left
    private = [n for n in os.listdir(tempfile.gettempdir())  # the killed run's binary copy
               if n.startswith(f"grafusion-eflomal-{parent}-")]
    assert private
    rerun = ok(preprocess("align", "--out", out, *ARGS, "--force"))
    assert "removed 1 temporary files of an interrupted run" in rerun.stdout, rerun.stdout
    assert not [n for n in os.listdir(work) if ".tmp-" in n]
    assert not [n for n in private if os.path.exists(os.path.join(tempfile.gettempdir(), n))]
    assert filecmp.cmp(work / "align.jsonl", clean / "work" / "qa" / "valid" / "align.jsonl", shallow=False)


def test_aligner_and_parser_inputs_follow_their_stage(clean, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    changed = {}
    for lang in ("en", "ro"):
        with open(os.path.join(SAMPLE, "qa", f"valid.{lang}.json"), encoding="utf-8") as f:
            data = json.load(f)
        data["data"][0]["paragraphs"] = data["data"][0]["paragraphs"][:1]  # the first passage only
        changed[lang] = tmp_path / f"valid.{lang}.json"
        changed[lang].write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    args = [a if a not in QA[2:] else str(changed[a.rsplit(".", 2)[1]]) for a in ARGS]
    ok(preprocess("pairs", "--out", out, *args))
    ok(preprocess("words", "--out", out, *args))
    work = out / "work" / "qa" / "valid"
    n_segments = len((work / "words.jsonl").read_text().splitlines()) - 1  # a unit per line
    for name in ("aligner-input.src.txt", "aligner-input.tgt.txt", "sentences.src.txt", "sentences.tgt.txt"):
        now = (work / name).read_text().splitlines()
        before = (clean / "work" / "qa" / "valid" / name).read_text().splitlines()
        assert 0 < len(now) < len(before) and set(now) <= set(before), name  # the first passage's
    assert n_segments < len((clean / "work" / "qa" / "valid" / "words.jsonl").read_text().splitlines()) - 1
    # a stale or edited file is rewritten by the next run, even when the stage itself is up to date
    (work / "aligner-input.tgt.txt").write_text("stale\n")
    rerun = ok(preprocess("words", "--out", out, *args))
    assert "[words] qa/valid: up to date" in rerun.stdout
    assert (work / "aligner-input.tgt.txt").read_text() != "stale\n"


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_holder(hook, tmp_path):
    out = tmp_path / "out"
    argv, env = command("pairs", "--out", out, *ARGS, hook=hook, GRAFUSION_TEST_STOP_AT="units.jsonl")
    first = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, stdin=subprocess.DEVNULL)
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)  # stopped itself holding --out
        assert os.WIFSTOPPED(status), status
        start = time.time()
        second = preprocess("pairs", "--out", out, *ARGS)
        seconds = time.time() - start
        assert second.returncode == 1, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"--out {out} is in use by another grafusion-preprocess (pid {first.pid} on " \
               f"{socket.gethostname()}, started " in lines[0], lines[0]
        assert seconds < 15, seconds  # at once: before any stage
        assert not (out / "work" / "qa" / "valid" / "units.jsonl").exists()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr[-2000:]
    assert (out / "work" / "qa" / "valid" / "units.jsonl").exists()
    ok(preprocess("pairs", "--out", out, *ARGS))  # the lock went with its holder
