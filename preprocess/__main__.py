"""``python -m fairseq_grafusion.preprocess`` = ``grafusion-preprocess``."""
from .cli import cli_main

cli_main()
