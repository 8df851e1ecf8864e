"""The HTTP service, tested as a client sees it: a real uvicorn server in a subprocess on a free loopback port,
requests over HTTP. Predictions must equal ``load_predictor(...).predict_proba`` on the same beats; every bad
request gets its 4xx with a one-sentence ``{"error": ...}`` and the server goes on answering /healthz."""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.cli import build_parser
from ecgcnn.cli import serve as serve_command
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.fileio import file_sha256
from ecgcnn.data.beats import read_beats_csv, resample_beats
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import resolve_model_path
from ecgcnn.serve import create_app, run_server
from ecgcnn.serve.app import STATIC_DIR
from ecgcnn.serve.batching import InferenceQueue

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

MODEL = "pretrained:edge.tflite"
MAX_BEATS = 20
MAX_BYTES = 100_000


class Server:
    """``run_server`` in a subprocess; the port is the one uvicorn reports after binding port 0 (no race)."""

    def __init__(self, model: str = MODEL, workers: int = 1, max_beats: int = MAX_BEATS,
                 max_bytes: int = MAX_BYTES, timeout: float = 90.0):
        code = ("import sys; from ecgcnn.serve import run_server; "
                "run_server(sys.argv[1], host='127.0.0.1', port=0, workers=int(sys.argv[2]), "
                "max_beats=int(sys.argv[3]), max_bytes=int(sys.argv[4]))")
        self.process = subprocess.Popen([sys.executable, "-c", code, model, str(workers), str(max_beats),
                                         str(max_bytes)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.log: list[str] = []
        lines: queue.Queue = queue.Queue()

        def drain():
            for line in self.process.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        self.port = None
        while self.port is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start:\n" + "".join(self.log[-20:]))
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
        self.base = f"http://127.0.0.1:{self.port}"
        # With several workers the parent binds (and logs) before the workers listen: wait for an answer.
        while True:
            try:
                if self.call("GET", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not answer /healthz:\n" + "".join(self.log[-20:]))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
             timeout: float = 30.0) -> tuple[int, dict | str, dict]:
        """(status, JSON body or text, headers) of one request; 4xx/5xx are returned, not raised."""
        request = urllib.request.Request(self.base + path, data=body, method=method)
        if content_type is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), dict(exc.headers)
        kind = headers.get("content-type", "")
        return status, json.loads(raw) if kind.startswith("application/json") else raw.decode(), headers

    def predict_json(self, beats, query: str = "") -> tuple[int, dict]:
        body = json.dumps({"beats": np.asarray(beats).tolist()}).encode()
        status, payload, _ = self.call("POST", "/v1/predict" + query, body, "application/json")
        return status, payload


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(MODEL)


@pytest.fixture(scope="module")
def beats(dataset):
    # Beats of every class, from the official test split.
    picks = np.concatenate([np.flatnonzero(dataset.index_test == c)[:3] for c in range(5)])
    return dataset.x_test[picks].astype(np.float64)


def _assert_prediction(payload: dict, expected: np.ndarray, predictor) -> None:
    got = np.asarray(payload["probabilities"], dtype=np.float64)
    assert got.shape == expected.shape
    # JSON carries the float32 values exactly (shortest repr of their float64 value): bit-identical.
    assert np.array_equal(got.astype(np.float32), expected)
    assert payload["labels"] == [predictor.labels[k] for k in expected.argmax(axis=1)]
    assert payload["class_names"] == [predictor.class_names[k] for k in expected.argmax(axis=1)]
    assert payload["probability_labels"] == predictor.labels


# ------------------------------------------------------------------------------------------------ the endpoints

def test_healthz(server):
    status, payload, _ = server.call("GET", "/healthz")
    assert status == 200
    assert payload == {"status": "ok", "model": "edge", "format": "tflite-int8-full",
                       "sha256": file_sha256(resolve_model_path(MODEL))}


def test_model_card(server, predictor):
    status, card, _ = server.call("GET", "/v1/model")
    assert status == 200
    assert card["labels"] == [1, 2, 3, 4, 5]
    assert card["class_names"] == predictor.class_names
    assert card["input_length"] == 140
    assert card["preprocessing"]["name"] == "znorm-per-beat"
    assert card["quantization"] == predictor.metadata["quantization"]
    assert "per_class_recall" in card  # null: the shipped edge model's metadata records no per-class recall
    assert card["limits"] == {"max_beats": MAX_BEATS, "max_bytes": MAX_BYTES}


def test_predict_json_equals_the_predictor(server, predictor, beats):
    status, payload = server.predict_json(beats)
    assert status == 200, payload
    _assert_prediction(payload, predictor.predict_proba(beats), predictor)
    assert "warnings" not in payload


def test_predict_csv_equals_the_predictor(server, predictor, beats, tmp_path):
    header = ",".join(f"s{i}" for i in range(140))
    text = "\n".join([header] + [",".join(repr(v) for v in row) for row in beats.tolist()])
    status, payload, _ = server.call("POST", "/v1/predict", text.encode(), "text/csv; charset=utf-8")
    assert status == 200, payload
    path = tmp_path / "beats.csv"
    path.write_text(text)
    _assert_prediction(payload, predictor.predict_proba(read_beats_csv(path, 140).values), predictor)


def test_resample(server, predictor, beats):
    short = resample_beats(beats, 70).astype(np.float64)
    status, payload = server.predict_json(short)
    assert status == 422 and "?resample=true" in payload["error"]
    status, payload = server.predict_json(short, "?resample=true")
    assert status == 200, payload
    _assert_prediction(payload, predictor.predict_proba(resample_beats(short, 140)), predictor)
    csv = "\n".join(",".join(repr(v) for v in row) for row in short.tolist()).encode()
    status, payload, _ = server.call("POST", "/v1/predict?resample=1", csv, "text/csv")
    assert status == 200, payload
    assert np.array_equal(np.asarray(payload["probabilities"], np.float32),
                          predictor.predict_proba(resample_beats(short, 140)))
    for query, status in (("?resample=True", 200), ("?resample=YES", 200), ("?resample=FALSE", 422),
                          ("?resample=Off", 422)):  # booleans in any case, as query strings are written
        assert server.predict_json(short, query)[0] == status, query


def test_concurrent_single_beats_are_exact(server, predictor, dataset):
    """Many concurrent one-beat requests (merged into micro-batches on the server) each get their own answer."""
    x = dataset.x_test[:64].astype(np.float64)
    expected = np.stack([predictor.predict_proba(x[i:i + 1])[0] for i in range(len(x))])
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: server.predict_json(x[i:i + 1]), range(len(x))))
    for i, (status, payload) in enumerate(results):
        assert status == 200, payload
        assert np.array_equal(np.asarray(payload["probabilities"][0], np.float32), expected[i]), i


def test_flat_beat_is_flagged(server):
    status, payload = server.predict_json(np.ones((2, 140)))
    assert status == 200
    assert len(payload["warnings"]) == 2 and payload["warnings"][0].startswith("beat 1:")


def test_openapi(server, beats):
    jsonschema = pytest.importorskip("jsonschema")
    status, document, _ = server.call("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {"/healthz", "/v1/model", "/v1/predict", "/openapi.json", "/"}
    assert server.call("GET", "/schema")[1] == document

    def check(instance, name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(instance)

    check(server.predict_json(beats[:2])[1], "Prediction")
    check({"beats": beats[:1].tolist()}, "PredictRequest")
    check(server.call("GET", "/healthz")[1], "Health")
    check(server.call("GET", "/v1/model")[1], "Model")
    check(server.predict_json([])[1], "Error")


def test_page_and_static_files(server):
    status, page, headers = server.call("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'id="csv"' in page and 'id="file"' in page and "/static/app.js" in page
    for name in ("app.js", "style.css", "example.csv"):
        status, text, _ = server.call("GET", f"/static/{name}")
        assert status == 200 and text == (STATIC_DIR / name).read_text()
    # Nothing is loaded from elsewhere: no absolute URLs other than the SVG namespace.
    for path in STATIC_DIR.iterdir():
        urls = re.findall(r"https?://[^\s\"')]+", path.read_text())
        assert set(urls) <= {"http://www.w3.org/2000/svg"}, (path.name, urls)


# -------------------------------------------------------------------------------------------------- bad requests

def _json(obj) -> bytes:
    return json.dumps(obj).encode()


ROW = [0.5] * 140
BAD_REQUESTS = [
    # (id, method, path, body, content type, status, message pattern)
    ("malformed-json", "POST", "/v1/predict", b'{"beats": [[1, 2', "application/json", 400, "not valid JSON"),
    ("not-utf8", "POST", "/v1/predict", b"\xff\xfe\xfa", "application/json", 400, "not"),
    ("empty-body", "POST", "/v1/predict", b"", "application/json", 400, "empty"),
    ("not-an-object", "POST", "/v1/predict", _json([ROW]), "application/json", 422, '"beats" list'),
    ("beats-not-a-list", "POST", "/v1/predict", _json({"beats": 3}), "application/json", 422, "list of beats"),
    ("empty-list", "POST", "/v1/predict", _json({"beats": []}), "application/json", 422, "empty list"),
    ("wrong-length", "POST", "/v1/predict", _json({"beats": [ROW, ROW[:139]]}), "application/json", 422,
     "beat 2 has 139 values, expected 140"),
    ("nan", "POST", "/v1/predict", b'{"beats": [[' + b", ".join([b"0.1"] * 139 + [b"NaN"]) + b"]]}",
     "application/json", 422, "NaN or infinite"),
    ("infinity", "POST", "/v1/predict", b'{"beats": [[' + b", ".join([b"-Infinity"] + [b"0.1"] * 139) + b"]]}",
     "application/json", 422, "NaN or infinite"),
    ("overflow", "POST", "/v1/predict", b'{"beats": [[' + b", ".join([b"1e999"] + [b"0.1"] * 139) + b"]]}",
     "application/json", 422, "NaN or infinite"),
    ("huge-int", "POST", "/v1/predict", _json({"beats": [[10 ** 400] + ROW[1:]]}), "application/json", 422,
     "NaN or infinite"),
    ("strings", "POST", "/v1/predict", _json({"beats": [["1"] * 140]}), "application/json", 422,
     "not a list of numbers"),
    ("booleans", "POST", "/v1/predict", _json({"beats": [[True] * 140]}), "application/json", 422,
     "not a list of numbers"),
    ("too-many-beats", "POST", "/v1/predict", _json({"beats": [ROW] * (MAX_BEATS + 1)}), "application/json", 413,
     f"at most {MAX_BEATS}"),
    ("too-many-csv-beats", "POST", "/v1/predict", ("\n".join([",".join(["0.5"] * 140)] * (MAX_BEATS + 1))).encode(),
     "text/csv", 413, f"at most {MAX_BEATS}"),
    ("too-many-bytes", "POST", "/v1/predict", b" " * (MAX_BYTES + 1), "application/json", 413, "too large"),
    ("text-plain", "POST", "/v1/predict", _json({"beats": [ROW]}), "text/plain", 415, "unsupported content type"),
    ("no-content-type", "POST", "/v1/predict", _json({"beats": [ROW]}), None, 415, "unsupported content type"),
    ("form", "POST", "/v1/predict", b"a=1", "application/x-www-form-urlencoded", 415, "unsupported content type"),
    ("csv-wrong-length", "POST", "/v1/predict", b"1,2,3\n4,5,6\n", "text/csv", 422, "expected 140 values"),
    ("csv-not-a-number", "POST", "/v1/predict", (",".join(["1"] * 139 + ["x"])).encode(), "text/csv", 422,
     "CSV body, line 1, column 140: expected a number"),
    ("csv-ragged", "POST", "/v1/predict", (",".join(["1"] * 140) + "\n" + ",".join(["1"] * 10)).encode(),
     "text/csv", 422, "expected 140 columns"),
    ("csv-empty", "POST", "/v1/predict", b"\n\n", "text/csv", 422, "empty"),
    ("bad-resample-flag", "POST", "/v1/predict?resample=maybe", _json({"beats": [ROW]}), "application/json", 400,
     "not a boolean"),
    ("unknown-path", "GET", "/v2/predict", None, None, 404, "no such endpoint"),
    ("wrong-method", "GET", "/v1/predict", None, None, 405, "not allowed"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request(server, case):
    _, method, path, body, content_type, status, pattern = case
    got, payload, headers = server.call(method, path, body, content_type)
    assert got == status, payload
    assert headers["content-type"].startswith("application/json")
    assert list(payload) == ["error"]
    message = payload["error"]
    assert re.search(re.escape(pattern), message), message
    assert message and "\n" not in message and len(message) < 300
    assert server.call("GET", "/healthz")[0] == 200


def test_a_missing_value_in_a_csv_body_is_refused_in_the_services_own_words(server):
    """The command line fills missing values with --missing fill, the service with ?missing=fill; by default a missing
    value is refused, and the refusal names the service's option, not the command line's."""
    for cell in ("NaN", ""):
        body = (",".join(["0.5"] * 139 + [cell])).encode()
        got, payload, _ = server.call("POST", "/v1/predict", body, "text/csv")
        assert got == 422
        found = "'NaN'" if cell else "''"
        kind = "a finite number" if cell else "a number"
        assert payload["error"] == (f"CSV body, line 1, column 140: expected {kind}, found {found} (missing values: "
                                    f"add ?missing=fill)")
        got, payload, _ = server.call("POST", "/v1/predict?missing=fill", body, "text/csv")
        assert got == 200 and len(payload["labels"]) == 1


def test_chunked_body_over_the_limit(server):
    """No Content-Length: the limit is enforced while the body streams in."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"[" * 1000 for _ in range(MAX_BYTES // 1000 + 2))
    try:
        connection.request("POST", "/v1/predict", body=chunks, headers={"Content-Type": "application/json"},
                           encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the client has sent everything
    response = connection.getresponse()
    assert response.status == 413
    assert "too large" in json.loads(response.read())["error"]
    connection.close()
    assert server.call("GET", "/healthz")[0] == 200


def test_invalid_content_length(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest("POST", "/v1/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", "-5")
    connection.endheaders()
    response = connection.getresponse()
    assert 400 <= response.status < 500
    connection.close()
    assert server.call("GET", "/healthz")[0] == 200


# ----------------------------------------------------------------------------------------- workers, CLI, errors

def test_two_workers(predictor, beats):
    srv = Server(workers=2, max_beats=5)
    try:
        status, payload = srv.predict_json(beats[:4])
        assert status == 200
        assert np.array_equal(np.asarray(payload["probabilities"], np.float32), predictor.predict_proba(beats[:4]))
        for _ in range(4):  # every worker process has the limits given to run_server, not the defaults
            status, payload = srv.predict_json(beats[:6])
            assert status == 413 and "at most 5" in payload["error"], payload
        assert srv.call("GET", "/healthz")[1]["status"] == "ok"
    finally:
        srv.stop()
    assert srv.process.returncode is not None


def test_cli_parser_defaults():
    parser = build_parser("serve")
    args = parser.parse_args(["serve"])
    assert (args.model_file, args.host, args.port, args.workers) == ("pretrained:edge.tflite", "127.0.0.1", 8000, 1)
    args = parser.parse_args(["serve", "m.tflite", "--port", "9000", "--workers", "2", "--max-beats", "5",
                              "--max-bytes", "1000"])
    assert (args.model_file, args.port, args.workers, args.max_beats, args.max_bytes) == \
        ("m.tflite", 9000, 2, 5, 1000)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--workers", "0"])


def test_cli_bad_model_fails_before_serving(tmp_path):
    parser = build_parser("serve")
    args = parser.parse_args(["serve", str(tmp_path / "missing.tflite"), "--port", "0"])
    with pytest.raises(EcgcnnError, match="not found"):
        serve_command.run(args)


def test_run_server_checks_its_arguments():
    with pytest.raises(EcgcnnError, match="workers"):
        run_server(MODEL, workers=0)
    with pytest.raises(EcgcnnError, match="max_beats"):
        create_app(load_predictor(MODEL), max_beats=0)


def test_static_dir_is_in_the_package():
    assert Path(STATIC_DIR).is_dir() and (STATIC_DIR / "index.html").is_file()


class _SlowPredictor:
    """Records every predict_proba call; each takes a few milliseconds, so concurrent requests pile up."""

    def __init__(self):
        self.calls: list[int] = []

    def predict_proba(self, beats):
        time.sleep(0.005)
        self.calls.append(len(beats))
        return np.repeat(np.asarray(beats)[:, :1], 5, axis=1).astype(np.float32)


def test_micro_batching_merges_single_beats_only():
    fake = _SlowPredictor()
    inference = InferenceQueue(fake, max_batch=8)

    async def scenario():
        singles = [inference.predict(np.full((1, 140), float(i))) for i in range(20)]
        multi = inference.predict(np.full((3, 140), 99.0))
        return await asyncio.gather(*singles, multi)

    try:
        results = asyncio.run(scenario())
    finally:
        inference.close()
    for i, result in enumerate(results[:20]):
        assert result.shape == (1, 5) and np.all(result == i)  # each request gets its own row back
    assert results[20].shape == (3, 5) and np.all(results[20] == 99.0)
    assert sum(fake.calls) == 23
    assert 3 in fake.calls  # the multi-beat request ran on its own
    assert len(fake.calls) < 21 and max(fake.calls) <= 8  # singles were merged, at most max_batch at a time


def test_inference_does_not_block_the_event_loop():
    class Slow:
        def predict_proba(self, beats):
            time.sleep(0.3)
            return np.zeros((len(beats), 5), np.float32)

    inference = InferenceQueue(Slow())

    async def scenario():
        task = asyncio.create_task(inference.predict(np.zeros((1, 140))))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return ticks

    try:
        ticks = asyncio.run(scenario())
    finally:
        inference.close()
    assert ticks >= 10  # the loop kept running while the model computed on its own thread


def test_a_model_of_your_own_data_is_served_in_its_own_labels(tmp_path, dataset):
    """Text labels and another beat length (ECG5000 resampled to 100 samples, classes renamed): the model card, the
    schema and the answers speak the data's language; the expected labels are the file's own."""
    names = {0: "normal", 1: "ron-t", 2: "pvc", 3: "sp-eb", 4: "ub"}
    pick = np.concatenate([np.flatnonzero(dataset.index_train == k)[:60] for k in range(5)])
    x = np.stack([np.interp(np.linspace(0, 139, 100), np.arange(140), b) for b in dataset.x_train[pick]])
    train_file = tmp_path / "mine.csv"
    train_file.write_text("".join(f"{names[int(k)]}," + ",".join(f"{v:.5f}" for v in beat) + "\n"
                                  for beat, k in zip(x, dataset.index_train[pick], strict=True)))
    from ecgcnn.data.dataset import DataSpec  # noqa: PLC0415 - this test only
    from ecgcnn.training import train  # noqa: PLC0415
    from ecgcnn.training.config import run_config  # noqa: PLC0415

    train(run_config("edge", 0, str(tmp_path / "runs"), DataSpec(train=str(train_file)), epochs=1))
    model = tmp_path / "runs" / "edge" / "edge_best.pth"
    expected = sorted(names.values())
    srv = Server(model=str(model))
    try:
        status, card, _ = srv.call("GET", "/v1/model")
        assert status == 200 and card["labels"] == expected and card["input_length"] == 100
        status, document, _ = srv.call("GET", "/openapi.json")
        assert document["components"]["schemas"]["Prediction"]["properties"]["labels"]["items"] == {"type": "string"}
        status, answer = srv.predict_json(x[:4])
        assert status == 200 and set(answer["labels"]) <= set(expected)
        assert answer["labels"] == list(load_predictor(model).predict(x[:4].astype(np.float32)))
        assert answer["probability_labels"] == expected
    finally:
        srv.stop()


class _Refusing:
    """The served model, except that it refuses (as a predictor does, with an EcgcnnError) any beat starting with
    12345: what the server answers for the predictor's own refusals."""

    def __init__(self, predictor):
        self._predictor = predictor

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict_proba(self, beats):
        if np.any(np.asarray(beats)[:, 0] == 12345):
            raise EcgcnnError("beat 1: refused by the model")
        return self._predictor.predict_proba(beats)


def test_a_refusal_of_the_predictor_is_a_422_and_the_server_goes_on(predictor, beats):
    uvicorn = pytest.importorskip("uvicorn")
    config = uvicorn.Config(create_app(_Refusing(predictor), max_beats=MAX_BEATS), host="127.0.0.1", port=0,
                            log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]

        def post(rows):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", method="POST",
                                             data=json.dumps({"beats": np.asarray(rows).tolist()}).encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        refused = beats[:2].copy()
        refused[0, 0] = 12345
        status, payload = post(refused)
        assert status == 422 and payload == {"error": "beat 1: refused by the model"}
        status, payload = post(beats[:2])  # and the next request is answered
        assert status == 200
        assert np.array_equal(np.asarray(payload["probabilities"], np.float32), predictor.predict_proba(beats[:2]))
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_client_that_goes_away_mid_batch_does_not_shift_the_others():
    running, permits = threading.Event(), threading.Semaphore(0)

    class Held(_SlowPredictor):
        """Each call signals that it runs, then waits for a permit from the test to finish."""

        def predict_proba(self, beats):
            running.set()
            assert permits.acquire(timeout=30)
            return super().predict_proba(beats)

    inference = InferenceQueue(Held(), max_batch=8)

    async def in_flight():
        while not running.is_set():
            await asyncio.sleep(0.01)
        running.clear()

    async def scenario():
        first = asyncio.create_task(inference.predict(np.full((1, 140), -1.0)))
        await in_flight()  # the model is busy with the first request ...
        singles = [asyncio.create_task(inference.predict(np.full((1, 140), float(i)))) for i in range(8)]
        await asyncio.sleep(0.05)  # ... while eight single beats queue up
        permits.release()
        await in_flight()  # they run as one batch
        singles[2].cancel()  # two clients leave while their batch is computed
        singles[5].cancel()
        await asyncio.sleep(0.05)
        permits.release()
        return await asyncio.gather(first, *singles, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        permits.release(4)
        inference.close()
    assert inference.predictor.calls == [1, 8]  # the cancelled beats were in flight, not dropped before
    assert np.all(results[0] == -1.0)
    for i, result in enumerate(results[1:]):
        if i in (2, 5):
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result.shape == (1, 5) and np.all(result == i), (i, result)  # its own row, not a neighbour's
