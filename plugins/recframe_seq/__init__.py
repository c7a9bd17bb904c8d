"""Sequential recommenders: GRU4Rec (``gru4rec``), SASRec (``sasrec``), BERT4Rec
(``bert4rec``), HSTU (``hstu``).

All four train on per-user time-ordered sequences (``TrainFormat.SEQUENCES``),
need timestamps, and score from ``context["seq"]``, the user's most recent
``max_seq_len`` items. Evaluate them with ``split=leave_one_out``. Their loss is
one shared option, ``model.loss`` (full or sampled softmax; ``_loss.py``).
"""
