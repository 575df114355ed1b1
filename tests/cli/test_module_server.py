"""``conftest.run_module`` (the tests' way to run ``python -m ...`` forked from
``tests/module_server.py``) gives what a new interpreter gives: the same output, exit code,
working directory, environment, ``sys.argv`` and ``sys.path[0]``, for every way out of a script;
so does ``forked_commands.run_one`` (``conftest.run_forked``'s children), which shares the child's
body."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_module

SCRIPT = """import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "path0": sys.path[0], "main": __name__,
                  "var": os.environ.get("MODULE_SERVER_TEST"), "stdin": sys.stdin.read()}))
print("to stderr", file=sys.stderr)
way = sys.argv[1]
if way == "code":
    sys.exit(3)
if way == "message":
    sys.exit("a message")
if way == "raise":
    raise ValueError("escaped")
if way == "kill":
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("way", ["end", "code", "message", "raise", "kill"])
def test_a_forked_run_is_a_new_interpreters_run(tmp_path, way):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, MODULE_SERVER_TEST=f"value {way}")
    forked = run_module(str(script), way, "second arg", env=env, cwd=work)
    fresh = subprocess.run([sys.executable, str(script), way, "second arg"], env=env, cwd=work,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert forked.returncode == fresh.returncode == {"end": 0, "code": 3, "message": 1, "raise": 1, "kill": -9}[way]
    assert forked.stdout == fresh.stdout
    seen = json.loads(forked.stdout)
    assert seen == {"argv": [way, "second arg"], "cwd": str(work), "path0": str(tmp_path), "main": "__main__",
                    "var": f"value {way}", "stdin": ""}
    assert forked.stderr.splitlines()[0] == fresh.stderr.splitlines()[0] == "to stderr"
    assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1]  # the message / the exception


def test_a_module_runs_as_main_and_a_timeout_kills_it(tmp_path):
    proc = run_module("json.tool", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m json.tool")
    script = tmp_path / "sleep.py"
    script.write_text("import time\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_module(str(script), timeout=1)
    assert run_module("json.tool", "--help").returncode == 0  # the server goes on


RUN_ONE = """import runpy, sys
sys.path.insert(0, sys.argv[1])
from forked_commands import run_one
script, log, cwd, way = sys.argv[2:]
print(run_one(lambda: runpy.run_path(script, run_name="__main__"), script, [way, "second arg"], log, cwd))
"""


@pytest.mark.parametrize("way", ["end", "code", "message", "raise", "kill"])
def test_run_one_ends_as_a_new_interpreter(tmp_path, way):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log"
    parent = subprocess.run([sys.executable, "-c", RUN_ONE, os.path.join(REPO, "tests"), str(script), str(log),
                             str(tmp_path), way], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    fresh = subprocess.run([sys.executable, str(script), way, "second arg"], cwd=tmp_path,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert parent.returncode == 0, parent.stderr
    assert int(parent.stdout) == fresh.returncode
    output = log.read_text()
    assert json.loads(output.splitlines()[0])["argv"] == [way, "second arg"]
    assert output.splitlines()[-1] == fresh.stderr.splitlines()[-1]  # "to stderr", the message, the exception
