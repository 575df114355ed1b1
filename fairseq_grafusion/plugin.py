"""Everything the plugin registers with fairseq, for Python code that does not go through
``--user-dir``: ``import fairseq_grafusion.plugin`` registers the models, the tasks and the criteria
and makes the process changes of :func:`.hooks.install` (listed there)."""
from . import criterions, hooks, models, tasks  # noqa: F401  (registration)

hooks.install()
