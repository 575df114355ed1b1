"""One run of eflomal's aligner binary: seeded, tied to this process, its files in one place.

eflomal (Östling and Tiedemann, 2016) samples alignments with a Gibbs sampler whose seed it reads
from ``/dev/urandom`` (``random_system_state`` in its ``src/random.c``); neither its command
line nor its Python API (eflomal 2.0: ``Aligner.align``) takes a seed, so two runs on the same
text differ.  To make a run a function of its input and ``seed``:

* the binary is run from a copy in which the 12-byte path ``/dev/urandom`` is replaced by the
  12-byte relative path ``eflomal.seed``, in a working directory holding that file: 8 bytes
  derived from ``seed`` (never 0, the xorshift generator's fixed point);
* its samplers are run one after the other (``OMP_NUM_THREADS=N,1``): each takes its seed from the
  shared generator inside an OpenMP critical section, in whatever order the threads arrive.
  The two directions (forward and reverse) run in parallel when two processes are allowed
  (``--workers 2`` or more); each reads the seed file, so the links are the same either way.

A binary without that path (another build) runs unseeded, with a warning.  The seeded copy and
its seed file are written into a private directory (``mkdtemp``: mode 0700, in the system's
temporary directory, never in the output folder, which others may be able to write; a killed
run's is removed by the next run); the copy is opened once, its bytes are checked against the
sha256 of what was written, and the process runs what was opened (``/proc/self/fd/N``), so
nothing can be swapped in between.  The data files eflomal reads and writes are made here
(with eflomal's own ``Aligner.prepare_files``) in a directory ``TMP_PREFIX.tmp-XXXXXXXX`` (in
the pipeline ``OUT/work/CHAIN/SPLIT/eflomal[.shard...]``, where the next run removes what a
killed run left) and given by absolute path, and the process dies with this one
(:mod:`.child_process`).  The iteration counts are eflomal's defaults (``Aligner`` with
``rel_iterations=1``: ``max(2, round(5000 / sqrt(pairs)))`` for the last model, a quarter for
the first two; 3 samplers, null prior 0.2, model 3).
"""
import hashlib
import math
import os
import shutil
import tempfile
import uuid

from fairseq_grafusion.errors import GraFusionError

from . import child_process
from .runner import log

SEED = 1  # default seed of every eflomal run (grafusion-preprocess --seed)
_URANDOM = b"\0/dev/urandom\0"
_SEED_FILE = b"\0eflomal.seed\0"
_PRIVATE_PREFIX = "grafusion-eflomal-"
_N_SAMPLERS = 3
_NULL_PRIOR = 0.2
_warned = []


def eflomal_binary():
    """Path of the eflomal binary the installed Python package ships (or one on ``PATH``)."""
    import eflomal

    bundled = os.path.join(os.path.dirname(eflomal.__file__), "bin", "eflomal")
    found = bundled if os.path.isfile(bundled) else shutil.which("eflomal")
    if not found:
        raise GraFusionError(f"the eflomal binary is missing ({bundled}, nor on PATH): reinstall "
                             "eflomal (pip install --force-reinstall eflomal)")
    return found


def iterations(n_pairs):
    """eflomal's default iterations per model (IBM1, HMM, fertility) for ``n_pairs`` pairs."""
    last = max(2, int(round(5000 / math.sqrt(max(n_pairs, 1)))))
    return max(2, max(1, last // 4)), max(1, last // 4), last


def seed_bytes(seed):
    """The 8 bytes the seeded binary reads as its generator state (never all zero)."""
    state = hashlib.sha1(f"eflomal seed {seed}".encode()).digest()[:8]
    return state if any(state) else b"\x01" + state[1:]


def seeded_copy(binary, directory):
    """A copy of ``binary`` in ``directory`` reading its seed from ``./eflomal.seed``, as
    ``(path, sha256 of its bytes)``, or None when the binary does not read ``/dev/urandom`` as
    eflomal 2.0 does."""
    with open(binary, "rb") as f:
        code = f.read()
    if code.count(_URANDOM) != 1:
        return None
    code = code.replace(_URANDOM, _SEED_FILE)
    path = os.path.join(directory, "eflomal-seeded")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
    with os.fdopen(fd, "wb") as f:
        f.write(code)
    return path, hashlib.sha256(code).hexdigest()


def remove_stale_private_dirs():
    """Remove the private directories (``grafusion-eflomal-PID-*``, ours) of runs that were
    killed: their process ``PID`` is gone."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        pid = name[len(_PRIVATE_PREFIX):].split("-", 1)[0]
        if not name.startswith(_PRIVATE_PREFIX) or not pid.isdigit():
            continue
        path = os.path.join(root, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def open_verified(path, sha256):
    """A read-only descriptor of ``path`` whose bytes have the digest ``sha256`` (read through
    that descriptor: what is checked is what will run); one line if they differ."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        digest, offset = hashlib.sha256(), 0
        while True:
            block = os.pread(fd, 1 << 20, offset)
            if not block:
                break
            digest.update(block)
            offset += len(block)
        if digest.hexdigest() != sha256:
            raise GraFusionError(f"the seeded eflomal copy {path} changed after it was written "
                                 "(not the bytes written); refusing to run it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _executable(fd, path):
    """What to execute for the verified descriptor ``fd``: the descriptor itself where Linux's
    ``/proc`` can name it, else the private ``path``."""
    by_fd = f"/proc/self/fd/{fd}"
    return by_fd if os.path.exists(f"/proc/{os.getpid()}/fd/{fd}") else path


def _signal_name(number):
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"


def _threads(processes=None):
    """``N,1``: the two directions at once (N = 2) or in turn (N = 1), the samplers in turn.
    ``processes`` (``--workers``) caps N; without it N is 2, or 1 under ``OMP_NUM_THREADS=1``."""
    if processes is None:
        first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        processes = 1 if first == "1" else 2
    return "2,1" if processes >= 2 else "1,1"


def links(src_lines, tgt_lines, priors_lines=None, seed=SEED, tmp_prefix=None, processes=None):
    """eflomal's forward and reverse Pharaoh lines for every line pair of ``src_lines`` /
    ``tgt_lines`` (whitespace-tokenised strings), started from ``priors_lines`` (eflomal's
    priors file, as lines) when given; its files in ``TMP_PREFIX.tmp-XXXXXXXX`` (default: the
    system's temporary directory); the two directions side by side when ``processes`` (the
    pipeline's ``--workers``) is 2 or more (:func:`_threads`).  The links do not depend on it."""
    import eflomal

    binary = eflomal_binary()
    if tmp_prefix:
        tmp = os.path.abspath(f"{tmp_prefix}.tmp-{uuid.uuid4().hex[:8]}")
        os.makedirs(tmp)
    else:
        tmp = tempfile.mkdtemp(prefix="eflomal.tmp-")
    remove_stale_private_dirs()
    private = tempfile.mkdtemp(prefix=f"{_PRIVATE_PREFIX}{os.getpid()}-")  # 0700: binary and seed
    fd = None
    try:
        files = {k: os.path.join(tmp, k) for k in ("src", "tgt", "priors", "fwd", "rev")}
        with open(files["src"], "wb") as src_f, open(files["tgt"], "wb") as tgt_f, \
                open(files["priors"], "w", encoding="utf-8") as priors_f:
            eflomal.Aligner().prepare_files(
                [s + "\n" for s in src_lines], src_f, [t + "\n" for t in tgt_lines], tgt_f,
                [p + "\n" for p in priors_lines] if priors_lines is not None else None, priors_f)
        seeded = seeded_copy(binary, private)
        if seeded is None:
            executable = binary
            if not _warned:
                _warned.append(binary)
                log(f"warning: {binary} does not read its seed from /dev/urandom as eflomal 2.0 "
                    "does: alignments will differ from run to run")
        else:
            with open(os.path.join(private, "eflomal.seed"), "wb") as f:
                f.write(seed_bytes(seed))
            fd = open_verified(*seeded)
            executable = _executable(fd, seeded[0])
        it1, it2, it3 = iterations(len(src_lines))
        args = [executable, "-m", "3", "-s", files["src"], "-t", files["tgt"], "-n", str(_N_SAMPLERS),
                "-N", str(_NULL_PRIOR), "-1", str(it1), "-2", str(it2), "-3", str(it3), "-q",
                "-f", files["fwd"], "-r", files["rev"]]
        if priors_lines is not None:
            args += ["-p", files["priors"]]
        try:
            status = child_process.run(args, cwd=private, pass_fds=() if fd is None else (fd,),
                                       env=dict(os.environ, OMP_NUM_THREADS=_threads(processes)))
        except OSError as e:
            raise GraFusionError(f"eflomal ({binary}) could not be started: {e.strerror or e}") from None
        if status != 0:
            how = (f"was killed by signal {-status} ({_signal_name(-status)})" if status < 0
                   else f"failed with exit status {status}")
            where = f" of {os.path.dirname(os.path.abspath(tmp_prefix))}" if tmp_prefix else ""
            raise GraFusionError(f"eflomal ({binary}) {how} while aligning the {len(src_lines)} "
                                 f"line pairs{where}")
        with open(files["fwd"], encoding="utf-8") as f:
            forward = f.read().splitlines()
        with open(files["rev"], encoding="utf-8") as f:
            reverse = f.read().splitlines()
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return forward, reverse
