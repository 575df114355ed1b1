"""The fenced code blocks of the README and of the pages under ``docs/`` and the commands in them,
for the tests that keep them true.

A bash block right below the comment ``<!-- ci: run -->`` is run as written by the tests
(``conftest.readme_run``: bash ``-e -o pipefail``, in a directory holding the sample's data that
command 1 writes, ``sample-run/``, and the repository's ``examples/``); every other bash block is
checked without running it (``tests/cli/test_readme.py``: shell syntax, the repository files it
names, each ``grafusion-*`` / ``fairseq-*`` command's options against that command's parser).
``...`` in a command stands for "the other options" and is not an argument.
"""
import glob
import os
import re
import shlex
from dataclasses import dataclass
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
DOCS = sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
PAGES = [README] + DOCS  # every page whose commands the tests keep true
FENCE = re.compile(r"^```([\w-]*)\s*$")
MARKER = re.compile(r"^<!--\s*ci:\s*([\w-]+)\s*-->$")
MARKERS = ("run",)
KEYWORDS = {"do", "then", "else", "time", "!"}  # words before a command
SKIP = {"for", "while", "if", "done", "fi", "case", "esac", "function"}  # not a command line


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: Optional[str]  # the ``<!-- ci: NAME -->`` right above, or None
    page: str = README

    def __str__(self):
        return f"{os.path.relpath(self.page, REPO)}:{self.line} ({self.lang or 'text'})"


def all_blocks():
    """Every fenced block of every page (:data:`PAGES`), page by page."""
    return [block for page in PAGES for block in blocks(page)]


def blocks(path=README):
    """Every fenced block of a markdown file, in order."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{path}:{i + 1}: code block without its closing fence")
        above = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.match(above)
        found.append(Block(i + 1, m.group(1), "\n".join(lines[i + 1:end]) + "\n",
                           marker.group(1) if marker else None, path))
        i = end + 1
    return found


def commands(text):
    """The simple commands of a bash block as argument lists: continuation lines joined, comments
    dropped, split at ``;``, ``&&``, ``||``, ``|``, ``&`` and line ends, leading ``do`` / ``then``
    / variable assignments dropped, loop headers and ``done`` skipped, ``...`` removed."""
    out = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current = []
        for token in list(lexer) + [";"]:
            if token and set(token) <= set(";&|"):
                while current and (current[0] in KEYWORDS or re.match(r"^\w+=", current[0])):
                    current.pop(0)
                if current and current[0] not in SKIP:
                    out.append([t for t in current if t != "..."])
                current = []
            else:
                current.append(token)
    return out
