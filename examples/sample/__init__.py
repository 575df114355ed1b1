"""The bundled sample, installed with the package as ``fairseq_grafusion.sample`` (its data files:
``qa/``, ``parallel/``, ``spm/``, ``spm-xquad/``, and ``run.sh``, which runs it end to end from any
directory: ``bash "$(grafusion-user-dir --sample)/run.sh"``).  See README.md here."""
import os

SAMPLE_DIR = os.path.dirname(os.path.abspath(__file__))
