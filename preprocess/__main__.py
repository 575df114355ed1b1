"""``python -m preprocess`` = ``grafusion-preprocess``."""
from .cli import cli_main

cli_main()
