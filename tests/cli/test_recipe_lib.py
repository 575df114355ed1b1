"""``examples/recipe_lib.sh``: language pairs preprocessed side by side (``JOBS``), at most JOBS at
once, and a failed language stops the recipe with its name (a stand-in for the preprocessing
command records what runs; no model is trained)."""
import os
import subprocess

from conftest import REPO

FAKE = r'''#!/bin/bash
# stands in for "python -m fairseq_grafusion.preprocess all --out OUT --src-lang en --tgt-lang XX ..."
lang=; workers=
while (( $# )); do
    case $1 in --tgt-lang) lang=$2; shift;; --workers) workers=$2; shift;; esac; shift
done
dir=$RECORD/running
mkdir -p "$dir"
touch "$dir/$lang"
echo "$lang $(ls "$dir" | wc -l) $workers" >> "$RECORD/starts"
# wait (WAIT tenths of a second at most) until a second run is there or every language has started
for _ in $(seq "$WAIT"); do
    (( $(ls "$dir" | wc -l) >= 2 || $(wc -l < "$RECORD/starts") >= N_LANGS )) && break
    sleep 0.1
done
rm -f "$dir/$lang"
echo "preprocessed $lang"
[[ $lang != zh ]] || { echo "zh: broken input" >&2; exit 1; }
'''


def run_pairs(tmp_path, jobs, langs="de zh ar hi", wait=100):
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    (tmp_path / "record").mkdir()
    for lang in langs.split():
        (tmp_path / f"dev.{lang}.json").write_text("{}")
        (tmp_path / f"dev.en-{lang}.json").write_text("{}")
    script = f'''
set -euo pipefail
source {REPO}/examples/recipe_lib.sh
LANGS="{langs}" WORK={tmp_path}/work TRAIN_SRC=train.en.json TRAIN_TGT=train.{{lang}}.json
DEV_TGT={tmp_path}/dev.{{lang}}.json DEV_SRC={tmp_path}/dev.en-{{lang}}.json EVAL_SPLIT=dev
SPM=spm.model DICT=dict.txt PYTHON={fake} JOBS={jobs} WORKERS=2
preprocess_pairs
echo finished
'''
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, RECORD=str(tmp_path / "record"), WAIT=str(wait),
                                   N_LANGS=str(len(langs.split()))), timeout=120)


def test_jobs_run_languages_side_by_side_and_report_a_failure(tmp_path):
    proc = run_pairs(tmp_path, jobs=2)
    starts = [line.split() for line in (tmp_path / "record" / "starts").read_text().splitlines()]
    assert sorted(s[0] for s in starts) == ["ar", "de", "hi", "zh"]  # every language ran
    assert max(int(s[1]) for s in starts) == 2  # two at a time, never more
    assert {s[2] for s in starts} == {"2"}  # each with --workers WORKERS
    # zh failed: the others finished, the recipe stops naming it
    assert proc.returncode != 0 and "finished" not in proc.stdout
    assert "preprocessing failed for: zh" in proc.stderr, proc.stderr
    for lang in ("de", "ar", "hi"):
        assert (tmp_path / "work" / "pairs" / f"en-{lang}.log").read_text() == f"preprocessed {lang}\n"


def test_jobs_1_runs_one_language_at_a_time(tmp_path):
    proc = run_pairs(tmp_path, jobs=1, langs="de ar", wait=5)  # a second run would start meanwhile
    starts = [line.split() for line in (tmp_path / "record" / "starts").read_text().splitlines()]
    assert [s[0] for s in starts] == ["de", "ar"] and {s[1] for s in starts} == {"1"}
    assert proc.returncode == 0 and "finished" in proc.stdout, proc.stderr
