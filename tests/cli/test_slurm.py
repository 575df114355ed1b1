"""examples/slurm/ (issue 24, item 4): every script passes ``bash -n``, and ``grid.sbatch`` runs
the MLQA recipe's miniature through a stand-in for ``sbatch`` on this machine.

The stand-in does what SLURM would with the options the scripts give: it records the job (name,
array, dependency, the ``STEP`` it exports), refuses a dependency on a job that did not succeed,
runs the script with ``SLURM_JOB_ID`` (and for an array, ``SLURM_ARRAY_TASK_ID``), writes each
task's output where ``--output`` says, and prints the job id (``--parsable``).  It runs all the
tasks of an array at once, as a cluster with free slots does, so that two tasks that need the
same FILTER run (a FILTER cell and its self-teaching cell) start together."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SLURM = os.path.join(REPO, "examples", "slurm")
STANDIN = r'''import json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

FLAGS = {"--parsable", "--requeue", "--exclusive"}
argv, opts = sys.argv[1:], {}
while argv and argv[0].startswith("-"):
    a = argv.pop(0)
    if "=" in a:
        k, v = a.split("=", 1)
    else:
        k, v = a, (True if a in FLAGS else argv.pop(0))
    opts[k] = v
script, args = argv[0], argv[1:]
log = os.path.join(os.environ["SBATCH_STANDIN_DIR"], "jobs.jsonl")
done = [json.loads(x) for x in open(log)] if os.path.exists(log) else []
job = 1000 + 100 * len(done)
dependency = opts.get("--dependency")
if dependency:
    kind, *ids = dependency.split(":")
    ok = {j["id"] for j in done if j["ok"]}
    if kind != "afterok" or not set(map(int, ids)) <= ok:
        sys.exit(f"sbatch stand-in: dependency {dependency} not satisfied (succeeded: {sorted(ok)})")
env = dict(os.environ)
export = opts.get("--export", "ALL").split(",")
if export[0] != "ALL":
    sys.exit("sbatch stand-in: only --export ALL,... is modelled")
env.update(x.split("=", 1) for x in export[1:])
name = opts.get("--job-name", "sbatch")
spec = opts.get("--array")
tasks = [None]
if spec:
    spec = spec.split("%")[0]
    tasks = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        tasks += list(range(int(lo), int(hi or lo) + 1))


def run(task):
    e = dict(env, SLURM_JOB_ID=str(job + (0 if task is None else 1 + task)), SLURM_JOB_NAME=name,
             SLURM_SUBMIT_DIR=os.getcwd())
    if task is not None:
        e.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(task))
    out = (opts.get("--output") or "slurm-%j.out").replace("%x", name).replace("%A", str(job)) \
        .replace("%a", str(task)).replace("%j", e["SLURM_JOB_ID"])
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        return subprocess.run(["bash", script, *args], env=e, stdout=f, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode


with ThreadPoolExecutor(len(tasks)) as pool:
    codes = list(pool.map(run, tasks))
with open(log, "a") as f:
    f.write(json.dumps({"id": job, "name": name, "step": env.get("STEP"), "array": spec and tasks,
                        "dependency": dependency, "codes": codes, "ok": not any(codes)}) + "\n")
if any(codes):
    sys.exit(f"sbatch stand-in: job {job} ({name}) failed: exit codes {codes}")
print(job)
'''


SCRIPTS = sorted(glob.glob(os.path.join(SLURM, "*.sbatch"))) + [os.path.join(SLURM, "common.sh")]


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def standin(tmp_path):
    bin_dir, state = tmp_path / "bin", tmp_path / "sbatch-state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "sbatch").write_text(f"#!{sys.executable}\n" + STANDIN)
    (bin_dir / "sbatch").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SBATCH_STANDIN_DIR": str(state)}, state


def submit_grid(cwd, env):
    return subprocess.run(["bash", os.path.join(SLURM, "grid.sbatch")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)


def job_logs(cwd, jobs):
    """The output of the jobs' tasks (``--output slurm-logs/%x-%A_%a.out``)."""
    return "\n".join(p.read_text() for j in jobs
                     for p in sorted((cwd / "slurm-logs").glob(f"*-{j['id']}_*.out")))


def test_grid_runs_every_cell_once_then_the_table(xquad_pairs, tmp_path):
    env, state = standin(tmp_path)
    for xx in ("de", "zh", "ar"):
        shutil.copytree(xquad_pairs[xx], tmp_path / "grid" / "pairs" / f"en-{xx}")
    env = dict(os.environ, **env, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHON=sys.executable,
               MINI="1", WORK="grid", LANGS="de zh ar", VARIANTS="filter filter-st", SEEDS="1",
               UPDATES="2", XLMR="", TRAIN_EXTRA="")  # the miniature: CPU, no XLM-R, 2 updates
    proc = submit_grid(tmp_path, env)
    jobs = [json.loads(line) for line in (state / "jobs.jsonl").read_text().splitlines()]
    logs = job_logs(tmp_path, jobs)
    assert proc.returncode == 0, proc.stderr[-3000:] + logs[-5000:]
    assert [(j["step"], j["array"]) for j in jobs] == [("prepare", None), ("cell", [0, 1]), ("table", None)]
    assert jobs[1]["dependency"] == f"afterok:{jobs[0]['id']}"
    assert jobs[2]["dependency"] == f"afterok:{jobs[1]['id']}"
    assert proc.stdout.strip() == str(jobs[2]["id"])  # the last job's id, for AFTER= of a next step
    # every (variant, seed) trained and scored once, though the FILTER run is also the teacher of
    # the self-teaching cell, which started at the same time
    for row in ("FILTER", "FILTER + self-teaching"):
        assert logs.count(f"== fine-tune {row} seed 1 (") == 1, row
    for variant in ("filter", "filter-st"):
        assert (tmp_path / "grid" / "scores" / f"{variant}.seed1.json").is_file()
        assert (tmp_path / "grid" / "runs" / f"{variant}.seed1.done").is_file()
    table = (tmp_path / "grid" / "table.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert {"FILTER", "FILTER + self-teaching"} <= set(rows)
    assert all(rows[r].rstrip(" |").endswith("1") for r in ("FILTER", "FILTER + self-teaching"))  # runs: 1 seed
    # submitted again, nothing is trained again: every cell is recorded as done
    again = submit_grid(tmp_path, env)
    assert again.returncode == 0, again.stderr[-3000:]
    jobs = [json.loads(line) for line in (state / "jobs.jsonl").read_text().splitlines()][3:]
    logs = job_logs(tmp_path, jobs)
    assert len(jobs) == 3 and "== fine-tune" not in logs and logs.count("is there") >= 4

