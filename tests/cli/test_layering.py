"""The package's layers, read from its source with ``ast`` and checked on the installed copy.

* Commands (``fairseq_grafusion.cli``, ``fairseq_grafusion.preprocess.cli`` / ``__main__``) sit on
  top: no library module imports one, at module level or inside a function, and no command
  imports another (nor its package's ``__init__``): they share through the library.
* No module imports another module's ``_private`` name.
* The library's module-level imports form no cycle, and the pre-training heads never import the
  model (the circle ``models/grafusion.py`` <-> ``models/pretrain_heads.py`` is gone).
* There is no top-level ``preprocess``: ``setup.py`` declares none, the installed copy has none;
  ``python -m fairseq_grafusion.preprocess`` and ``grafusion-preprocess`` work.
* The pipeline's readers and writers import without torch or fairseq (and install no hook).
"""
import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO, console_scripts, setup_kwargs

# the installed package and where each of its parts lives in the repository
ROOTS = {"fairseq_grafusion": os.path.join(REPO, "fairseq_grafusion"),
         "fairseq_grafusion.preprocess": os.path.join(REPO, "preprocess")}
COMMANDS = ("fairseq_grafusion.cli", "fairseq_grafusion.preprocess.cli",
            "fairseq_grafusion.preprocess.__main__")


def modules():
    """``{module name: (path, is_package)}`` of every source file of the package."""
    out = {}
    for package, root in ROOTS.items():
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = os.path.relpath(directory, root)
            prefix = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
            for name in files:
                if name.endswith(".py"):
                    is_package = name == "__init__.py"
                    module = prefix if is_package else f"{prefix}.{name[:-3]}"
                    out[module] = (os.path.join(directory, name), is_package)
    return out


def imports(module, path, is_package, known):
    """``[(target module, imported name or None, at module level?)]`` of one source file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    top_level = {id(node) for node in tree.body}
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, None, id(node) in top_level))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # "from . import x": the submodule x
                    out.append((sub, None, id(node) in top_level))
                else:
                    out.append((target, alias.name, id(node) in top_level))
    return out


def is_command(module):
    return any(module == c or module.startswith(c + ".") for c in COMMANDS)


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {m: imports(m, path, is_package, known) for m, (path, is_package) in known.items()}


def test_the_source_tree_is_read(graph):
    assert {"fairseq_grafusion.hub", "fairseq_grafusion.cli.predict", "fairseq_grafusion.preprocess.cli",
            "fairseq_grafusion.preprocess.stages", "fairseq_grafusion.models.grafusion"} <= set(graph)
    # the reader sees function-level imports too: the predict command imports the pipeline lazily
    assert ("fairseq_grafusion.inference", "question_pipeline", False) in graph["fairseq_grafusion.cli.predict"]


def test_no_library_module_imports_a_command(graph):
    bad = [(m, target) for m, found in graph.items() if not is_command(m)
           for target, _, _ in found if is_command(target)]
    assert bad == []


# ``python -m fairseq_grafusion.preprocess`` is grafusion-preprocess itself
ALIASES = {"fairseq_grafusion.preprocess.__main__": "fairseq_grafusion.preprocess.cli"}


def command_of(module):
    """The command package or module ``module`` belongs to (``fairseq_grafusion.cli`` for the
    package's ``__init__`` and its commands)."""
    module = ALIASES.get(module, module)
    return next((c for c in COMMANDS if module == c or module.startswith(c + ".")), None)


def test_commands_share_through_the_library_not_through_each_other(graph):
    """``grafusion-preprocess`` and the ``grafusion-*`` commands of ``fairseq_grafusion.cli`` used
    to import each other (the way out, the MT options); what they share is a library module."""
    bad = [(m, target) for m, found in graph.items() if is_command(m)
           for target, _, _ in found if is_command(target) and ALIASES.get(m) != target
           and (command_of(target) != command_of(m) or target == command_of(m))]
    assert bad == []


def test_no_module_imports_another_modules_private_name(graph):
    bad = [(m, target, name) for m, found in graph.items() for target, name, _ in found
           if name and name.startswith("_") and not name.startswith("__")
           and target.startswith("fairseq_grafusion")]
    assert bad == []


def test_module_level_imports_have_no_cycle(graph):
    edges = {m: {t for t, _, top in found if top and t in graph and t != m} for m, found in graph.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []
    heads = {t for t, _, _ in graph["fairseq_grafusion.models.pretrain_heads"]}
    assert "fairseq_grafusion.models.grafusion" not in heads  # not even inside a function
    assert not any(is_command(t) for t, _, _ in graph["fairseq_grafusion.hub"])


def test_setup_declares_no_top_level_preprocess():
    captured = setup_kwargs()
    packages = captured["packages"]
    assert "fairseq_grafusion.preprocess" in packages
    assert not [p for p in packages if p.split(".")[0] != "fairseq_grafusion"]
    assert captured["package_dir"] == {"fairseq_grafusion.preprocess": "preprocess",
                                       "fairseq_grafusion.sample": "examples/sample"}
    scripts = console_scripts(captured)
    assert scripts["grafusion-preprocess"] == "fairseq_grafusion.preprocess.cli:cli_main"


def run_python(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_installed_copy_has_no_top_level_preprocess(tmp_path):
    """From a directory outside the repository, as a user runs it."""
    proc = run_python("import importlib.util as u\n"
                      "assert u.find_spec('preprocess') is None, u.find_spec('preprocess')\n"
                      "import fairseq_grafusion.preprocess.stages as s\n"
                      "print(s.__name__)", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "fairseq_grafusion.preprocess.stages"
    # a user's own preprocess.py does not shadow the pipeline
    (tmp_path / "preprocess.py").write_text("raise SystemExit('the user module was imported')\n")
    proc = run_python("import fairseq_grafusion.preprocess.cli", tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_python_m_and_the_script_show_help(tmp_path):
    for command in ([sys.executable, "-m", "fairseq_grafusion.preprocess", "--help"],
                    [os.path.join(os.path.dirname(sys.executable), "grafusion-preprocess"), "--help"]):
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: grafusion-preprocess") and "binarize" in proc.stdout


def test_readers_and_writers_import_without_torch(tmp_path):
    proc = run_python(
        "import sys\n"
        "import fairseq_grafusion, fairseq_grafusion.squad, fairseq_grafusion.files\n"
        "import fairseq_grafusion.preprocess.workdir, fairseq_grafusion.preprocess.config\n"
        "from fairseq_grafusion.squad import read_squad, write_squad, read_gold, load_json\n"
        "from fairseq_grafusion.preprocess.workdir import read_jsonl, write_jsonl\n"
        "from fairseq_grafusion.files import atomic_path, write_json\n"
        "heavy = sorted(m for m in ('torch', 'fairseq') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert sys.excepthook is sys.__excepthook__\n", tmp_path)
    assert proc.returncode == 0, proc.stderr
