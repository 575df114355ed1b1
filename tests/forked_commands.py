"""Run many command lines of the plugin's commands, each as its console script runs it, in one
interpreter: torch, fairseq and the plugin are imported once, then every command line runs in a
child forked from that state (a fresh process as far as the command can tell: nothing one run
sets up is seen by the next), with its stdout and stderr in a file of its own and the command's
own way out as the interpreter would give it (:func:`exit_code`, also the body of
``module_server.py``'s children).

    python tests/forked_commands.py JOBS.json RESULTS.json

``JOBS.json``: ``[[command, [argv...], log file(, working directory)], ...]`` with ``command`` a
key of :func:`entries` (the child changes to the working directory first, where the user would
be); ``RESULTS.json`` gets the exit codes, in order.  Used by tests that run a family of inputs through
every command (a second interpreter start per input would cost seconds each).
"""
import atexit
import json
import logging
import os
import sys


def _hub(model_dir, checkpoint, *rest):
    """The hub as a user calls it: ``from_pretrained(model_dir, checkpoint_file=...)``, the other
    arguments as ``key=value`` (``mt_model=DIR``)."""
    from fairseq_grafusion.models import GraFusionModel

    kwargs = dict(arg.split("=", 1) for arg in rest)
    GraFusionModel.from_pretrained(model_dir, checkpoint_file=checkpoint, **kwargs)


def entries():
    from fairseq_cli import train, validate

    import fairseq_grafusion.plugin  # noqa: F401  (what --user-dir imports)
    from fairseq_grafusion.cli import evaluate, plot_attention, predict, results, user_dir
    from fairseq_grafusion.preprocess import cli as preprocess

    return {"grafusion-predict": predict.cli_main, "grafusion-plot-attention": plot_attention.cli_main,
            "grafusion-preprocess": preprocess.cli_main, "grafusion-evaluate": evaluate.cli_main,
            "grafusion-results": results.cli_main, "grafusion-user-dir": user_dir.cli_main,
            "fairseq-validate": validate.cli_main, "fairseq-train": train.cli_main,
            "hub": lambda: _hub(*sys.argv[1:])}


def redirect(stdout, stderr=None):
    """In a child: file descriptors 1 and 2 to the files ``stdout`` and ``stderr`` (one file for
    both when ``stderr`` is None), 0 from ``/dev/null`` (no standard input, as the tests'
    ``subprocess`` runs give)."""
    opened = {}
    for fd, name in ((1, stdout), (2, stderr or stdout)):
        if name not in opened:
            opened[name] = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened[name], fd)
    for out in opened.values():
        os.close(out)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)


def exit_code(program):
    """Run ``program()`` in a forked child as the interpreter runs a program, and end the child
    with the exit code the interpreter would give: ``sys.exit``'s (a message printed to stderr and
    1 for a non-integer), 1 and the traceback for an exception that escapes; the at-exit functions
    and logging's shutdown run and the output is flushed first.  Never returns."""
    code = 0
    try:
        program()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def run_one(entry, command, argv, log, cwd=None):
    """``entry()`` with ``sys.argv = [command, *argv]`` in a child forked from this interpreter,
    in ``cwd``, stdout and stderr into ``log``; returns its exit code."""
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def program():
        if cwd:
            os.chdir(cwd)
        redirect(log)
        sys.argv = [command, *argv]
        entry()

    exit_code(program)


def main(jobs_file, results_file):
    with open(jobs_file, encoding="utf-8") as f:
        jobs = json.load(f)
    table = entries()
    codes = [run_one(table[job[0]], *job) for job in jobs]
    with open(results_file, "w", encoding="utf-8") as f:
        json.dump(codes, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
