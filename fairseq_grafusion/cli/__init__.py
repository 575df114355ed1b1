"""The ``grafusion-*`` commands: each parses its arguments into one config dataclass (checked
once, in ``__post_init__``), calls the library and exits through :func:`..console.run`.  Nothing
in the library imports this package, and no command imports another: what they share lives in
the library (:mod:`..console`, :mod:`..preprocess.mt_options`)."""
