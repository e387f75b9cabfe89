"""``genrescope learn``: a genre model learnt from the genres a library's files already carry.

The pipeline, one module per concern (every public function has typed arguments, so other
tools can call any stage):

* :mod:`~genrescope.learn.labels`: genres from tags (ID3, Vorbis, MP4), folders or a CSV
  -> :class:`~genrescope.learn.labels.Track` (``genres``, ``artist``, ``album``, ``group``);
* :mod:`~genrescope.learn.taxonomy`: spellings merged, aliases, rare labels
  (:func:`~genrescope.learn.taxonomy.build_taxonomy`);
* :mod:`~genrescope.learn.features`: cached window embeddings of both musicnn taggers
  (:func:`~genrescope.learn.features.embed_files`) pooled as mean + std
  (:func:`~genrescope.learn.features.pool`);
* :mod:`~genrescope.learn.learner`: nested, artist-grouped CV of calibrated logistic / RBF-kernel
  heads (:func:`~genrescope.learn.learner.learn_head` on any (N, F) features);
* :mod:`~genrescope.learn.thresholds`: per-label confidence thresholds for a target precision;
* :mod:`~genrescope.learn.report`: the taxonomy table and the figures;
* :mod:`~genrescope.learn.model_dir`: the model folder (``save_model``, ``load_head``,
  ``read_config``), its graphs written by :mod:`~genrescope.learn.onnx_head`;
* :mod:`~genrescope.learn.command`: the whole job (:func:`~genrescope.learn.command.learn_library`,
  :func:`~genrescope.learn.command.learn_tracks`) and the CLI handler.
"""
