"""Installed, not only cloned: ``pip install .`` (not editable) into a fresh virtual environment,
then the bundled sample's preprocessing from an empty directory, with nothing of the checkout
on the way: the sample and its script come from the installed package.

The new environment sees the test environment's packages (torch, fairseq, ...) through a ``.pth``
line, so that only the project itself is installed (``--no-deps``: pip's cache serves the build
requirements); a plain path line adds those packages without running the test environment's own
``.pth`` files, so its editable install of the checkout stays out."""
import os
import subprocess
import sys
import sysconfig

from conftest import repository_copy


def run(argv, **kwargs):
    proc = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, **kwargs)
    assert proc.returncode == 0, f"{argv}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_a_non_editable_install_runs_the_sample_from_an_empty_directory(tmp_path):
    source = repository_copy(tmp_path / "source")  # the files a clone has
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    site = subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig."
                           "get_paths()['purelib'])"], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(site, "test-environment.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    run([venv / "bin" / "pip", "install", "-q", "--no-deps", source])
    work = tmp_path / "empty"
    work.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    sample = run(["grafusion-user-dir", "--sample"], cwd=work, env=env).stdout.strip()
    assert sample.startswith(str(venv)) and os.path.isfile(os.path.join(sample, "run.sh")), sample
    assert run(["grafusion-user-dir"], cwd=work, env=env).stdout.strip().startswith(str(venv))
    proc = run(["grafusion-preprocess", "all", "--sample", "--out", "rel"], cwd=work, env=env)
    assert f"done: {work / 'rel' / 'qa-bin'}" in proc.stdout, proc.stdout[-2000:]
    for split in ("train", "valid"):
        assert (work / "rel" / "qa-bin" / f"{split}.meta.json").is_file()
        assert (work / "rel" / "parallel-bin" / f"{split}.meta.json").is_file()
    assert os.listdir(work) == ["rel"]  # nothing written anywhere else in the directory
