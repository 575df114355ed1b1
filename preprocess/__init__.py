"""grafusion-preprocess: the data pipeline of fairseq-grafusion (docs/design.md, "Data formats").

Installed as ``fairseq_grafusion.preprocess`` (the repository keeps it in its top-level
``preprocess/`` folder); ``python -m fairseq_grafusion.preprocess`` = ``grafusion-preprocess``.

The algorithms, one module per concept (plain values in, plain values out, no stage files):

=============  ================================================================================
``pairs``      :mod:`.pairing` (+ :mod:`.translate`): pair English and target SQuAD files
               (:mod:`fairseq_grafusion.squad`) by question id, translating a missing side
``words``      :mod:`.wordseg`: sentences and words with character offsets (Stanza or rules)
``align``      :mod:`.align`: eflomal + grow-diag-final-and, Pharaoh import, eflomal priors
               estimated once and applied to other text; :mod:`.projection` projects answers
``parse``      :mod:`.parse`: dependency arcs (Stanza or CoNLL-U) and "same word" edges
``binarize``   :mod:`.encode` + :mod:`.binarize`: SentencePiece + fairseq dictionary, windows,
               answer positions, graph edges; :mod:`.parallel` for line-aligned text
=============  ================================================================================

The pipeline as a library:

* :mod:`.config` -- :class:`~.config.PipelineConfig`, the one configuration, checked once;
* :mod:`.pipeline` -- :func:`~.pipeline.run_pipeline`, the chain over every split;
* :mod:`.stages` -- ``run_<stage>(paths, cfg)``, one function per stage and split, reading and
  writing the stage files of :mod:`.workdir` (layout, resumable JSONL, no torch);
* :mod:`.unit` -- :class:`~.unit.Unit`, the text pair the stages process;
* :mod:`.units` -- the stages on units in memory, which :mod:`.stages` wraps;
* :mod:`.in_memory` -- the chain in memory (the hub);
* :mod:`.runner` -- summaries, progress and worker processes;
* :mod:`.outlock` -- one run per ``--out`` at a time, a killed run's temporary files removed;
* :mod:`.child_process` -- eflomal and the workers die with the run; :mod:`.eflomal_run` --
  one seeded eflomal run;
* :mod:`.cli` -- the command: argparse into a config, then :func:`~.pipeline.run_pipeline`.

This ``__init__`` imports nothing, so that the readers and writers import without torch.
"""
