"""Whole recordings in, labelled beats out (``ecgcnn annotate``), one module per job: ``readers`` (WFDB, text,
``.npy``), ``detection`` (R-peaks, polarity, refinement), ``windows`` (the ECG5000 convention), ``pipeline``
(``annotate_signal``), ``writers`` (CSV, JSON, summary lines) and ``plot`` (strip). Why each choice:
docs/annotate.md."""
