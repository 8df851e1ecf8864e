"""Request bodies → checked beats, and predictions → response bodies. No web framework in here.

Every refusal is a :class:`RequestError`: an HTTP status and one sentence, which the app returns as
``{"error": "<sentence>"}``. Statuses: 400 malformed body (not JSON, not UTF-8), 413 too many beats or bytes,
415 a content type other than JSON or CSV, 422 a well-formed body whose beats are unusable (wrong length, NaN or
infinite values, no beats, not numbers).
"""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import DataError, EcgcnnError
from ..data.beats import flat_beats, outlier_beats, read_beats_csv, resample_beats
from ..data.missing import MIN_VALUES, fill_missing, too_short_rows
from ..data.tables import MISSING_HINT

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
_NUMBER_TYPES = {int, float}


class RequestError(EcgcnnError):
    """A request the server refuses: ``status`` (4xx) and a one-sentence message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def media_type(content_type: str | None) -> str:
    """``"text/csv; charset=utf-8"`` → ``"text/csv"``; missing → ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None) -> str:
    """``"json"`` or ``"csv"`` for a body the server reads, else a 415 :class:`RequestError`."""
    kind = media_type(content_type)
    if kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return "json"
    if kind in CSV_TYPES:
        return "csv"
    shown = f"'{kind}'" if kind else "no content type"
    raise RequestError(415, f"unsupported content type {shown}: send application/json ({{\"beats\": [[...], ...]}}) "
                            f"or text/csv (one beat per row)")


def parse_beats(kind: str, body: bytes, length: int, resample: bool, max_beats: int,
                fill: bool = False) -> np.ndarray:
    """The beats of a request body of ``kind`` (``"json"`` or ``"csv"``) as a float ``(N, length)`` array. ``fill``
    (``?missing=fill``): missing values (JSON ``null`` or ``NaN``, empty or NaN CSV cells) are made whole as
    ``ecgcnn predict --missing fill`` makes them (:func:`ecgcnn.data.missing.fill_missing`)."""
    if not body.strip():
        raise RequestError(400 if kind == "json" else 422, "the request body is empty")
    beats = beats_from_json(body, length, resample, max_beats, fill) if kind == "json" \
        else beats_from_csv(body, length, resample, fill)
    if len(beats) > max_beats:
        raise RequestError(413, f"too many beats: {len(beats)} in one request, at most {max_beats}")
    return beats


# ---------------------------------------------------------------------------------------------------------- JSON

def beats_from_json(body: bytes, length: int, resample: bool, max_beats: int, fill: bool = False) -> np.ndarray:
    try:
        document = json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(400, "the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the request body is not valid JSON ({exc.msg} at line {exc.lineno}, "
                                f"column {exc.colno})") from None
    if not isinstance(document, dict) or "beats" not in document:
        raise RequestError(422, 'expected a JSON object with a "beats" list, e.g. {"beats": [[140 numbers]]}')
    rows = document["beats"]
    if not isinstance(rows, list):
        raise RequestError(422, '"beats" must be a list of beats (each a list of numbers)')
    if not rows:
        raise RequestError(422, 'no beats: "beats" is an empty list')
    if len(rows) > max_beats:
        raise RequestError(413, f"too many beats: {len(rows)} in one request, at most {max_beats}")
    out = np.empty((len(rows), length), dtype=np.float64)
    for i, row in enumerate(rows):
        out[i] = _json_row(row, i, length, resample, fill)
    return out


def _json_row(row, i: int, length: int, resample: bool, fill: bool = False) -> np.ndarray:
    allowed = _NUMBER_TYPES | {type(None)} if fill else _NUMBER_TYPES
    if not isinstance(row, list) or not {type(v) for v in row} <= allowed:
        hint = " (null for a missing value needs ?missing=fill)" if isinstance(row, list) and None in row else ""
        raise RequestError(422, f"beat {i + 1} is not a list of numbers{hint}")
    try:
        values = np.asarray([np.nan if v is None else v for v in row], dtype=np.float64)
    except OverflowError:
        raise RequestError(422, f"beat {i + 1} contains NaN or infinite values") from None
    if np.isinf(values).any() or (not fill and np.isnan(values).any()):
        hint = " (NaN for a missing value needs ?missing=fill)" if not fill and np.isnan(values).any() else ""
        raise RequestError(422, f"beat {i + 1} contains NaN or infinite values{hint}")
    if fill and np.isnan(values).any():
        if too_short_rows(values[None, :]).size:
            raise RequestError(422, f"beat {i + 1} has fewer than {MIN_VALUES} values, the rest missing")
        values = fill_missing(values[None, :])[0]
    if len(values) == length:
        return values
    if not resample:
        raise RequestError(422, f"beat {i + 1} has {len(values)} values, expected {length} "
                                f"(add ?resample=true to resample beats of another length)")
    if len(values) < 2:
        raise RequestError(422, f"beat {i + 1} has {len(values)} value(s): cannot resample fewer than 2")
    return resample_beats(values[None, :], length)[0]


# ----------------------------------------------------------------------------------------------------------- CSV

def beats_from_csv(body: bytes, length: int, resample: bool, fill: bool = False) -> np.ndarray:
    """Read the body with :func:`ecgcnn.data.beats.read_beats_csv`, the reader of ``ecgcnn predict``."""
    try:
        beats = read_beats_csv("CSV body", length=length, resample=resample, data=body,
                               missing="fill" if fill else "refuse")
    except DataError as exc:
        # the service's own words for the command line's options: ?resample=true and ?missing=fill
        raise RequestError(422, str(exc).replace("--resample", "?resample=true")
                           .replace(MISSING_HINT, " (missing values: add ?missing=fill)")) from None
    return np.asarray(beats.values)


# ------------------------------------------------------------------------------------------------------ responses

def prediction_body(predictor, probabilities: np.ndarray, beats: np.ndarray) -> dict:
    """``{"labels", "class_names", "probabilities", "probability_labels"}`` (+ ``"warnings"`` for flat beats)."""
    indices = probabilities.argmax(axis=1)
    labels, names = predictor.labels, predictor.class_names
    body = {
        "labels": [labels[k] for k in indices.tolist()],
        "class_names": [names[k] for k in indices.tolist()],
        "probabilities": probabilities.tolist(),
        "probability_labels": labels,
    }
    flat, odd = flat_beats(beats), outlier_beats(beats)
    warnings = [f"beat {i + 1}: constant values cannot be z-normalised; the prediction is meaningless"
                if flat[i] else f"beat {i + 1}: a spike or artefact (a value far outside the beat's shape); the "
                                f"prediction is unreliable" for i in np.flatnonzero(flat | odd).tolist()]
    if warnings:
        body["warnings"] = warnings
    return body

