"""``grafusion-user-dir``: print the directory to give fairseq's ``--user-dir`` (the installed
package), so that fairseq's commands load the plugin from any working directory:

    fairseq-train DATA --user-dir "$(grafusion-user-dir)" --task xmrc_span ...
    fairseq-hydra-train --config-dir CONFIGS --config-name NAME common.user_dir=$(grafusion-user-dir)

(``--user-dir fairseq_grafusion`` is a path relative to the working directory: it works only in
the repository's root.)  ``--sample`` prints the bundled sample's directory instead (installed
with the package), whose ``run.sh`` runs it end to end from any directory:

    bash "$(grafusion-user-dir --sample)/run.sh"

Light: imports neither torch nor fairseq.
"""
import argparse
import os

from ..console import run


def user_dir():
    """The absolute path of the installed ``fairseq_grafusion`` package."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_parser():
    p = argparse.ArgumentParser(prog="grafusion-user-dir", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", action="store_true",
                   help="print the bundled sample's directory (its run.sh runs it end to end)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.sample:
        from ..sample import SAMPLE_DIR

        print(SAMPLE_DIR)
    else:
        print(user_dir())


def cli_main(argv=None):
    run("grafusion-user-dir", main, argv)


if __name__ == "__main__":
    cli_main()
