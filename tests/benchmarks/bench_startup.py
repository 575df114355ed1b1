"""Start-up time of the commands: ``grafusion-evaluate`` on a one-question file and ``--help`` of
every command, wall time of fresh processes.

    python tests/benchmarks/bench_startup.py [--runs 5] [--output tests/benchmarks/RESULTS.md]

Two columns: the commands as installed, and the same command modules loaded with the package
``__init__`` bypassed (what start-up costs once ``fairseq_grafusion/__init__.py`` no longer
imports the models; ``tests/cli/test_cli_imports.py`` checks the import footprint of both).  Run it
with ``PYTHONPATH`` pointing at another checkout to time that version.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = {  # console script -> its module
    "grafusion-evaluate": "fairseq_grafusion.cli.evaluate",
    "grafusion-predict": "fairseq_grafusion.cli.predict",
    "grafusion-preprocess": "fairseq_grafusion.preprocess.cli",
    "grafusion-plot-attention": "fairseq_grafusion.cli.plot_attention",
}
_BYPASS = ("import importlib.machinery, sys, types; p = types.ModuleType('fairseq_grafusion'); "
           "p.__path__ = [{path!r}]; p.__spec__ = importlib.machinery.ModuleSpec("
           "'fairseq_grafusion', None, is_package=True); "
           "p.__spec__.submodule_search_locations = p.__path__; sys.modules['fairseq_grafusion'] = p; "
           "sys.argv[1:] = {argv!r}; from {module} import cli_main; cli_main()")


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return statistics.median(times), min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--output", help="append the table (markdown) to this file")
    args = p.parse_args()
    import fairseq_grafusion.errors as probe  # where the package is loaded from (PYTHONPATH)

    package = os.path.dirname(os.path.abspath(probe.__file__))
    bin_dir = os.path.dirname(sys.executable)
    tmp = tempfile.mkdtemp(prefix="bench-startup-")
    gold = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Der Hund bellt.",
            "qas": [{"id": "q1", "question": "Wer?", "answers": [{"text": "Der Hund", "answer_start": 0}]}]}]}]}
    with open(os.path.join(tmp, "gold.json"), "w") as f:
        json.dump(gold, f)
    with open(os.path.join(tmp, "pred.json"), "w") as f:
        json.dump({"q1": "Hund"}, f)
    evaluate = ["--gold", os.path.join(tmp, "gold.json"), "--pred", os.path.join(tmp, "pred.json"),
                "--lang", "de"]
    cases = [("grafusion-evaluate (one question)", "grafusion-evaluate", evaluate)]
    cases += [(f"{name} --help", name, ["--help"]) for name in COMMANDS]
    rows = [("python -c pass (interpreter floor)", timed([sys.executable, "-c", "pass"], args.runs),
             None)]
    for label, name, argv in cases:
        installed = timed([os.path.join(bin_dir, name), *argv], args.runs)
        bypass = _BYPASS.format(path=package, argv=argv, module=COMMANDS[name])
        rows.append((label, installed, timed([sys.executable, "-c", bypass], args.runs)))
        print(label, installed, rows[-1][2], flush=True)
    lines = [f"(fairseq_grafusion from {os.path.dirname(package)}; {args.runs} runs each, "
             "seconds, median / min)", "",
             "| command | as installed | package `__init__` bypassed |", "| --- | --- | --- |"]
    for label, (med, low), bypassed in rows:
        other = f"{bypassed[0]:.2f} / {bypassed[1]:.2f}" if bypassed else ""
        lines.append(f"| {label} | {med:.2f} / {low:.2f} | {other} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
