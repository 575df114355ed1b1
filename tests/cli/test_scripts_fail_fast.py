"""The example scripts stop at the first step that fails, exit non-zero and name the step and the
command's own error line (``examples/sample/steps.sh``): README command 1's script and the
recipes' library, with stand-ins for the commands that fail where the test says."""
import os
import subprocess

from conftest import REPO

# a stand-in for the package's commands: grafusion-preprocess / fairseq-train / ... record their
# call, then fail as the real ones do (one line) where FAIL names them, or as a crash would
FAKE = r'''#!/bin/bash
name=$(basename "$0")
echo "$name $1" >> "$RECORD"
case "$name" in grafusion-user-dir) echo /plugin; exit 0;; esac
if [[ $name == "$FAIL" || "$name $1" == "$FAIL" ]]; then
    echo "some progress line"
    if [[ ${CRASH:-0} == 1 ]]; then
        printf 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: %s\n' "'lang'" >&2
    else
        echo "$name: error: $1: broken input on line 3" >&2
    fi
    exit 3
fi
echo "$name done"
'''
COMMANDS = ("grafusion-user-dir", "grafusion-preprocess", "fairseq-train", "grafusion-predict",
            "grafusion-evaluate", "grafusion-results")


def fake_commands(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in COMMANDS:
        (bin_dir / name).write_text(FAKE)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_sample(tmp_path, fail, crash=False):
    bin_dir, record = fake_commands(tmp_path), tmp_path / "record"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", RECORD=str(record),
               FAIL=fail, CRASH="1" if crash else "0")
    env.pop("OUT", None)
    proc = subprocess.run(["bash", os.path.join(REPO, "examples", "sample", "run.sh")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    calls = record.read_text().splitlines() if record.exists() else []
    return proc, calls


def test_the_first_failing_step_stops_the_sample_run_with_its_error_line(tmp_path):
    proc, calls = run_sample(tmp_path, "grafusion-preprocess combine")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == ("run.sh: step 'grafusion-preprocess combine' failed (exit status 3): "
                        "grafusion-preprocess: error: combine: broken input on line 3"), lines
    assert lines[1] == "run.sh: its whole output is in sample-run/logs/combine.log"
    assert (tmp_path / "sample-run" / "logs" / "combine.log").read_text().startswith("some progress line")
    # the three pairs ran, combine failed, nothing after it ran
    assert [c.split()[0] for c in calls if c != "grafusion-user-dir "] == \
        ["grafusion-preprocess"] * 4 and calls[-1] == "grafusion-preprocess combine"
    assert "== 3/5" not in proc.stdout


def test_a_crash_is_named_by_its_last_line(tmp_path):
    proc, calls = run_sample(tmp_path, "fairseq-train", crash=True)
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[0] == "run.sh: step 'fairseq-train' failed (exit status 3): KeyError: 'lang'"
    assert "grafusion-predict" not in " ".join(calls)


def test_a_recipe_step_stops_the_recipe_with_its_error_line(tmp_path):
    """recipe_lib.sh, one language at a time (JOBS=1): the failed language's step is named."""
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/bash\necho 'progress'\necho 'grafusion-preprocess: error: train.zh.json: "
                    "no such file' >&2\nexit 1\n")
    fake.chmod(0o755)
    script = f'''
set -euo pipefail
source {REPO}/examples/recipe_lib.sh
LANGS="zh de" WORK={tmp_path}/work TRAIN_SRC=train.en.json TRAIN_TGT=train.{{lang}}.json
DEV_TGT=dev.{{lang}}.json DEV_SRC=dev.en.json EVAL_SPLIT=dev SPM=s DICT=d PYTHON={fake}
touch dev.en.json
preprocess_pairs
echo finished
'''
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "finished" not in proc.stdout
    assert ("step 'grafusion-preprocess en-zh' failed (exit status 1): grafusion-preprocess: "
            "error: train.zh.json: no such file") in proc.stderr, proc.stderr
    assert not (tmp_path / "work" / "pairs" / "en-de.log").exists()  # de never started
