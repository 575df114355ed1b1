"""Everything the plugin registers with fairseq, for Python code that does not go through
``--user-dir``: ``import fairseq_grafusion.plugin`` registers the model, the tasks and the criteria
and sets up the process (:mod:`.hooks`)."""
from . import criterions, hooks, models, tasks  # noqa: F401  (registration)
