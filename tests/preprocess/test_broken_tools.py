"""No traceback reaches a user: a broken tool under a command (eflomal that exits 3 or is killed,
a damaged Stanza model, a file that cannot be written) is one line naming what was being done
and on which file, from every command that runs it."""
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_fairseq, train_args

SAMPLE = os.path.join(REPO, "examples", "sample")
# loaded at start-up (PYTHONPATH): eflomal's binary is the script GRAFUSION_TEST_EFLOMAL
HOOK = '''
import os
_fake = os.environ.get("GRAFUSION_TEST_EFLOMAL")
if _fake:
    import fairseq_grafusion.preprocess.eflomal_run as _run
    _run.eflomal_binary = lambda: _fake
'''
BROKEN = {"exits 3": "#!/bin/sh\necho 'eflomal: cannot allocate' >&2\nexit 3\n",
          "killed": "#!/bin/sh\nkill -9 $$\n"}


@pytest.fixture(scope="module")
def hook(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hook")
    (directory / "sitecustomize.py").write_text(HOOK)
    for name, script in BROKEN.items():
        path = directory / name.replace(" ", "-")
        path.write_text(script)
        path.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def graph_model(sample_run, tmp_path_factory):
    """A +ad checkpoint of the sample (its questions need alignment when answered raw)."""
    save = tmp_path_factory.mktemp("model") / "ck"
    run_fairseq("train", *train_args(str(sample_run[0] / "qa-bin"), str(save), "--disable-validation",
                                     updates=1))
    return save / "checkpoint_last.pt"


def command(module, *args, hook, tool=None, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("GRAFUSION_TRACEBACK", None)
    if tool:
        env["GRAFUSION_TEST_EFLOMAL"] = str(hook / tool.replace(" ", "-"))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def one_line(proc, prog):
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1], proc.stderr[-3000:]
    assert errors[0].startswith(f"{prog}: error: "), errors[0]
    return errors[0]


@pytest.mark.parametrize("tool", sorted(BROKEN))
def test_a_broken_eflomal_is_one_line_from_every_command(hook, graph_model, tmp_path, tool):
    how = "failed with exit status 3" if tool == "exits 3" else "was killed by signal 9 (SIGKILL)"
    line = one_line(command("fairseq_grafusion.preprocess", "all", "--sample", "--out", "out",
                            hook=hook, tool=tool, cwd=tmp_path), "grafusion-preprocess")
    assert how in line and f"line pairs of {tmp_path / 'out' / 'work' / 'qa' / 'train'}" in line, line
    line = one_line(command("fairseq_grafusion.preprocess", "parallel", "--sample", "--out", "par",
                            hook=hook, tool=tool, cwd=tmp_path), "grafusion-preprocess")
    assert how in line and "work/parallel/train" in line, line
    spm = os.path.join(SAMPLE, "spm")
    line = one_line(command("fairseq_grafusion.cli.predict", "--path", graph_model, "--qa",
                            os.path.join(SAMPLE, "qa", "valid.en.json"),
                            os.path.join(SAMPLE, "qa", "valid.ro.json"), "--src-lang", "en",
                            "--tgt-lang", "ro", "--spm", os.path.join(spm, "sentencepiece.bpe.model"),
                            "--dict", os.path.join(spm, "dict.txt"), "--output", tmp_path / "p.json",
                            hook=hook, tool=tool), "grafusion-predict")
    assert how in line, line
    assert not (tmp_path / "p.json").exists()


def test_a_damaged_stanza_model_is_one_line(hook, tmp_path):
    stanza_dir = tmp_path / "stanza"
    (stanza_dir / "en" / "tokenize").mkdir(parents=True)
    (stanza_dir / "en" / "tokenize" / "combined.pt").write_bytes(b"not a model")
    line = one_line(command("fairseq_grafusion.preprocess", "all", "--sample", "--out", tmp_path / "o",
                            "--stanza-dir", stanza_dir, hook=hook), "grafusion-preprocess")
    assert f"--stanza-dir {stanza_dir}: cannot load Stanza's tokenize models for en" in line, line


def test_a_file_that_cannot_be_written_is_one_line_naming_it(hook, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = one_line(command("fairseq_grafusion.preprocess", "pairs", "--sample", "--out",
                            blocker / "out", hook=hook), "grafusion-preprocess")
    assert str(blocker / "out") in line and "Not a directory" in line, line
