"""The commands of the README and of every page under ``docs/`` stay true (see ``readme_blocks``):
the blocks marked ``<!-- ci: run -->`` run as written on the sample's data; every other command is
checked without running it (shell syntax, the repository files it names, its options against the
parser of its command: the ``grafusion-*`` commands' own, fairseq's for ``fairseq-train`` /
``fairseq-validate`` with the plugin's task and architecture).  Also: the links stay inside the
repository and point at files that exist, the README stays short and links every page, and the
list of the dependencies to install beside one's own fairseq is setup.py's."""
import contextlib
import glob
import importlib
import io
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, console_scripts, setup_kwargs
from fairseq_grafusion.cli.user_dir import user_dir
from readme_blocks import DOCS, MARKERS, PAGES, README, all_blocks, commands

BLOCKS = all_blocks()
BASH = [b for b in BLOCKS if b.lang == "bash"]
REPO_DIRS = ("examples/", "tests/", "fairseq_grafusion/", "preprocess/", ".ci/")


SCRIPTS = console_scripts(setup_kwargs())


def test_markers_are_known_and_sit_on_bash_blocks():
    text = "".join(open(page, encoding="utf-8").read() for page in PAGES)
    assert len(re.findall(r"(?m)^\s*<!--\s*ci:", text)) == sum(b.marker is not None for b in BLOCKS)
    assert all(b.marker in MARKERS and b.lang == "bash" for b in BLOCKS if b.marker), \
        [str(b) for b in BLOCKS if b.marker]
    assert any(b.marker == "run" for b in BLOCKS)


@pytest.mark.parametrize("block", BASH, ids=str)
def test_bash_syntax(block):
    proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert proc.returncode == 0, f"{block}: {proc.stderr}"


def test_python_syntax():
    """Every python block of the pages compiles (there are some to check)."""
    blocks = [b for b in BLOCKS if b.lang == "python"]
    assert blocks, "no python block found in the pages"
    errors = []
    for block in blocks:
        try:
            compile(block.text, str(block), "exec")
        except SyntaxError as e:
            errors.append(f"{block}: {e}")
    assert not errors, "\n".join(errors)


def named_paths(argv):
    for token in argv:
        path = token.split("=", 1)[-1]
        if path.startswith(REPO_DIRS) and not set(path) & set("$*{"):
            yield path


@pytest.mark.parametrize("block", BASH, ids=str)
def test_files_and_scripts_named_exist(block):
    for argv in commands(block.text):
        for path in named_paths(argv):
            assert os.path.exists(os.path.join(REPO, path)), f"{block}: {path} does not exist"
        if argv[0] == "bash" and len(argv) > 1 and "$" not in argv[1]:  # not "$(...)/run.sh"
            proc = subprocess.run(["bash", "-n", os.path.join(REPO, argv[1])], capture_output=True,
                                  text=True)
            assert proc.returncode == 0, f"{block}: {argv[1]}: {proc.stderr}"


def parse_fairseq(command, argv):
    """fairseq's own parsing of ``fairseq-train`` / ``fairseq-validate`` arguments (the plugin
    imported from ``--user-dir``); the error message, or None."""
    from fairseq import options

    import fairseq_grafusion.plugin  # noqa: F401  (fairseq's --user-dir skips a package imported)

    parser = {"fairseq-train": options.get_training_parser,
              "fairseq-validate": options.get_validation_parser}[command]()
    # --user-dir: the installed plugin, whatever path or shell expression the README gives
    argv = [user_dir() if i and argv[i - 1] == "--user-dir" else a for i, a in enumerate(argv)]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            options.parse_args_and_arch(parser, argv)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1]
    return None


def parse_grafusion(command, argv):
    """The command's own parser on the arguments; the error message, or None."""
    module, _ = SCRIPTS[command].split(":")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(module).get_parser().parse_args(argv)
    except SystemExit as e:
        return err.getvalue().strip().splitlines()[-1] if e.code else None
    return None


@pytest.mark.parametrize("block", BASH, ids=str)
def test_options_are_accepted_by_their_commands(block):
    for argv in commands(block.text):
        command, args = argv[0], argv[1:]
        if command.startswith("grafusion-"):
            assert command in SCRIPTS, f"{block}: {command} is not a command of setup.py"
            error = parse_grafusion(command, args)
        elif command in ("fairseq-train", "fairseq-validate"):
            error = parse_fairseq(command, args)
        else:
            continue
        assert error is None, f"{block}: {command}: {error}"


def test_the_run_blocks_run(readme_run):
    _, runs = readme_run
    for block, proc in runs:
        assert proc.returncode == 0, (f"{block} exited with {proc.returncode}:\n"
                                      f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def test_links_stay_inside_the_repository():
    for path in PAGES + glob.glob(os.path.join(REPO, "examples", "**", "*.md"), recursive=True):
        text = open(path, encoding="utf-8").read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+://|^#|^mailto:", target):
                continue
            full = os.path.normpath(os.path.join(os.path.dirname(path), target.split("#")[0]))
            assert full.startswith(REPO + os.sep), f"{path}: link {target} leaves the repository"
            assert os.path.exists(full), f"{path}: link {target} does not exist"
        assert "../shared" not in text, path


def test_the_readme_is_short_and_links_every_page():
    """A newcomer's page: at most about 200 lines, and every page under docs/ one link away."""
    text = open(README, encoding="utf-8").read()
    assert len(text.splitlines()) <= 200
    assert DOCS, "no docs/ pages"
    for page in DOCS:
        assert f"](docs/{os.path.basename(page)})" in text, f"the README does not link {page}"


def test_own_fairseq_install_lists_the_other_dependencies():
    """README, "Installing": ``pip install --no-deps -e .`` then every dependency but fairseq and
    torch (which the user has)."""
    install = [argv[2:] for b in BASH for argv in commands(b.text)
               if argv[:2] == ["pip", "install"] and "--no-deps" not in argv]
    assert len(install) == 1, install
    name = lambda req: re.split(r"[<>=;\s]", req)[0].lower()  # noqa: E731
    wanted = sorted(r.replace(" ", "") for r in setup_kwargs()["install_requires"]
                    if name(r) not in ("fairseq", "fairseq-fixed", "torch"))
    assert sorted(install[0]) == wanted


def test_python_requires_and_classifiers_agree():
    kwargs = setup_kwargs()
    assert kwargs["python_requires"] == ">=3.11"
    versions = sorted(c.rsplit(" ", 1)[1] for c in kwargs["classifiers"]
                      if re.match(r"Programming Language :: Python :: 3\.\d+$", c))
    assert versions == ["3.11", "3.12", "3.13"]
    assert sys.version_info >= (3, 11)
    torch = [r for r in kwargs["install_requires"] if r.startswith("torch")]
    assert torch == ["torch>=2.6"]  # no upper bound: a newer (cluster) torch is kept


def test_ci_runs_the_readmes_test_command():
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        command = f.read().strip().splitlines()[-1]
    assert any(command in b.text.splitlines() for b in BASH), command


def test_design_references_resolve():
    """The code cites the design as (docs/design.md, SECTION in quotes): each section exists, and
    nothing cites the DESIGN file that lives outside the repository."""
    headings = set(re.findall(r"(?m)^#+\s+(.+?)\s*$", open(os.path.join(REPO, "docs", "design.md"),
                                                         encoding="utf-8").read()))
    cited, outside = [], []
    for root in ("fairseq_grafusion", "preprocess", "examples", "tests"):
        for path in glob.glob(os.path.join(REPO, root, "**", "*.py"), recursive=True):
            text = open(path, encoding="utf-8").read()
            cited += [(path, s) for s in re.findall(r'docs/design\.md,\s+"([^"]+)"', text)]
            outside += [path for _ in re.findall(r'\bDESIGN\s+"', text)]
    assert len(cited) >= 5
    assert [c for c in cited if c[1] not in headings] == [] and outside == []
