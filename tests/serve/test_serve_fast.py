"""The HTTP app in-process (the fast tier, and what ``make mutation`` runs serve/ against): the real Starlette app
driven through its ASGI interface by a small client written here, so that every line of the app runs in the test's
own process. ``test_serve.py`` does the same over real HTTP with uvicorn in a subprocess.

The oracle for predictions is independent of ecgcnn's runtimes: ONNX Runtime called directly on the shipped
``edge.onnx``, with the z-normalisation, resampling and softmax written out here from their documented definitions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import threading
import time

import numpy as np
import pytest

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.provenance import usable_cores
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import PRETRAINED_DIR

pytest.importorskip("starlette")
ort = pytest.importorskip("onnxruntime")

from ecgcnn.serve import app as app_module  # noqa: E402 - after the optional-dependency skip
from ecgcnn.serve import server as server_module  # noqa: E402
from ecgcnn.serve.batching import InferenceQueue  # noqa: E402

pytestmark = pytest.mark.fast
MODEL_FILE = PRETRAINED_DIR / "edge.onnx"
MAX_BEATS, MAX_BYTES = 6, 20_000


# ------------------------------------------------------------------------------------------------ the ASGI client

def call(app, method: str, path: str, body: bytes = b"", content_type: str | None = None,
         headers: dict | None = None, chunks: int = 1) -> tuple[int, object, dict]:
    """(status, JSON body or text, headers) of one request sent straight to the ASGI ``app``; the body arrives in
    ``chunks`` messages (a streamed upload)."""
    path, _, query = path.partition("?")
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if content_type is not None:
        raw_headers.append((b"content-type", content_type.encode()))
    if chunks == 1 and not any(k == b"content-length" for k, _ in raw_headers):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": raw_headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    size = max(1, -(-len(body) // chunks))
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                for i, part in enumerate(parts)]
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays connected until the response is complete

    async def send(message):
        sent.append(message)

    try:
        asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=60))
    except Exception:  # Starlette re-raises an unexpected error after its 500 answer, for the server to log it
        if not any(m["type"] == "http.response.start" for m in sent):
            raise
    start = next(m for m in sent if m["type"] == "http.response.start")
    response_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if response_headers.get("content-type", "").startswith("application/json"):
        return start["status"], json.loads(data), response_headers
    return start["status"], data.decode(), response_headers


def post_json(app, beats, query: str = "") -> tuple[int, dict]:
    body = json.dumps({"beats": np.asarray(beats).tolist()}).encode()
    status, payload, _ = call(app, "POST", "/v1/predict" + query, body, "application/json")
    return status, payload


# ------------------------------------------------------------------------------------------- the independent oracle

def reference_proba(beats) -> np.ndarray:
    """ONNX Runtime on edge.onnx directly: per-beat z-normalisation (sample std, ddof 1; a flat beat maps to
    zeros), the graph's logits, softmax in float64."""
    x = np.asarray(beats, dtype=np.float64)
    std = x.std(axis=1, ddof=1, keepdims=True)
    z = ((x - x.mean(axis=1, keepdims=True)) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)
    session = ort.InferenceSession(str(MODEL_FILE), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: z[:, None, :]})[0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def linear_resample(beats, length: int) -> np.ndarray:
    """Each beat's points placed evenly over [0, 1] and read at ``length`` evenly spaced points, by hand."""
    out = []
    for row in np.asarray(beats, dtype=np.float64):
        where = np.arange(length) * (len(row) - 1) / (length - 1)
        left = np.minimum(np.floor(where).astype(int), len(row) - 2)
        frac = where - left
        out.append(row[left] * (1 - frac) + row[left + 1] * frac)
    return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((PRETRAINED_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(MODEL_FILE)


@pytest.fixture
def app(predictor):
    # A new app per test (not per module): building it runs create_app's own code, and a mutation run selects the
    # tests that run a function, which for a module-scoped fixture would be the first test only.
    return app_module.create_app(predictor, max_beats=MAX_BEATS, max_bytes=MAX_BYTES)


@pytest.fixture(scope="module")
def beats(dataset):
    picks = np.concatenate([np.flatnonzero(dataset.index_test == c)[:1] for c in range(5)])
    return dataset.x_test[picks].astype(np.float64) * 3.0 + 1.5  # another scale and offset: z-normalised again


def assert_answer(payload: dict, expected: np.ndarray, manifest) -> None:
    got = np.asarray(payload["probabilities"], dtype=np.float64)
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)
    labels = [1, 2, 3, 4, 5]
    assert payload["probability_labels"] == labels
    assert payload["labels"] == [labels[k] for k in expected.argmax(axis=1)]
    names = _file_metadata(MODEL_FILE)["class_names"]
    assert len(names) == 5 and payload["class_names"] == [names[k] for k in expected.argmax(axis=1)]


# ------------------------------------------------------------------------------------------------------ endpoints

def test_health_and_model_card(app, manifest):
    digest = hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()
    status, health, _ = call(app, "GET", "/healthz")
    assert status == 200 and health == {"status": "ok", "model": "edge", "format": "onnx", "sha256": digest}
    status, card, _ = call(app, "GET", "/v1/model")
    entry = next(e for e in manifest["models"]["edge"]["files"].values() if e["file"] == "edge.onnx")
    assert status == 200 and entry["sha256"] == digest
    assert card["model"] == "edge" and card["format"] == "onnx" and card["file"] == "edge.onnx"
    assert card["sha256"] == digest and card["labels"] == [1, 2, 3, 4, 5] and card["input_length"] == 140
    assert card["metrics"] == {"test": entry["test"], "stress": entry["stress"],
                               "measured_by": "ecgcnn pretrained pack"}
    assert card["per_class_recall"] == entry["test"]["per_class_recall"]
    assert card["limits"] == {"max_beats": MAX_BEATS, "max_bytes": MAX_BYTES}
    assert card["preprocessing"]["ddof"] == 1 and card["architecture"] == manifest["models"]["edge"]["settings"][
        "model"]


def _file_metadata(path) -> dict:
    """The ecgcnn metadata JSON of an ONNX file, read with the onnx package (not the project's reader)."""
    onnx = pytest.importorskip("onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props["ecgcnn"])


def test_a_file_that_is_not_shipped_carries_its_own_metadata_figures(tmp_path):
    """A copy with other bytes is not the shipped file: the card shows the figures written into the copy's own
    metadata here (or none), never the manifest's."""
    onnx = pytest.importorskip("onnx")
    figures = {"test": {"accuracy": 0.5, "per_class_recall": [1.0, 0.25, 0.0, 0.0, 0.5]}}
    for name, metrics in (("mine.onnx", figures), ("bare.onnx", None)):
        model = onnx.load(str(MODEL_FILE))
        model.doc_string = "a copy"  # other bytes even where the metadata stays the same
        for prop in model.metadata_props:
            if prop.key == "ecgcnn":
                metadata = json.loads(prop.value)
                metadata.pop("metrics", None)
                metadata.pop("per_class_recall", None)
                if metrics is not None:
                    metadata["metrics"] = metrics
                prop.value = json.dumps(metadata)
        onnx.save(model, str(tmp_path / name))
        card = app_module.model_card(load_predictor(tmp_path / name), "x", 3, 4)
        assert card["file"] == name and card["sha256"] == "x"
        assert card["metrics"] == metrics
        assert card["per_class_recall"] == (None if metrics is None else [1.0, 0.25, 0.0, 0.0, 0.5])
    # an older file: recall beside the metrics rather than inside them, and how it was quantised
    model = onnx.load(str(MODEL_FILE))
    model.doc_string = "an older copy"
    for prop in model.metadata_props:
        if prop.key == "ecgcnn":
            metadata = json.loads(prop.value)
            metadata.update(metrics={"test": {"accuracy": 0.75}}, per_class_recall=[0.5, 0.5, 0.5, 0.5, 1.0],
                            quantize="dynamic", quantization={"weights": "int8"})
            prop.value = json.dumps(metadata)
    onnx.save(model, str(tmp_path / "older.onnx"))
    card = app_module.model_card(load_predictor(tmp_path / "older.onnx"), "x", 3, 4)
    assert card["metrics"] == {"test": {"accuracy": 0.75}} and card["per_class_recall"] == [0.5, 0.5, 0.5, 0.5, 1.0]
    assert card["quantize"] == "dynamic" and card["quantization"] == {"weights": "int8"}


def test_the_servers_shutdown_closes_the_inference_queue(app):
    """ASGI lifespan: start-up, then shut-down; afterwards the queue takes no more work."""
    messages, sent = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}], []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    app.state.queue._executor.submit(int).result()  # open before
    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(RuntimeError, match="after shutdown"):
        app.state.queue._executor.submit(int)


def test_predict_json_and_csv_equal_the_reference(app, beats, manifest):
    expected = reference_proba(beats)
    status, payload = post_json(app, beats)
    assert status == 200, payload
    assert_answer(payload, expected, manifest)
    assert "warnings" not in payload
    csv = "\n".join(",".join(repr(v) for v in row) for row in beats.tolist()).encode()
    for content_type in ("text/csv", "text/csv; charset=utf-8", "application/csv", "TEXT/CSV"):
        status, payload, _ = call(app, "POST", "/v1/predict", csv, content_type)
        assert status == 200, payload
        assert_answer(payload, expected, manifest)
    status, payload, _ = call(app, "POST", "/v1/predict", json.dumps({"beats": beats.tolist()}).encode(),
                              "application/problem+json")  # any +json type is JSON
    assert status == 200 and payload["labels"] == [1 + k for k in expected.argmax(axis=1)]


def test_a_large_json_body_is_parsed_off_the_loop_with_the_same_answer(dataset, manifest):
    x = dataset.x_test[:120].astype(np.float64)
    body = json.dumps({"beats": x.tolist()}).encode()
    assert len(body) > app_module._INLINE_PARSE_BYTES
    app = app_module.create_app(load_predictor(MODEL_FILE))
    status, payload, _ = call(app, "POST", "/v1/predict", body, "application/json")
    assert status == 200
    assert_answer(payload, reference_proba(x), manifest)
    assert call(app, "GET", "/v1/model")[1]["limits"] == {"max_beats": 1000, "max_bytes": 4 * 1024 * 1024}


def test_resample_flag_in_any_spelling(app, beats, manifest):
    short = linear_resample(beats, 90).astype(np.float64)
    expected = reference_proba(linear_resample(short, 140))
    for query in ("?resample=true", "?resample=TRUE", "?resample=Yes", "?resample=on", "?resample=1"):
        status, payload = post_json(app, short, query)
        assert status == 200, (query, payload)
        assert_answer(payload, expected, manifest)
    for query in ("", "?resample=false", "?resample=No", "?resample=OFF", "?resample=0", "?resample="):
        status, payload = post_json(app, short, query)
        assert status == 422 and payload == {"error": "beat 1 has 90 values, expected 140 (add ?resample=true to "
                                                      "resample beats of another length)"}, query
    status, payload = post_json(app, short, "?resample=maybe")
    assert status == 400 and payload == {"error": "query parameter resample='maybe' is not a boolean (use true or "
                                                  "false)"}
    csv = "\n".join(",".join(repr(v) for v in row) for row in short.tolist()).encode()
    status, payload, _ = call(app, "POST", "/v1/predict?resample=yes", csv, "text/csv")
    assert status == 200
    assert_answer(payload, expected, manifest)
    status, payload, _ = call(app, "POST", "/v1/predict", csv, "text/csv")
    assert status == 422 and "?resample=true" in payload["error"] and "--resample" not in payload["error"]
    status, payload = post_json(app, [[1.0]], "?resample=true")
    assert status == 422 and payload == {"error": "beat 1 has 1 value(s): cannot resample fewer than 2"}


def _with_gaps(beat: np.ndarray) -> tuple[list, np.ndarray]:
    """The beat with samples 40-59 missing and its expected fill: the gap bridged by a straight line between the
    values around it (written here; the ends are present, so nothing is stretched)."""
    row = [float(v) for v in beat]
    left, right = row[39], row[60]
    expected = np.array(row)
    expected[40:60] = [left + (right - left) * (k + 1) / 21 for k in range(20)]
    return [None if 40 <= k < 60 else v for k, v in enumerate(row)], expected


def test_missing_values_are_filled_on_request_and_refused_otherwise(app, beats, manifest):
    """?missing=fill: JSON null (and NaN) and empty CSV cells are made whole as 'ecgcnn predict --missing fill' makes
    them; the answer is the reference model's on the beats filled by hand. Without it, or with missing=refuse, the
    refusal names the option."""
    rows, filled = zip(*(_with_gaps(beat) for beat in beats), strict=True)
    expected = reference_proba(np.asarray(filled))
    body = json.dumps({"beats": list(rows)}).encode()
    for query in ("?missing=fill", "?missing=FILL", "?resample=true&missing=fill"):
        status, payload, _ = call(app, "POST", "/v1/predict" + query, body, "application/json")
        assert status == 200, (query, payload)
        assert_answer(payload, expected, manifest)
    nan_body = body.replace(b"null", b"NaN")  # Python's json writes and reads NaN; a missing value too
    status, payload, _ = call(app, "POST", "/v1/predict?missing=fill", nan_body, "application/json")
    assert status == 200
    assert_answer(payload, expected, manifest)
    csv = "\n".join(",".join("" if v is None else repr(v) for v in row) for row in rows).encode()
    status, payload, _ = call(app, "POST", "/v1/predict?missing=fill", csv, "text/csv")
    assert status == 200
    assert_answer(payload, expected, manifest)
    for query in ("", "?missing=refuse"):
        status, payload, _ = call(app, "POST", "/v1/predict" + query, body, "application/json")
        assert status == 422 and payload == {"error": "beat 1 is not a list of numbers (null for a missing value "
                                                      "needs ?missing=fill)"}
        status, payload, _ = call(app, "POST", "/v1/predict" + query, nan_body, "application/json")
        assert status == 422 and payload == {"error": "beat 1 contains NaN or infinite values (NaN for a missing "
                                                      "value needs ?missing=fill)"}
    status, payload, _ = call(app, "POST", "/v1/predict?missing=maybe", body, "application/json")
    assert status == 400 and payload == {"error": "query parameter missing='maybe' is not refuse or fill"}
    few = json.dumps({"beats": [[1.0] + [None] * 139]}).encode()
    status, payload, _ = call(app, "POST", "/v1/predict?missing=fill", few, "application/json")
    assert status == 422 and payload == {"error": "beat 1 has fewer than 2 values, the rest missing"}
    inf = json.dumps({"beats": [[1e400] + [0.5] * 139]}).encode()  # infinity is never a missing value
    status, payload, _ = call(app, "POST", "/v1/predict?missing=fill", inf, "application/json")
    assert status == 422 and payload == {"error": "beat 1 contains NaN or infinite values"}


def test_a_shorter_beat_with_missing_ends_is_stretched_then_resampled(app, beats, manifest):
    """Missing values at the ends: the span between the first and the last value is stretched to the row's width
    (90 here), then ?resample=true brings it to the model's 140; both steps by hand."""
    short = linear_resample(beats[:1], 90).astype(np.float64)[0]
    row = [None] * 10 + [float(v) for v in short[10:80]] + [None] * 10
    stretched = np.interp(np.linspace(0.0, 69.0, 90), np.arange(70), short[10:80])
    expected = reference_proba(linear_resample(stretched[None, :], 140))
    status, payload, _ = call(app, "POST", "/v1/predict?missing=fill&resample=true",
                              json.dumps({"beats": [row]}).encode(), "application/json")
    assert status == 200, payload
    assert_answer(payload, expected, manifest)


def test_flat_and_spiky_beats_are_answered_with_warnings(app, beats):
    spiky = beats[1].copy()
    spiky[70] += 1e4
    status, payload = post_json(app, [beats[0], np.full(140, 2.0), spiky])
    assert status == 200
    assert payload["warnings"] == [
        "beat 2: constant values cannot be z-normalised; the prediction is meaningless",
        "beat 3: a spike or artefact (a value far outside the beat's shape); the prediction is unreliable"]
    np.testing.assert_allclose(payload["probabilities"][1], reference_proba(np.zeros((1, 140)))[0], atol=2e-6)


# ---------------------------------------------------------------------------------------------------- refusals

ROW = [0.5] * 139 + [1.0]
REFUSALS = [
    # (id, body, content type, status, the whole message)
    ("no content type", b"{}", None, 415,
     "unsupported content type no content type: send application/json ({\"beats\": [[...], ...]}) or text/csv (one "
     "beat per row)"),
    ("xml", b"<beats/>", "application/xml", 415,
     "unsupported content type 'application/xml': send application/json ({\"beats\": [[...], ...]}) or text/csv "
     "(one beat per row)"),
    ("empty json", b"  \n", "application/json", 400, "the request body is empty"),
    ("empty csv", b"\n", "text/csv", 422, "the request body is empty"),
    ("not utf-8", b'{"beats": "\xff"}', "application/json", 400, "the request body is not UTF-8 text"),
    ("bad json", b'{"beats": [[1,\n 2', "application/json", 400,
     "the request body is not valid JSON (Expecting ',' delimiter at line 2, column 3)"),  # json.loads: line 2, col 3
    ("a list", b"[[1, 2]]", "application/json", 422,
     'expected a JSON object with a "beats" list, e.g. {"beats": [[140 numbers]]}'),
    ("no beats key", b'{"beat": []}', "application/json", 422,
     'expected a JSON object with a "beats" list, e.g. {"beats": [[140 numbers]]}'),
    ("beats not a list", b'{"beats": {"a": 1}}', "application/json", 422,
     '"beats" must be a list of beats (each a list of numbers)'),
    ("no beats", b'{"beats": []}', "application/json", 422, 'no beats: "beats" is an empty list'),
    ("too many", json.dumps({"beats": [ROW] * 7}).encode(), "application/json", 413,
     "too many beats: 7 in one request, at most 6"),
    ("too many csv", ("\n".join([",".join(map(str, ROW))] * 7)).encode(), "text/csv", 413,
     "too many beats: 7 in one request, at most 6"),
    ("strings", json.dumps({"beats": [ROW, ["1"] * 140]}).encode(), "application/json", 422,
     "beat 2 is not a list of numbers"),
    ("booleans", json.dumps({"beats": [[True] * 140]}).encode(), "application/json", 422,
     "beat 1 is not a list of numbers"),
    ("a number", json.dumps({"beats": [ROW, ROW, 3]}).encode(), "application/json", 422,
     "beat 3 is not a list of numbers"),
    ("NaN", json.dumps({"beats": [ROW, [float("nan")] * 140]}).encode(), "application/json", 422,
     "beat 2 contains NaN or infinite values (NaN for a missing value needs ?missing=fill)"),
    ("overflow", b'{"beats": [[1e400' + b", 0" * 139 + b"]]}", "application/json", 422,
     "beat 1 contains NaN or infinite values"),
    ("huge integer", b'{"beats": [[' + b"9" * 400 + b", 0" * 139 + b"]]}", "application/json", 422,
     "beat 1 contains NaN or infinite values"),
    ("short", json.dumps({"beats": [ROW[:100]]}).encode(), "application/json", 422,
     "beat 1 has 100 values, expected 140 (add ?resample=true to resample beats of another length)"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[case[0] for case in REFUSALS])
def test_refusals_are_one_sentence_and_the_app_goes_on(app, beats, case):
    _, body, content_type, status, message = case
    got, payload, headers = call(app, "POST", "/v1/predict", body, content_type)
    assert (got, payload) == (status, {"error": message})
    assert headers["content-type"].startswith("application/json")
    assert post_json(app, beats[:1])[0] == 200


def test_body_limits(app):
    big = b"{" + b" " * MAX_BYTES + b"}"
    status, payload, _ = call(app, "POST", "/v1/predict", big, "application/json")
    assert (status, payload) == (413, {"error": f"request body too large: {len(big)} bytes, at most {MAX_BYTES}"})
    status, payload, _ = call(app, "POST", "/v1/predict", big, "application/json", chunks=4,
                              headers={"transfer-encoding": "chunked"})
    assert (status, payload) == (413, {"error": f"request body too large: more than {MAX_BYTES} bytes"})
    exact = json.dumps({"beats": [ROW]}).encode()
    exact += b" " * (MAX_BYTES - len(exact))  # exactly at the limit: accepted, streamed or not
    assert call(app, "POST", "/v1/predict", exact, "application/json")[0] == 200
    assert call(app, "POST", "/v1/predict", exact, "application/json", chunks=3)[0] == 200
    for declared in ("12x", "-5", " "):
        status, payload, _ = call(app, "POST", "/v1/predict", b"{}", "application/json",
                                  headers={"content-length": declared})
        assert (status, payload) == (400, {"error": f"invalid Content-Length header {declared!r}"})


def test_unknown_paths_and_methods(app):
    assert call(app, "GET", "/v2/predict")[:2] == (404, {"error": "no such endpoint: /v2/predict (see "
                                                                  "/openapi.json)"})
    assert call(app, "GET", "/v1/predict")[:2] == (405, {"error": "method GET is not allowed on /v1/predict"})
    assert call(app, "DELETE", "/healthz")[:2] == (405, {"error": "method DELETE is not allowed on /healthz"})
    # the answer still says which methods are allowed (the exception's headers are kept)
    assert set(call(app, "GET", "/v1/predict")[2]["allow"].split(", ")) == {"POST"}
    assert set(call(app, "DELETE", "/healthz")[2]["allow"].split(", ")) == {"GET", "HEAD"}


def test_openapi_page_and_static_files(app):
    status, document, _ = call(app, "GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert call(app, "GET", "/schema")[1] == document
    status, page, headers = call(app, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert page == (app_module.STATIC_DIR / "index.html").read_text()
    status, script, _ = call(app, "GET", "/static/app.js")
    assert status == 200 and script == (app_module.STATIC_DIR / "app.js").read_text()


class _Failing:
    """The served model, except that a beat starting with 12345 is refused (an EcgcnnError, as a predictor refuses)
    and one starting with 666 breaks it (any other exception)."""

    def __init__(self, predictor):
        self._predictor = predictor

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict_proba(self, beats):
        first = np.asarray(beats)[:, 0]
        if np.any(first == 12345):
            raise EcgcnnError("beat 1: refused by the model")
        if np.any(first == 666):
            raise ValueError("broken")
        return self._predictor.predict_proba(beats)


def test_predictor_refusals_are_422_and_failures_500_and_the_app_goes_on(beats, manifest):
    app = app_module.create_app(_Failing(load_predictor(MODEL_FILE)))
    for first, status, message in ((12345, 422, "beat 1: refused by the model"),
                                   (666, 500, "internal error (ValueError); the server keeps running")):
        x = beats[:2].copy()
        x[0, 0] = first
        assert post_json(app, x) == (status, {"error": message})
        got, payload = post_json(app, beats[:2])
        assert got == 200
        assert_answer(payload, reference_proba(beats[:2]), manifest)


def test_create_app_refuses_limits_below_one():
    predictor = load_predictor(MODEL_FILE)
    for beats_, bytes_ in ((0, 10), (10, 0), (-1, -1)):
        with pytest.raises(EcgcnnError) as info:
            app_module.create_app(predictor, max_beats=beats_, max_bytes=bytes_)
        assert str(info.value) == f"max_beats and max_bytes must be positive, got {beats_} and {bytes_}"
    assert app_module.create_app(predictor, max_beats=1, max_bytes=1) is not None


def test_micro_batching_can_be_turned_off(beats):
    app = app_module.create_app(load_predictor(MODEL_FILE), micro_batch=False, max_batch=3)
    queue = app.state.queue
    assert isinstance(queue, InferenceQueue) and queue.micro_batch is False and queue.max_batch == 3
    assert app.state.predictor.path == MODEL_FILE
    assert InferenceQueue(None, max_batch=0).max_batch == 1


# ---------------------------------------------------------------------------------------------- the micro-batches

class _Recorder:
    """Returns each beat's first value in every column; records the size of each call."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[int] = []
        self.delay = delay

    def predict_proba(self, beats):
        time.sleep(self.delay)
        self.calls.append(len(beats))
        return np.repeat(np.asarray(beats)[:, :1], 3, axis=1).astype(np.float32)


def _run_queue(queue: InferenceQueue, requests: list[np.ndarray]):
    async def scenario():
        return await asyncio.gather(*(queue.predict(r) for r in requests), return_exceptions=True)

    try:
        return asyncio.run(scenario())
    finally:
        queue.close()


def test_single_beats_queued_behind_a_call_are_merged_up_to_max_batch():
    recorder = _Recorder(delay=0.02)
    singles = [np.full((1, 4), float(i)) for i in range(9)]
    results = _run_queue(InferenceQueue(recorder, max_batch=4), singles)
    assert [float(r[0, 0]) for r in results] == list(range(9))
    assert recorder.calls == [1, 4, 4]  # the first runs at once; the rest wait and go in batches of max_batch
    assert all(r.shape == (1, 3) for r in results)


def test_without_micro_batching_every_request_is_its_own_call():
    recorder = _Recorder(delay=0.01)
    results = _run_queue(InferenceQueue(recorder, max_batch=4, micro_batch=False),
                         [np.full((1, 4), float(i)) for i in range(5)])
    assert recorder.calls == [1] * 5 and [float(r[0, 0]) for r in results] == list(range(5))


def test_a_multi_beat_request_is_never_merged():
    recorder = _Recorder(delay=0.02)
    requests = [np.full((1, 4), 0.0), np.full((2, 4), 1.0), np.full((1, 4), 2.0), np.full((1, 4), 3.0)]
    results = _run_queue(InferenceQueue(recorder, max_batch=8), requests)
    assert recorder.calls == [1, 2, 2]  # the pair alone; the two singles behind it together
    assert [r[:, 0].tolist() for r in results] == [[0.0], [1.0, 1.0], [2.0], [3.0]]
    assert (recorder.calls, sum(recorder.calls)) == ([1, 2, 2], 5)


def test_counters_and_errors_reach_only_their_own_batch():
    class Picky(_Recorder):
        def predict_proba(self, beats):
            if np.any(np.asarray(beats)[:, 0] < 0):
                raise EcgcnnError("negative")
            return super().predict_proba(beats)

    queue = InferenceQueue(Picky(delay=0.01), max_batch=2)
    results = _run_queue(queue, [np.zeros((1, 4)), np.full((2, 4), -1.0), np.ones((3, 4))])
    assert isinstance(results[1], EcgcnnError) and str(results[1]) == "negative"
    assert results[0].shape == (1, 3) and results[2].shape == (3, 3)
    assert (queue.calls, queue.beats) == (2, 4)  # the failed call counts nothing


# ------------------------------------------------------------------------------------------------ server options

def test_run_server_passes_its_options_to_uvicorn(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    seen = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.append((app, options)))
    for name in (server_module.ENV_MODEL, server_module.ENV_MAX_BEATS, server_module.ENV_MAX_BYTES,
                 server_module.ENV_THREADS):
        monkeypatch.setenv(name, "")  # recorded, so that whatever run_server sets is undone after the test
        monkeypatch.delenv(name)
    server_module.run_server(str(MODEL_FILE), host="127.0.0.2", port=0, max_beats=7, max_bytes=99, log_level="error")
    app, options = seen.pop()
    assert options == {"host": "127.0.0.2", "port": 0, "log_level": "error", "access_log": False, "http": "auto",
                       "loop": "auto", "server_header": False}
    assert app.state.predictor.path == MODEL_FILE
    assert call(app, "GET", "/v1/model")[1]["limits"] == {"max_beats": 7, "max_bytes": 99}

    server_module.run_server(str(MODEL_FILE), port=65535, workers=3, max_beats=8, max_bytes=77, threads=2)
    target, options = seen.pop()
    assert target == "ecgcnn.serve.server:app_from_environment"
    assert options == {"factory": True, "workers": 3, "host": "127.0.0.1", "port": 65535, "log_level": "info",
                       "access_log": False, "http": "auto", "loop": "auto", "server_header": False}
    import os  # noqa: PLC0415

    assert os.environ[server_module.ENV_MODEL] == str(MODEL_FILE)
    assert (os.environ[server_module.ENV_MAX_BEATS], os.environ[server_module.ENV_MAX_BYTES],
            os.environ[server_module.ENV_THREADS]) == ("8", "77", "2")
    worker_app = server_module.app_from_environment()  # what each worker process builds from them
    assert worker_app.state.predictor.path == MODEL_FILE
    assert call(worker_app, "GET", "/v1/model")[1]["limits"] == {"max_beats": 8, "max_bytes": 77}

    monkeypatch.delenv(server_module.ENV_THREADS)
    server_module.run_server(str(MODEL_FILE), workers=2, threads=None)
    assert server_module.ENV_THREADS not in os.environ
    for kwargs, message in (({"workers": 0}, "--workers must be at least 1, got 0"),
                            ({"port": -1}, "--port must be 0..65535, got -1"),
                            ({"port": 65536}, "--port must be 0..65535, got 65536")):
        with pytest.raises(EcgcnnError) as info:
            server_module.run_server(str(MODEL_FILE), **kwargs)
        assert str(info.value) == message


# --------------------------------------------------------------------------------------------------- the document

def test_the_openapi_schemas_accept_real_answers_and_refuse_others(app, beats):
    """The document's schemas, applied with jsonschema (an independent validator) to the app's real answers and to
    instances that break each declared rule."""
    jsonschema = pytest.importorskip("jsonschema")
    document = call(app, "GET", "/openapi.json")[1]

    def valid(instance, name) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        return jsonschema.Draft202012Validator(schema).is_valid(instance)

    answer = post_json(app, beats[:2])[1]
    assert valid(answer, "Prediction") and valid(call(app, "GET", "/healthz")[1], "Health")
    assert valid(call(app, "GET", "/v1/model")[1], "Model")
    assert valid(post_json(app, [])[1], "Error") and not valid({"error": "x", "more": 1}, "Error")
    assert not valid({}, "Error") and not valid({"error": 3}, "Error")
    row = [0.0] * 140
    assert valid({"beats": [row] * MAX_BEATS}, "PredictRequest") and valid({"beats": [row]}, "PredictRequest")
    assert not valid([{"beats": [row]}], "PredictRequest")
    for bad in ({"beats": [row] * (MAX_BEATS + 1)}, {"beats": []}, {"beats": [row[:139]]}, {"beats": [row + [1]]},
                {"beats": [["a"] * 140]}, {}, {"beats": ["x" * 140]}, {"beats": "x"}, {"beats": [{"a": 1}]}):
        assert not valid(bad, "PredictRequest"), bad
    assert not valid({**answer, "labels": ["1", "2"]}, "Prediction")  # integer labels for ECG5000's model
    assert not valid({**answer, "probabilities": [p[:4] for p in answer["probabilities"]]}, "Prediction")
    assert not valid({**answer, "probabilities": [p + [0.0] for p in answer["probabilities"]]}, "Prediction")
    assert not valid({**answer, "probabilities": ["x" * 5, "y" * 5]}, "Prediction")
    assert not valid({**answer, "probabilities": [["a"] * 5, ["b"] * 5]}, "Prediction")
    assert not valid({**answer, "class_names": [1, 2]}, "Prediction")
    for key in ("labels", "class_names", "probabilities", "probability_labels"):
        assert not valid({k: v for k, v in answer.items() if k != key}, "Prediction"), key
    assert not valid({**answer, "warnings": [1]}, "Prediction")
    health = call(app, "GET", "/healthz")[1]
    assert valid({**health, "sha256": None}, "Health") and not valid({**health, "status": "down"}, "Health")
    for key in ("status", "model", "format", "sha256"):
        assert not valid({k: v for k, v in health.items() if k != key}, "Health"), key
    card = call(app, "GET", "/v1/model")[1]
    for key in ("model", "format", "labels", "class_names", "input_length"):
        assert not valid({k: v for k, v in card.items() if k != key}, "Model"), key
    assert not valid({**card, "input_length": "140"}, "Model") and not valid({**card, "limits": 1}, "Model")
    assert not valid({**card, "per_class_recall": ["x"]}, "Model")

    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "ecgcnn heartbeat classifier" and document["info"]["version"] == "1"
    assert set(document["paths"]) == {"/healthz", "/v1/model", "/v1/predict", "/openapi.json", "/"}
    predict = document["paths"]["/v1/predict"]["post"]
    assert set(predict["responses"]) == {"200", "400", "413", "415", "422"}
    assert f"{MAX_BEATS} beats or {MAX_BYTES} bytes" in predict["responses"]["413"]["description"]
    assert predict["parameters"][0]["name"] == "resample" and predict["parameters"][0]["in"] == "query"
    assert set(predict["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert document["info"]["description"] == ("Classifies heartbeats of 140 samples into 5 classes with the model "
                                               "edge (onnx).")
    assert predict["parameters"][0]["description"] == "linearly resample beats of another length (>= 2) to 140"
    # no placeholder of the module-level template is left anywhere
    assert not {"LABEL", "PROBABILITY_ROW", "RESAMPLE", "LIMITS"} & set(re.findall(r'"([A-Z_]+)"', json.dumps(
        document)))


def test_a_model_with_text_labels_has_string_labels_in_its_schema():
    from ecgcnn.serve.openapi import openapi_document  # noqa: PLC0415

    class Named:
        input_length, labels, name, format = 50, ["N", "V", 3], "mine", "onnx"

    document = openapi_document(Named(), 2, 9)
    schemas = document["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["beats"]["maxItems"] == 2
    assert document["paths"]["/v1/predict"]["post"]["responses"]["413"]["description"] == "more than 2 beats or 9 " \
                                                                                          "bytes"
    assert schemas["Prediction"]["properties"]["probability_labels"]["items"] == {"type": "string"}
    assert schemas["Prediction"]["properties"]["labels"]["items"] == {"type": "string"}
    assert schemas["Model"]["properties"]["labels"]["items"] == {"type": "string"}
    probabilities = schemas["Prediction"]["properties"]["probabilities"]["items"]
    assert (probabilities["minItems"], probabilities["maxItems"]) == (3, 3)
    beat = schemas["PredictRequest"]["properties"]["beats"]["items"]
    assert (beat["minItems"], beat["maxItems"]) == (50, 50)

    class Numbered(Named):
        labels = [1, 2]

    other = openapi_document(Numbered(), 3, 9)["components"]["schemas"]  # each document is its own copy
    assert other["Model"]["properties"]["labels"]["items"] == {"type": "integer"}
    assert schemas["Model"]["properties"]["labels"]["items"] == {"type": "string"}
    assert schemas["Prediction"]["properties"]["labels"]["items"] == {"type": "string"}
    assert document["paths"]["/v1/predict"]["post"]["responses"]["413"]["description"] == "more than 2 beats or 9 " \
                                                                                          "bytes"


def test_every_reference_of_the_document_resolves():
    from ecgcnn.serve.openapi import openapi_document  # noqa: PLC0415

    document = openapi_document(load_predictor(MODEL_FILE), 5, 50)
    refs = re.findall(r'"\$ref": "#/components/schemas/([A-Za-z]+)"', json.dumps(document))
    assert set(refs) == {"Error", "Health", "Model", "Prediction", "PredictRequest"} == set(
        document["components"]["schemas"])
    responses = document["paths"]["/v1/predict"]["post"]["responses"]
    for status in ("400", "413", "415", "422"):
        assert responses[status]["content"] == {"application/json": {"schema": {
            "$ref": "#/components/schemas/Error"}}}, status
    for path, schema in (("/healthz", "Health"), ("/v1/model", "Model")):
        assert document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{schema}"}


def test_csv_bodies_of_another_length_and_their_refusal():
    from ecgcnn.serve.payload import RequestError, beats_from_csv  # noqa: PLC0415

    rows = np.arange(200.0).reshape(2, 100)
    body = "\n".join(",".join(repr(v) for v in row) for row in rows.tolist()).encode()
    np.testing.assert_array_equal(beats_from_csv(body, 100, False), rows)
    with pytest.raises(RequestError) as info:
        beats_from_csv(b"1,2,3\n4,5,6\n", 140, False)
    assert info.value.status == 422 and str(info.value) == (
        "CSV body, line 1: expected 140 values per beat, found 3 (use ?resample=true to resample beats of another "
        "length)")


def test_worker_processes_build_their_app_from_the_environment(monkeypatch):
    for name in (server_module.ENV_MODEL, server_module.ENV_MAX_BEATS, server_module.ENV_MAX_BYTES,
                 server_module.ENV_THREADS):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    default = server_module.app_from_environment()  # nothing set: the default model and limits, every core
    assert default.state.predictor.path.name == "edge_int8_full.tflite"
    assert call(default, "GET", "/v1/model")[1]["limits"] == {"max_beats": 1000, "max_bytes": 4 * 1024 * 1024}
    assert default.state.predictor.threads == usable_cores()
    monkeypatch.setenv(server_module.ENV_MODEL, str(MODEL_FILE))
    monkeypatch.setenv(server_module.ENV_THREADS, "3")
    assert server_module.app_from_environment().state.predictor.workers == 3


def test_run_server_defaults_and_a_missing_extra(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    seen = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.append((app, options)))
    server_module.run_server(str(MODEL_FILE))
    app, options = seen.pop()
    assert (options["host"], options["port"]) == ("127.0.0.1", 8000)
    assert app.state.predictor.workers == 1  # one runtime thread per process by default
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as when the 'serve' extra is not installed
    with pytest.raises(EcgcnnError) as info:
        server_module.run_server(str(MODEL_FILE))
    assert "ecgcnn[serve]" in str(info.value) and len(str(info.value).splitlines()) == 1


def test_limits_and_resampling_at_their_edges(app, predictor):
    from ecgcnn.serve.payload import beats_from_json, parse_beats  # noqa: PLC0415

    six = np.tile(np.sin(np.arange(140) / 9.0), (MAX_BEATS, 1))
    assert post_json(app, six)[0] == 200  # exactly max_beats: accepted
    csv = "\n".join(",".join(repr(v) for v in row) for row in six.tolist()).encode()
    assert call(app, "POST", "/v1/predict", csv, "text/csv; charset=utf-8; header=absent")[0] == 200
    assert parse_beats("csv", csv, 140, False, MAX_BEATS).shape == (MAX_BEATS, 140)
    status, payload = post_json(app, [[0.0, 1.0]], "?resample=true")  # two values: the fewest that resample
    assert status == 200 and len(payload["probabilities"]) == 1
    got = beats_from_json(json.dumps({"beats": [[0.0, 3.0], [1.0, 2.0, 4.0]]}).encode(), 100, True, 5)
    np.testing.assert_allclose(got, np.stack([linear_resample([[0.0, 3.0]], 100)[0],
                                              linear_resample([[1.0, 2.0, 4.0]], 100)[0]]), atol=1e-6)


def test_app_defaults_a_model_without_a_file_and_a_missing_extra(predictor, monkeypatch):
    app = app_module.create_app(predictor)
    assert app.state.queue.micro_batch is True and app.state.queue.max_batch == 64

    class Fileless:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return None if name == "path" else getattr(self._inner, name)

    health = call(app_module.create_app(Fileless(predictor)), "GET", "/healthz")[1]
    assert health["sha256"] is None and health["model"] == "edge"
    monkeypatch.setitem(sys.modules, "starlette.responses", None)
    with pytest.raises(EcgcnnError) as info:
        app_module.create_app(predictor)
    assert str(info.value) == ("this needs the 'serve' extra (starlette is not installed): pip install -c "
                               "constraints.txt 'ecgcnn[serve]'")


def test_closing_the_queue_does_not_wait_for_the_running_call():
    release = threading.Event()

    class Blocking(_Recorder):
        def predict_proba(self, beats):
            assert release.wait(timeout=30)
            return super().predict_proba(beats)

    queue = InferenceQueue(Blocking())

    async def scenario():
        running = asyncio.ensure_future(queue.predict(np.zeros((1, 4))))
        await asyncio.sleep(0.05)  # the call is now blocked on the inference thread
        closer = threading.Thread(target=queue.close)
        closer.start()
        closer.join(timeout=5)
        closed_while_running = not closer.is_alive()
        release.set()
        await running
        return closed_while_running

    assert asyncio.run(scenario()) is True


def test_the_model_runs_on_the_queues_own_thread():
    names = []

    class Where(_Recorder):
        def predict_proba(self, beats):
            names.append(threading.current_thread().name)
            return super().predict_proba(beats)

    _run_queue(InferenceQueue(Where(delay=0.005)), [np.zeros((1, 4)), np.ones((2, 4)), np.zeros((1, 4))])
    assert len(names) >= 2 and {name.split("_")[0] for name in names} == {"ecgcnn-inference"}
