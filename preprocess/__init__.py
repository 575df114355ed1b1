"""grafusion-preprocess: the data pipeline of fairseq-grafusion (DESIGN "Data formats").

Stages, one module per concept:

=============  ================================================================================
``pairs``      :mod:`.qa_io` + :mod:`.pairing` (+ :mod:`.translate`): pair English and target
               SQuAD files by question id, translating a missing side with a fairseq MT model
``words``      :mod:`.wordseg`: sentences and words with character offsets (Stanza or rules)
``align``      :mod:`.align`: eflomal + grow-diag-final-and, or imported Pharaoh alignments;
               :mod:`.projection` projects answers a translation lacks
``parse``      :mod:`.parse`: dependency arcs (Stanza or CoNLL-U) and "same word" edges
``binarize``   :mod:`.encode` + :mod:`.binarize`: SentencePiece + fairseq dictionary, windows,
               answer positions, graph edges -> :class:`fairseq_grafusion.data.PairWriter`
``parallel``   :mod:`.parallel`: the same chain for line-aligned parallel text
=============  ================================================================================

:mod:`.workdir` holds the resumable, atomically written JSONL files between stages and
:mod:`.cli` the command line.
"""
