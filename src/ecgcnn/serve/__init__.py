"""HTTP inference service: ``create_app`` (the Starlette app for a predictor) and ``run_server`` (uvicorn).

Modules: ``payload`` (request bodies → beats, predictions → JSON; no framework), ``batching`` (inference on one
worker thread, micro-batching concurrent single-beat requests), ``openapi`` (the API document), ``app`` (routes),
``server`` (uvicorn, worker processes), ``static/`` (the page at ``/``). Starlette and uvicorn are the optional
``serve`` extra; they are imported only when an app is built or a server started.
"""

from .app import create_app
from .server import run_server

__all__ = ["create_app", "run_server"]
