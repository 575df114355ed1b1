"""``python -m MODULE ARGS`` (or ``python SCRIPT ARGS``) as a test's subprocess, without paying
the interpreter's start each time: this server imports torch and fairseq once (about 5 s of CPU
per start, most of it fairseq importing every task and criterion, scipy and scikit-learn
included), then runs every request in a child forked from that state.  The child is a fresh
process as far as the command can tell: its own environment, working directory, ``sys.argv``
and ``sys.path[0]`` as the interpreter sets them, its stdout and stderr in files, ``runpy``
running the module as ``__main__`` (the plugin is not imported here: ``--user-dir`` imports it,
as in a real run), and its exit code as the interpreter would give it (``sys.exit``, or 1 and the
traceback for an exception that escapes).

    python tests/module_server.py      # requests on stdin, one JSON object a line:
    {"module": "fairseq_cli.train", "argv": [...], "env": {...}, "cwd": DIR, "stdout": FILE, "stderr": FILE}
    (or "path": SCRIPT instead of "module")

Each request is answered on stdout by two lines, ``{"pid": child}`` when it starts (so that the
caller can kill it on a timeout) and ``{"code": exit code}`` when it ends.  ``conftest.run_module``
is the client: one server per setting that acts at an interpreter's start (thread counts,
``PYTHONHASHSEED``), and a new interpreter instead of a fork where the run's ``PYTHONPATH`` differs
(a test's hook, code run at start)."""
import json
import os
import runpy
import sys

REPLIES = os.dup(1)  # the answers' channel; fd 1 becomes stderr, so that nothing printed while
os.dup2(2, 1)  # importing (fairseq logs to stdout) or by a child can reach the caller's pipe

import fairseq_cli.train  # noqa: E402, F401  (the cost paid once: torch, fairseq, its registries)
import fairseq_cli.validate  # noqa: E402, F401

from forked_commands import exit_code, redirect  # noqa: E402  (the child's body, shared)


def child(request):
    """The body of the forked child: never returns (:func:`forked_commands.exit_code`)."""
    def program():
        os.close(REPLIES)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        redirect(request["stdout"], request["stderr"])
        if "path" in request:  # python SCRIPT ARGS
            sys.argv = [request["path"], *request["argv"]]
            sys.path[0] = os.path.dirname(os.path.abspath(request["path"]))
            runpy.run_path(request["path"], run_name="__main__")
        else:  # python -m MODULE ARGS
            sys.argv = [request["module"], *request["argv"]]
            sys.path[0] = os.getcwd()
            sys.modules.pop(request["module"], None)  # run as __main__ only, as `python -m` does
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)

    exit_code(program)


def serve():
    replies = os.fdopen(REPLIES, "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    serve()
