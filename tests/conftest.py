"""Shared fixtures: synthetic data written by the tests, and fairseq-train as a user runs it."""
import contextlib
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers share the cores: one thread each

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "fairseq_grafusion")
# the tests are grouped as the code is; a test module may use another group's helpers and
# fixtures (tests/gpu reruns the cli and model tests' set-ups on a GPU), wherever pytest starts
GROUPS = ("preprocess", "model", "scoring", "cli", "gpu")
sys.path[:0] = [d for d in (os.path.join(REPO, "tests", g) for g in GROUPS) if d not in sys.path]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The per-user cache (verified digests, ``fairseq_grafusion.digests``) of this test run, not
    the user's; the commands the tests start inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


# The test files that take longest (``--durations``, 2026-12-06), started first: xdist hands each
# worker whole files (``--dist loadfile``) in collection order (``--no-loadscope-reorder``; its
# default order, most tests first, put these files last, where one ran alone while the other
# worker idled).  The users of README command 1's run (slurm, recipes, readme) are kept apart.
SLOW_FILES = ("cli/test_slurm.py", "model/test_multinode.py", "model/test_train.py",
              "model/test_checkpoint_safety.py", "cli/test_recipes.py", "model/test_half_precision.py",
              "model/test_crafted_checkpoints.py", "cli/test_pretrain_recipe.py", "cli/test_ablation.py",
              "model/test_sa_graph_word_level.py", "cli/test_relative_paths.py", "cli/test_readme.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(SLOW_FILES)}
    tests = os.path.join(REPO, "tests")
    items.sort(key=lambda item: rank.get(os.path.relpath(str(item.path), tests), len(SLOW_FILES)))


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (setup.cfg): one worker per core, at most 4 (each worker imports torch and
    trains its own tiny models; test files are kept whole on one worker, ``--dist loadfile``)."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def shared_once(tmp_path_factory, name, build):
    """A session fixture's value built once per test run, also under pytest-xdist: the first
    worker to ask builds it in the run's shared temporary directory under a file lock, the others
    wait and read the pickled result.  ``build(directory)`` returns a picklable value."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent
    result = root / f"{name}.pickle"
    with FileLock(str(root / f"{name}.lock")):
        if not result.exists():
            directory = root / name
            shutil.rmtree(directory, ignore_errors=True)  # a build that failed on another worker
            directory.mkdir()
            value = build(directory)
            result.write_bytes(pickle.dumps(value))
        return pickle.loads(result.read_bytes())


def setup_kwargs():
    """What ``setup.py`` passes to ``setuptools.setup`` (run in the repository, setup not called)."""
    import runpy

    import setuptools

    captured = {}
    real, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        os.chdir(REPO)
        runpy.run_path(os.path.join(REPO, "setup.py"))
    finally:
        os.chdir(cwd)
        setuptools.setup = real
    return captured


def console_scripts(kwargs):
    """``{command: module:function}`` of setup's entry points."""
    return dict(s.replace(" ", "").split("=") for s in kwargs["entry_points"]["console_scripts"])


def _acts_at_start(name):
    """Whether the variable ``name`` acts when an interpreter (or OpenMP) starts, not later:
    ``PYTHONPATH``, ``PYTHONHASHSEED``, ..., the thread counts."""
    return (name.startswith("PYTHON") and name != "PYTHONUNBUFFERED") or name.endswith("_NUM_THREADS")


def _python_command(module, args):
    """``python -m MODULE ARGS``, or ``python MODULE ARGS`` for a script's path (``.py``)."""
    return [sys.executable, *([] if module.endswith(".py") else ["-m"]), module, *args]


class _ModuleServer:
    """``tests/module_server.py`` processes of this test process, one per setting of the
    variables that act at start (:func:`_acts_at_start`), each started on first use: ``python -m
    MODULE`` runs forked from an interpreter that imported torch and fairseq once, and started
    as that run's would have."""
    servers = {}
    lock = threading.Lock()

    @classmethod
    def server(cls, env):
        at_start = {k: v for k, v in env.items() if _acts_at_start(k)}
        key = tuple(sorted(at_start.items()))
        process = cls.servers.get(key)
        if process is None or process.poll() is not None:
            later = {k: v for k, v in os.environ.items() if not _acts_at_start(k)}
            process = cls.servers[key] = subprocess.Popen(
                [sys.executable, os.path.join(REPO, "tests", "module_server.py")], cwd=REPO,
                env={**later, **at_start}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        return process

    @classmethod
    def run(cls, module, args, env, cwd, timeout):
        import json
        import tempfile

        with cls.lock, tempfile.TemporaryDirectory(prefix="module-run-") as tmp:
            process = cls.server(env)
            out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
            what = {"path": module} if module.endswith(".py") else {"module": module}
            process.stdin.write(json.dumps({**what, "argv": args, "env": env, "cwd": str(cwd),
                                            "stdout": out, "stderr": err}) + "\n")
            pid = json.loads(process.stdout.readline())["pid"]
            expired = []

            def expire():
                expired.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

            timer = threading.Timer(timeout, expire)
            timer.start()
            try:
                code = json.loads(process.stdout.readline())["code"]
            finally:
                timer.cancel()
            read = lambda path: open(path, encoding="utf-8", errors="replace").read()  # noqa: E731
            command = _python_command(module, args)
            if expired:
                raise subprocess.TimeoutExpired(command, timeout, read(out), read(err))
            return subprocess.CompletedProcess(command, code, read(out), read(err))


def run_module(module, *args, env=None, cwd=REPO, timeout=600):
    """``python -m MODULE ARGS`` (``python MODULE ARGS`` for a ``MODULE`` ending in ``.py``, a
    script's path) in ``cwd`` with ``env`` (default: this process's environment), its output
    captured, stdin empty, as ``subprocess.run`` would run it, but forked from a
    ``tests/module_server.py`` started with the same interpreter settings instead of a new
    interpreter (seconds of imports saved per run); a new interpreter where ``env`` has another
    ``PYTHONPATH`` (a hook run at start).  Returns a ``subprocess.CompletedProcess``;
    raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the run is killed)."""
    env, args = dict(os.environ if env is None else env), [str(a) for a in args]
    if env.get("PYTHONPATH") != os.environ.get("PYTHONPATH"):  # code run at start (a test's hook),
        # which may read any variable then: a new interpreter
        return subprocess.run(_python_command(module, args), capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    return _ModuleServer.run(module, args, env, cwd, timeout)


def run_fairseq(module, *args, timeout=600, check=True):
    """Run ``python -m fairseq_cli.<module> ...`` with the plugin; returns the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = run_module(f"fairseq_cli.{module}", *args, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"fairseq_cli.{module} failed ({proc.returncode}):\n"
                             f"--- stdout (end) ---\n{proc.stdout[-2000:]}\n"
                             f"--- stderr (end) ---\n{proc.stderr[-3000:]}")
    return proc


def run_forked(jobs, tmp, **env):
    """Command lines run as their console scripts run them, each in a fresh child of one
    interpreter that imported everything once (``tests/forked_commands.py``): ``jobs`` is
    ``[(command, argv, log file[, working directory])]``; returns ``[(exit code, output)]``."""
    import json

    jobs_file, results = tmp / "forked-jobs.json", tmp / "forked-results.json"
    jobs_file.write_text(json.dumps([[c, [str(a) for a in argv], str(log), *map(str, rest)]
                                     for c, argv, log, *rest in jobs]))
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    full.pop("GRAFUSION_TRACEBACK", None)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tests", "forked_commands.py"),
                           str(jobs_file), str(results)], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(results.read_text())
    return [(code, open(job[2], encoding="utf-8", errors="replace").read())
            for code, job in zip(codes, jobs)]


def preprocess(*args, check=True, cwd=REPO):
    """Run ``grafusion-preprocess`` (``python -m fairseq_grafusion.preprocess``) in ``cwd``;
    returns the completed process."""
    proc = run_module("fairseq_grafusion.preprocess", *args, env=dict(os.environ, OMP_NUM_THREADS="1"),
                      cwd=cwd, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"grafusion-preprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def start_logged(command, log, env, cwd=REPO):
    """``command`` started in ``cwd`` (the repository), its stdout and stderr into the file
    ``log``: ``(process, log file)`` for :func:`finish_logged`."""
    out = open(log, "w+")
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL), out


def finish_logged(started, timeout=600):
    """``(exit code, log text)`` of a :func:`start_logged` process, once it has ended."""
    proc, out = started
    code = proc.wait(timeout=timeout)
    out.seek(0)
    text = out.read()
    out.close()
    return code, text


def train_workers(args, log_dir, rank_args=lambda rank: [], world=2, timeout=900):
    """``world`` fairseq-train processes (``--distributed-rank`` r plus ``rank_args(r)``), run
    to the end; returns their logs (stdout and stderr), rank 0 first."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    started = [start_logged([sys.executable, "-m", "fairseq_cli.train", *map(str, args),
                             "--distributed-rank", str(r), *rank_args(r)],
                            os.path.join(log_dir, f"rank{r}.log"), env) for r in range(world)]
    codes, text = zip(*[finish_logged(s, timeout) for s in started])
    assert list(codes) == [0] * world, f"exit codes {list(codes)}:\n" + "\n".join(t[-3000:] for t in text)
    return list(text)


def train_args(data, save_dir, *extra, updates=250, arch="grafusion_tiny"):
    return [data, "--user-dir", USER_DIR, "--task", "xmrc_span", "--criterion", "xmrc_span",
            "--arch", arch, "--cpu", "--optimizer", "adam", "--lr", "1e-3", "--batch-size", "16",
            "--max-update", str(updates), "--save-dir", save_dir, "--log-format", "simple",
            "--log-interval", "10", "--no-progress-bar", "--no-epoch-checkpoints", "--seed", "1",
            *extra]


def logged(output, kind, key):
    """Values of ``key`` in fairseq's ``simple`` log lines of one kind (train_inner / valid)."""
    values = []
    for line in output.splitlines():
        if f"| {kind} |" not in line and not (kind == "train_inner" and "train_inner" in line):
            continue
        m = re.search(rf"(?:\| |, ){key}[ =]([0-9.]+)", line)
        if m:
            values.append(float(m.group(1)))
    return values


@pytest.fixture(scope="session")
def marker_data(tmp_path_factory):
    """The easy synthetic task: learnable by every variant in a few hundred updates."""
    from fairseq_grafusion.synthetic import SyntheticXMRC

    return shared_once(tmp_path_factory, "marker_data", lambda path: SyntheticXMRC(task="marker").write(
        str(path), splits=(("train", 1000), ("valid", 100))))


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """``grafusion-preprocess all`` on the bundled sample, once per session: (out, proc, seconds).
    Tests that change the output work on a copy."""
    def build(tmp):
        out = tmp / "sample-run"
        start = time.time()
        proc = preprocess("all", "--out", out)
        seconds = time.time() - start
        print(f"grafusion-preprocess all on the sample: {seconds:.1f}s")
        return out, proc, seconds

    return shared_once(tmp_path_factory, "run", build)


@pytest.fixture(scope="session")
def sample_checkpoints(sample_run, tmp_path_factory):
    """Tiny models trained for 10 updates on the preprocessed sample (en-ro), once per test run:
    ``(qa-bin directory, {"no-fusion" | "align" | "xlmr-tt": checkpoint_last.pt})``."""
    data = str(sample_run[0] / "qa-bin")

    def build(tmp):
        paths = {}
        for name, flags in (("no-fusion", ["--no-fusion"]), ("align", ["--graph", "align"]),
                            ("xlmr-tt", ["--arch", "xlmr_translate_train_tiny"])):
            run_fairseq("train", *train_args(data, str(tmp / name), *flags, "--disable-validation", updates=10))
            paths[name] = str(tmp / name / "checkpoint_last.pt")
        return paths

    return data, shared_once(tmp_path_factory, "sample_checkpoints", build)


@pytest.fixture(scope="session")
def moses_bpe_mt(tmp_path_factory):
    """A real (tiny) fairseq Romanian -> English transformer on moses-tokenised, escaped and BPE'd
    text, as fairseq's wmt models are made: the sample's parallel text through sacremoses (as
    fairseq's ``moses`` tokenizer encodes: dash splits, escaping), joint subword-nmt codes (1000
    merges) applied to both sides, ``fairseq-preprocess --dataset-impl raw``, ``fairseq-train``
    (1 layer, d=64, 100 updates; no source/target language given, so the checkpoint stores none,
    as with fairseq's own examples).  Returns a namespace: ``model`` (model.pt + dict.{ro,en}.txt),
    ``codes`` (subword-nmt codes), ``fastbpe_codes`` (the same merges in fastBPE's file format:
    no header, a count column; the counts are ranks, apply ignores them), ``raw`` (the
    fairseq-preprocess'd raw text directory: train/valid.ro-en.{ro,en}), ``text`` (tokenised +
    BPE'd files {train,valid}.{en,ro})."""
    def build(tmp):
        import io
        import types

        from sacremoses import MosesTokenizer
        from subword_nmt.apply_bpe import BPE
        from subword_nmt.learn_bpe import learn_bpe

        text = tmp / "text"
        text.mkdir()
        sample = os.path.join(REPO, "examples", "sample", "parallel")
        tokenised = {}
        for lang in ("en", "ro"):
            tok = MosesTokenizer(lang)
            for split in ("train", "valid"):
                with open(os.path.join(sample, f"{split}.{lang}"), encoding="utf-8") as f:
                    tokenised[split, lang] = [tok.tokenize(line, aggressive_dash_splits=True, escape=True,
                                                           return_str=True) for line in f.read().splitlines()]
        codes = io.StringIO()
        learn_bpe(io.StringIO("\n".join(tokenised["train", "en"] + tokenised["train", "ro"]) + "\n"),
                  codes, 1000, min_frequency=2)
        (tmp / "codes").write_text(codes.getvalue(), encoding="utf-8")
        merges = codes.getvalue().splitlines()[1:]  # without the '#version: 0.2' header
        (tmp / "codes.fastbpe").write_text("".join(f"{m} {len(merges) - k}\n" for k, m in enumerate(merges)),
                                           encoding="utf-8")
        bpe = BPE(io.StringIO(codes.getvalue()))
        for (split, lang), lines in tokenised.items():
            (text / f"{split}.{lang}").write_text("".join(bpe.process_line(x) + "\n" for x in lines),
                                                  encoding="utf-8")
        from fairseq import options  # fairseq-preprocess in this process: no second interpreter start
        from fairseq_cli import preprocess as fairseq_preprocess

        fairseq_preprocess.main(options.get_preprocessing_parser().parse_args(map(str, [
            "--source-lang", "ro", "--target-lang", "en", "--trainpref", text / "train", "--validpref",
            text / "valid", "--destdir", tmp / "raw", "--dataset-impl", "raw", "--workers", "1"])))
        run_fairseq("train", tmp / "raw", "--dataset-impl", "raw", "--arch", "transformer",
                    "--encoder-layers", "1", "--decoder-layers", "1", "--encoder-embed-dim", "64",
                    "--decoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
                    "--decoder-ffn-embed-dim", "128", "--encoder-attention-heads", "2",
                    "--decoder-attention-heads", "2", "--share-decoder-input-output-embed",
                    "--optimizer", "adam", "--lr", "5e-3", "--lr-scheduler", "inverse_sqrt",
                    "--warmup-updates", "20", "--max-tokens", "2000", "--max-update", "100", "--seed", "1",
                    "--cpu", "--save-dir", tmp / "ck", "--no-epoch-checkpoints", "--save-interval", "1000",
                    "--disable-validation")
        model = tmp / "model"
        model.mkdir()
        shutil.copy(tmp / "ck" / "checkpoint_last.pt", model / "model.pt")
        for lang in ("ro", "en"):
            shutil.copy(tmp / "raw" / f"dict.{lang}.txt", model / f"dict.{lang}.txt")
        return types.SimpleNamespace(model=str(model), codes=str(tmp / "codes"),
                                     fastbpe_codes=str(tmp / "codes.fastbpe"), raw=str(tmp / "raw"),
                                     text=str(text))

    return shared_once(tmp_path_factory, "moses_bpe_mt", build)


@pytest.fixture(scope="session")
def readme_run(sample_run, tmp_path_factory):
    """The blocks of the README and of docs/ marked ``<!-- ci: run -->`` (``readme_blocks``), run as written by
    bash, in order, in a directory holding what command 1 writes on the sample (``sample-run/``:
    the outputs of :func:`sample_run`, linked) and the repository's ``examples/``, with the
    environment's commands first on the PATH: (directory, [(block, completed process)])."""
    from readme_blocks import all_blocks

    work = tmp_path_factory.mktemp("readme")
    (work / "sample-run").mkdir()
    for entry in os.listdir(sample_run[0]):
        os.symlink(sample_run[0] / entry, work / "sample-run" / entry)
    os.symlink(os.path.join(REPO, "examples"), work / "examples")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    runs = []
    for block in all_blocks():
        if block.marker == "run":
            start = time.time()
            runs.append((block, subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=work, env=env, text=True,
                capture_output=True, timeout=600, stdin=subprocess.DEVNULL)))
            print(f"{block}: {time.time() - start:.1f}s")
    return work, runs


def restamp_split(prefix):
    """Record again the digests of a split whose files a test changed behind the writer's back,
    as a writer that wrote that data itself would have (the reader then gets as far as the
    example checks)."""
    import json

    from fairseq_grafusion import digests

    meta_path = f"{prefix}.meta.json"
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    meta["files"] = digests.record({name: f"{prefix}.{name}" for name in meta["files"]})
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)


XQUAD_LANGS = ("de", "zh", "ar")


def repository_copy(directory):
    """The repository's files as a fresh clone has them (tracked, and untracked ones git does not
    ignore: what is being committed), copied into ``directory``."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        source = os.path.join(REPO, name)
        if os.path.isfile(source):
            os.makedirs(os.path.join(directory, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(source, os.path.join(directory, name))
    return directory


@pytest.fixture(scope="session")
def readme_command_1(tmp_path_factory):
    """README command 1 exactly as written: ``bash examples/run_sample.sh`` in a copy of the
    repository, from its root, with the default ``OUT`` (``sample-run``, relative); the one
    difference is where the commands come from (``BIN``: this environment's).  Once per test run:
    ``(repository copy, exit code, output, seconds)``; its three pairs' directories serve the
    recipes' miniatures (``xquad_pairs``)."""
    def build(tmp):
        copy = repository_copy(tmp / "clone")
        env = dict(os.environ, BIN=os.path.dirname(sys.executable), PYTHONUNBUFFERED="1")
        for name in ("OUT", "EPOCHS", "UPDATES", "OMP_NUM_THREADS"):
            env.pop(name, None)
        start = time.time()
        proc = subprocess.run(["bash", "examples/run_sample.sh"], cwd=copy, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=900)
        seconds = time.time() - start
        print(f"README command 1: {seconds:.1f}s")
        return copy, proc.returncode, proc.stdout, seconds

    return shared_once(tmp_path_factory, "readme_command_1", build)


@pytest.fixture(scope="session")
def xquad_pairs(readme_command_1):
    """The three pairs of the multilingual sample as README command 1 preprocessed them:
    ``{lang: pair directory}`` (each with ``qa-bin/`` and ``work/``).  Tests copy them."""
    copy, code, output, _ = readme_command_1
    assert code == 0, output[-4000:]
    return {xx: copy / "sample-run" / f"en-{xx}" for xx in XQUAD_LANGS}
