"""Start-up cost of the commands, measured by what they import (not by wall time).

``grafusion-evaluate`` (any use) and ``--help`` of every command must not import torch or fairseq
(numpy, a tenth of a second, is allowed).  Each check runs in a fresh interpreter.  The ``own
files`` checks load the command modules under a stand-in for the package ``__init__`` (the plain
package directory, nothing executed), so they test ``cli/*.py``, ``scoring/*`` and the pipeline's
``cli.py`` themselves; the ``as installed`` checks import the real, light package.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

HEAVY = ("torch", "fairseq")

# module, argv: what one command does at start-up
COMMANDS = {
    "grafusion-evaluate --help": ("fairseq_grafusion.cli.evaluate", ["--help"]),
    "grafusion-predict --help": ("fairseq_grafusion.cli.predict", ["--help"]),
    "grafusion-plot-attention --help": ("fairseq_grafusion.cli.plot_attention", ["--help"]),
    "grafusion-preprocess --help": ("fairseq_grafusion.preprocess.cli", ["--help"]),
    "grafusion-user-dir": ("fairseq_grafusion.cli.user_dir", []),  # inside $(...) of fairseq commands
}

# the package directory as a namespace, without running fairseq_grafusion/__init__.py
_STAND_IN = """
import importlib.machinery, importlib.util, sys, types
package = types.ModuleType("fairseq_grafusion")
package.__path__ = [{path!r}]
package.__spec__ = importlib.machinery.ModuleSpec("fairseq_grafusion", None, is_package=True)
package.__spec__.submodule_search_locations = package.__path__
sys.modules["fairseq_grafusion"] = package
"""


def imported_after(module, argv, stand_in):
    """The heavy top-level modules in ``sys.modules`` after ``module.cli_main(argv)`` ran (a
    ``SystemExit`` of ``--help`` included) in a fresh interpreter."""
    code = (_STAND_IN.format(path=os.path.join(REPO, "fairseq_grafusion")) if stand_in else "")
    code += textwrap.dedent(f"""
        import contextlib, io, json, sys
        import {module} as command
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                command.cli_main({argv!r})
            except SystemExit as e:
                assert e.code in (0, None), e.code
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def evaluate_argv(tmp_path):
    gold = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Der Hund bellt.", "qas": [
        {"id": "q1", "question": "Wer bellt?", "answers": [{"text": "Der Hund", "answer_start": 0}]}]}]}]}
    (tmp_path / "gold.json").write_text(json.dumps(gold))
    (tmp_path / "pred.json").write_text(json.dumps({"q1": "Hund"}))
    return ["--gold", str(tmp_path / "gold.json"), "--pred", str(tmp_path / "pred.json"), "--lang", "de"]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_imports_neither_torch_nor_fairseq_own_files(name):
    module, argv = COMMANDS[name]
    assert imported_after(module, argv, stand_in=True) == []


def test_evaluate_imports_neither_torch_nor_fairseq_own_files(tmp_path):
    assert imported_after("fairseq_grafusion.cli.evaluate", evaluate_argv(tmp_path), stand_in=True) == []


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_imports_neither_torch_nor_fairseq_as_installed(name):
    module, argv = COMMANDS[name]
    assert imported_after(module, argv, stand_in=False) == []


def test_evaluate_imports_neither_torch_nor_fairseq_as_installed(tmp_path):
    assert imported_after("fairseq_grafusion.cli.evaluate", evaluate_argv(tmp_path), stand_in=False) == []
