"""The HTTP app (Starlette): health, model card, prediction, OpenAPI and a small page to try the model.

=====================  ============================================================================================
``GET /healthz``       ``{"status": "ok", "model", "format", "sha256"}``
``GET /v1/model``      labels, class names, input length, preprocessing, quantisation, recorded metrics, limits
``POST /v1/predict``   JSON ``{"beats": [[140 numbers], ...]}`` or a ``text/csv`` body (what ``ecgcnn predict``
                       reads); ``?resample=true`` resamples other lengths, ``?missing=fill`` fills missing
                       values (JSON ``null``, empty CSV cells) as ``predict --missing fill`` → ``{"labels",
                       "class_names", "probabilities", "probability_labels"}``
``GET /openapi.json``  the OpenAPI 3.1 document (also at ``/schema``, Starlette's usual path)
``GET /``              the page (``static/``: plain HTML, CSS and JavaScript shipped in the package, no CDN)
=====================  ============================================================================================

Refusals are 4xx with ``{"error": "<one sentence>"}`` (see :mod:`ecgcnn.serve.payload`); an unexpected failure is a
500 with the same shape, and the server goes on serving. Model code never runs on the event loop: see
:mod:`ecgcnn.serve.batching`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import EcgcnnError, optional_import
from ..core.fileio import file_sha256
from ..runtimes.pretrained import shipped_entry
from .batching import InferenceQueue
from .openapi import openapi_document
from .payload import RequestError, check_content_type, parse_beats, prediction_body

if TYPE_CHECKING:  # Starlette is the optional 'serve' extra: imported when an app is built
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_BEATS = 1000
# 1,000 beats of 140 values as JSON or CSV take about 2.5-3 MB.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
# Bodies larger than this are parsed on a worker thread rather than on the event loop.
_INLINE_PARSE_BYTES = 64 * 1024
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise RequestError(400, f"query parameter {name}={value!r} is not a boolean (use true or false)")


def _missing(request: Request) -> bool:
    """``?missing=fill``: missing values are made whole (as ``ecgcnn predict --missing fill``); ``refuse`` (the
    default) keeps them an error."""
    value = request.query_params.get("missing")
    if value is None or value.lower() == "refuse":
        return False
    if value.lower() == "fill":
        return True
    raise RequestError(400, f"query parameter missing={value!r} is not refuse or fill")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestError(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > max_bytes:
            raise RequestError(413, f"request body too large: {int(declared)} bytes, at most {max_bytes}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise RequestError(413, f"request body too large: more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def model_card(predictor, sha256: str, max_beats: int, max_bytes: int) -> dict:
    """What /v1/model says. Metrics only where they were measured on this very file: a checkpoint's own, or the
    manifest's for a shipped file (an exported file does not inherit its checkpoint's)."""
    metadata = predictor.metadata
    shipped = shipped_entry(predictor.path) if predictor.path is not None else None
    metrics = ({"test": shipped["test"], **({"stress": shipped["stress"]} if shipped.get("stress") else {}),
                "measured_by": "ecgcnn pretrained pack"} if shipped else metadata.get("metrics") or {})
    test = metrics.get("test") or {}
    return {
        "model": predictor.name,
        "architecture": predictor.model_name,
        "format": predictor.format,
        "file": predictor.path.name if predictor.path is not None else None,
        "sha256": sha256,
        "labels": predictor.labels,
        "class_names": predictor.class_names,
        "input_length": predictor.input_length,
        "preprocessing": metadata.get("preprocessing"),
        "quantize": metadata.get("quantize"),
        "quantization": metadata.get("quantization"),
        "metrics": metrics or None,
        "per_class_recall": test.get("per_class_recall") or metadata.get("per_class_recall"),
        "limits": {"max_beats": max_beats, "max_bytes": max_bytes},
    }


def create_app(predictor, max_beats: int = DEFAULT_MAX_BEATS, max_bytes: int = DEFAULT_MAX_BYTES,
               micro_batch: bool = True, max_batch: int = 64) -> Starlette:
    """The ASGI app serving ``predictor`` (any :class:`ecgcnn.runtimes.Predictor`)."""
    starlette = {name: optional_import(f"starlette.{name}", "serve")
                 for name in ("applications", "concurrency", "exceptions", "responses", "routing", "staticfiles")}
    Starlette = starlette["applications"].Starlette
    run_in_threadpool = starlette["concurrency"].run_in_threadpool
    HTTPException = starlette["exceptions"].HTTPException
    FileResponse, JSONResponse = starlette["responses"].FileResponse, starlette["responses"].JSONResponse
    Mount, Route = starlette["routing"].Mount, starlette["routing"].Route
    StaticFiles = starlette["staticfiles"].StaticFiles
    if max_beats < 1 or max_bytes < 1:
        raise EcgcnnError(f"max_beats and max_bytes must be positive, got {max_beats} and {max_bytes}")
    queue = InferenceQueue(predictor, max_batch=max_batch, micro_batch=micro_batch)
    sha256 = file_sha256(predictor.path) if predictor.path is not None else None
    health = {"status": "ok", "model": predictor.name, "format": predictor.format, "sha256": sha256}
    card = model_card(predictor, sha256, max_beats, max_bytes)
    document = openapi_document(predictor, max_beats, max_bytes)
    length = predictor.input_length

    def error_response(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(health)

    async def model(request: Request) -> JSONResponse:
        return JSONResponse(card)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def predict(request: Request) -> JSONResponse:
        try:
            kind = check_content_type(request.headers.get("content-type"))
            resample, fill = _flag(request, "resample"), _missing(request)
            body = await read_body(request, max_bytes)
            if kind == "json" and len(body) <= _INLINE_PARSE_BYTES:
                beats = parse_beats(kind, body, length, resample, max_beats, fill)
            else:
                beats = await run_in_threadpool(parse_beats, kind, body, length, resample, max_beats, fill)
            probabilities = await queue.predict(beats)
        except RequestError as exc:
            return error_response(exc.status, str(exc))
        except EcgcnnError as exc:  # the predictor's own checks (shape, finite values)
            return error_response(422, str(exc))
        return JSONResponse(prediction_body(predictor, probabilities, beats))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path} (see /openapi.json)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error ({type(exc).__name__}); the server keeps running")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            queue.close()

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/model", model, methods=["GET"]),
        Route("/v1/predict", predict, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/schema", openapi, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.predictor = predictor
    app.state.queue = queue
    return app
