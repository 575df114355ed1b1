"""fairseq-grafusion: GraFusion-MRC as a fairseq plugin (``--user-dir fairseq_grafusion``).

Importing the package itself is light (no torch, no fairseq), so that the data pipeline's readers
and writers (:mod:`.squad`, :mod:`.files`, :mod:`.preprocess.workdir`) can be used anywhere.
fairseq's ``--user-dir`` imports ``tasks/`` and ``models/``, which register the model
``grafusion`` (architectures ``grafusion_base``, ``grafusion_large``, ``grafusion_tiny``), the
baselines' model ``filter`` (``filter_*``, ``xlmr_translate_train_*``), the tasks and criteria
``xmrc_span`` and ``sa_graph_pretrain`` (and the criterion ``xmrc_span_self_teaching``), and
make the process changes listed in :func:`.hooks.install`; Python code gets all of it with
``import fairseq_grafusion.plugin``.

Layers: the commands (:mod:`.cli`, :mod:`.preprocess.cli`) sit on top and nothing imports them;
they share :mod:`.console`;
the library below them is the model side (``models``, ``modules``, ``tasks``, ``criterions``,
``data``, ``scoring``), inference (:mod:`.inference`, :mod:`.hub`) and the data pipeline
(:mod:`.preprocess`).
"""
import logging

from .errors import GraFusionError

# the one change made on import, before fairseq is (listed with install()'s, hooks.py): fairseq's
# text_to_speech task logs "Please install tensorboardX" at INFO when fairseq is first imported
logging.getLogger("fairseq.tasks.text_to_speech").setLevel(logging.WARNING)

__all__ = ["GraFusionError"]
