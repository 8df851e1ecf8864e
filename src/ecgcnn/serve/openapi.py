"""The OpenAPI 3.1 document of the service, written out by hand (Starlette generates none).

The fixed parts are module-level data; :func:`openapi_document` fills in what depends on the model (beat length,
number of classes, label type) and on the server's limits. ``tests/serve`` applies the schemas to real responses.
"""

from __future__ import annotations

import copy

ERROR = {"type": "object", "required": ["error"], "additionalProperties": False,
         "properties": {"error": {"type": "string", "description": "one sentence"}}}
HEALTH = {"type": "object", "required": ["status", "model", "format", "sha256"],
          "properties": {"status": {"const": "ok"}, "model": {"type": "string"}, "format": {"type": "string"},
                         "sha256": {"type": ["string", "null"]}}}
MODEL = {"type": "object", "required": ["model", "format", "labels", "class_names", "input_length"],
         "properties": {"model": {"type": "string"}, "architecture": {"type": "string"},
                        "format": {"type": "string"}, "file": {"type": ["string", "null"]},
                        "sha256": {"type": ["string", "null"]},
                        "labels": {"type": "array", "items": "LABEL"},
                        "class_names": {"type": "array", "items": {"type": "string"}},
                        "input_length": {"type": "integer"},
                        "preprocessing": {"type": ["object", "null"]},
                        "quantize": {"type": ["string", "null"]},
                        "quantization": {"type": ["object", "null"]},
                        "metrics": {"type": ["object", "null"]},
                        "per_class_recall": {"type": ["array", "null"], "items": {"type": "number"}},
                        "limits": {"type": "object"}}}
PREDICTION = {
    "type": "object", "required": ["labels", "class_names", "probabilities", "probability_labels"],
    "properties": {
        "labels": {"type": "array", "items": "LABEL", "description": "predicted dataset label per beat"},
        "class_names": {"type": "array", "items": {"type": "string"}, "description": "predicted class name per beat"},
        "probabilities": {"type": "array", "items": "PROBABILITY_ROW",
                          "description": "per beat, one probability per class, in the order of probability_labels"},
        "probability_labels": {"type": "array", "items": "LABEL"},
        "warnings": {"type": "array", "items": {"type": "string"},
                     "description": "present when a beat is flat (constant) or holds a spike or artefact"},
    }}
# Plain data, no calls: built once at import (mutation testing cannot reach code run at import).
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
PATHS = {
    "/healthz": {"get": {"summary": "liveness and the model served",
                         "responses": {"200": {"description": "serving", "content": {
                             "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
    "/v1/model": {"get": {"summary": "the model card: labels, class names, preprocessing, metrics",
                          "responses": {"200": {"description": "model metadata", "content": {
                              "application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}}}}},
    "/v1/predict": {"post": {
        "summary": "class probabilities for beats",
        "parameters": [{"name": "resample", "in": "query", "required": False,
                        "schema": {"type": "boolean", "default": False}, "description": "RESAMPLE"},
                       {"name": "missing", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["refuse", "fill"], "default": "refuse"},
                        "description": "fill: missing values (JSON null or NaN, empty or NaN CSV cells) are made "
                                       "whole as 'ecgcnn predict --missing fill' makes them (gaps interpolated, the "
                                       "span from the first to the last value stretched to the beat's length)"}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
            "text/csv": {"schema": {"type": "string"}, "description": "one beat per row, comma separated, optional "
                                                                      "header row (the format of 'ecgcnn predict "
                                                                      "--input')"}}},
        "responses": {
            "200": {"description": "one row per beat", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}},
            "400": {"description": "malformed body (not JSON, not UTF-8) or query", "content": _ERROR},
            "413": {"description": "LIMITS", "content": _ERROR},
            "415": {"description": "content type other than application/json or text/csv", "content": _ERROR},
            "422": {"description": "unusable beats: wrong length, NaN or infinite values (NaN allowed with "
                                   "?missing=fill), none at all",
                    "content": _ERROR},
        }}},
    "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {
        "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}}}},
    "/": {"get": {"summary": "a page to paste or upload beats and see them classified",
                  "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
}


def openapi_document(predictor, max_beats: int, max_bytes: int) -> dict:
    """The document for ``predictor`` (its ``input_length``, ``labels``, ``name``, ``format``) and the limits."""
    length, classes = predictor.input_length, len(predictor.labels)
    label = {"type": "string"} if any(isinstance(v, str) for v in predictor.labels) else {"type": "integer"}
    beat = {"type": "array", "items": {"type": ["number", "null"]}, "minItems": length, "maxItems": length,
            "description": f"{length} samples of one beat (other lengths with ?resample=true; null for a missing "
                           f"value with ?missing=fill)"}
    row = {"type": "array", "items": {"type": "number"}, "minItems": classes, "maxItems": classes}
    model, prediction, paths = copy.deepcopy(MODEL), copy.deepcopy(PREDICTION), copy.deepcopy(PATHS)
    model["properties"]["labels"]["items"] = label
    for key in ("labels", "probability_labels"):
        prediction["properties"][key]["items"] = label
    prediction["properties"]["probabilities"]["items"] = row
    predict = paths["/v1/predict"]["post"]
    predict["parameters"][0]["description"] = f"linearly resample beats of another length (>= 2) to {length}"
    predict["responses"]["413"]["description"] = f"more than {max_beats} beats or {max_bytes} bytes"
    return {
        "openapi": "3.1.0",
        "info": {"title": "ecgcnn heartbeat classifier", "version": "1",
                 "description": f"Classifies heartbeats of {length} samples into {classes} classes with the model "
                                f"{predictor.name} ({predictor.format})."},
        "paths": paths,
        "components": {"schemas": {
            "Error": ERROR, "Health": HEALTH, "Model": model, "Prediction": prediction,
            "PredictRequest": {"type": "object", "required": ["beats"],
                               "properties": {"beats": {"type": "array", "items": beat, "minItems": 1,
                                                        "maxItems": max_beats}}}}},
    }
