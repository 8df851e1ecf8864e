"""``run_server``: load a model and serve it with uvicorn (one process, or ``workers`` processes on one port).

With ``workers > 1`` uvicorn starts that many processes; each builds its app with :func:`app_from_environment` from
``ECGCNN_SERVE_*`` variables set here (the model is loaded once up front, so that a bad model file fails before any
process starts). Each process runs model code on its own single inference thread, so workers scale over cores.
"""

from __future__ import annotations

import os

from ..core.errors import EcgcnnError, optional_import
from ..runtimes import load_predictor
from ..runtimes.pretrained import DEFAULT_MODEL
from .app import DEFAULT_MAX_BEATS, DEFAULT_MAX_BYTES, create_app

ENV_MODEL = "ECGCNN_SERVE_MODEL"
ENV_MAX_BEATS = "ECGCNN_SERVE_MAX_BEATS"
ENV_MAX_BYTES = "ECGCNN_SERVE_MAX_BYTES"
ENV_THREADS = "ECGCNN_SERVE_THREADS"


def app_from_environment():
    """The app factory of each worker process (``uvicorn ... --factory``)."""
    threads = os.environ.get(ENV_THREADS)
    predictor = load_predictor(os.environ.get(ENV_MODEL, DEFAULT_MODEL), threads=int(threads) if threads else None)
    return create_app(predictor, max_beats=int(os.environ.get(ENV_MAX_BEATS, DEFAULT_MAX_BEATS)),
                      max_bytes=int(os.environ.get(ENV_MAX_BYTES, DEFAULT_MAX_BYTES)))


def run_server(model: str = DEFAULT_MODEL, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
               max_beats: int = DEFAULT_MAX_BEATS, max_bytes: int = DEFAULT_MAX_BYTES, threads: int | None = 1,
               log_level: str = "info") -> None:
    """Serve ``model`` (a file or ``pretrained:NAME[.onnx|.tflite]``) until interrupted (Ctrl-C, SIGTERM).

    ``threads``: intra-op threads of the runtime per process (1 suits single beats and one worker per core).
    """
    uvicorn = optional_import("uvicorn", "serve")
    if workers < 1:
        raise EcgcnnError(f"--workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise EcgcnnError(f"--port must be 0..65535, got {port}")
    predictor = load_predictor(model, threads=threads)
    options = dict(host=host, port=port, log_level=log_level, access_log=False, http="auto", loop="auto",
                   server_header=False)
    if workers == 1:
        uvicorn.run(create_app(predictor, max_beats=max_beats, max_bytes=max_bytes), **options)
        return
    os.environ[ENV_MODEL] = str(predictor.path)
    os.environ[ENV_MAX_BEATS] = str(max_beats)
    os.environ[ENV_MAX_BYTES] = str(max_bytes)
    if threads is not None:
        os.environ[ENV_THREADS] = str(threads)
    del predictor
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)
