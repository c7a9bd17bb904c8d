"""Sequential recommenders: GRU4Rec (``gru4rec``), SASRec (``sasrec``), BERT4Rec (``bert4rec``).

All three train on per-user time-ordered sequences (``TrainFormat.SEQUENCES``),
need timestamps, and score from ``context["seq"]``, the user's most recent
``max_seq_len`` items. Evaluate them with ``split=leave_one_out``.
"""
