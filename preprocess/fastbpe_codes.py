"""fastBPE codes applied through subword-nmt, for when the ``fastBPE`` module is not installed.

fastBPE (``pip install fastBPE`` fails to build on Python >= 3.11 with build isolation) writes
codes as ``left right count`` lines with no header; its merges are those of subword-nmt's format
0.2 (the end-of-word mark ``</w>`` on the last symbol of a word), applied the same way: lowest
rank first, ``@@`` between the pieces of a word.  The codes are converted in memory (the
``#version: 0.2`` header, the count column dropped) and applied by subword-nmt's ``BPE``; with
fastBPE installed the test suite checks the two give identical lines.  ``encode`` / ``decode``
are those of fairseq's ``fastbpe`` BPE, so an object of this class replaces it in a fairseq hub.
"""
import io

from fairseq_grafusion.errors import GraFusionError

BPE_SYMBOL = "@@ "


def subword_nmt_codes(lines, path):
    """fastBPE code lines -> a subword-nmt 0.2 codes file's text (a file already in subword-nmt's
    format is taken as it is); one line naming ``path`` and the line for a malformed one."""
    out = ["#version: 0.2"]
    for k, line in enumerate(lines, 1):
        if k == 1 and line.startswith("#version:"):
            continue
        fields = line.split()
        if len(fields) not in (2, 3) or (len(fields) == 3 and not fields[2].isdigit()):
            raise GraFusionError(f"{path}:{k}: not a BPE code line ('left right [count]'): {line[:80]!r}")
        out.append(f"{fields[0]} {fields[1]}")
    if len(out) == 1:
        raise GraFusionError(f"{path}: no BPE codes")
    return "\n".join(out) + "\n"


class FastBPECodes:
    """fairseq's ``fastbpe`` BPE (``encode`` / ``decode``) on subword-nmt."""

    def __init__(self, path):
        from subword_nmt.apply_bpe import BPE

        try:
            with open(path, encoding="utf-8") as f:
                text = subword_nmt_codes(f.read().rstrip("\n").split("\n"), path)
        except (OSError, UnicodeDecodeError) as e:
            raise GraFusionError(f"{path}: cannot read fastBPE codes ({e})") from None
        self.bpe = BPE(io.StringIO(text), separator=BPE_SYMBOL.strip())
        self.bpe_symbol = BPE_SYMBOL

    def encode(self, x: str) -> str:
        return self.bpe.process_line(x)

    def decode(self, x: str) -> str:
        return (x + " ").replace(self.bpe_symbol, "").rstrip()
