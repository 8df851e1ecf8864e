"""Multi-step jobs that only the command line calls: ``pipeline``, ``ablation``, ``pack``."""
