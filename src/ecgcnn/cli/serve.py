"""``ecgcnn serve``: a model over HTTP.

    ecgcnn serve                                   # pretrained:edge on http://127.0.0.1:8000
    ecgcnn serve pretrained:edge.tflite --workers 2 --port 8080
"""

from __future__ import annotations

import argparse

from ..core.validation import argparse_type
from ..runtimes.pretrained import DEFAULT_MODEL, default_model_help
from ..serve import run_server
from ..serve.app import DEFAULT_MAX_BEATS, DEFAULT_MAX_BYTES
from ._parser import POSITIVE_INT

_PORT = argparse_type(int, low=0, high=65535)
EXAMPLES = ("ecgcnn serve pretrained:edge.tflite --port 8000 --workers 2",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", nargs="?", default=DEFAULT_MODEL,
                        help="model file (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite] ("
                             + default_model_help() + ")")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface, e.g. inside a container)")
    parser.add_argument("--port", type=_PORT, default=8000, help="TCP port (0: any free port)")
    parser.add_argument("--workers", type=POSITIVE_INT, default=1,
                        help="server processes; each runs the model on one thread (about one per core)")
    parser.add_argument("--max-beats", type=POSITIVE_INT, default=DEFAULT_MAX_BEATS,
                        help="most beats in one request (more: 413)")
    parser.add_argument("--max-bytes", type=POSITIVE_INT, default=DEFAULT_MAX_BYTES,
                        help="largest request body in bytes (larger: 413)")


def run(args) -> int:
    run_server(args.model_file, host=args.host, port=args.port, workers=args.workers, max_beats=args.max_beats,
               max_bytes=args.max_bytes)
    return 0
