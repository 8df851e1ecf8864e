"""The OpenAPI 3.1 document of the service, written out by hand (Starlette generates none).

``tests/test_serve.py`` checks that every route is described and that real responses match the response schemas.
"""

from __future__ import annotations

ERROR = {"type": "object", "required": ["error"], "additionalProperties": False,
         "properties": {"error": {"type": "string", "description": "one sentence"}}}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(predictor, max_beats: int, max_bytes: int) -> dict:
    length = predictor.input_length
    classes = len(predictor.labels)
    label = {"type": "string"} if any(isinstance(v, str) for v in predictor.labels) else {"type": "integer"}
    beat = {"type": "array", "items": {"type": "number"}, "minItems": length, "maxItems": length,
            "description": f"{length} samples of one beat (other lengths with ?resample=true)"}
    schemas = {
        "Error": ERROR,
        "Health": {"type": "object", "required": ["status", "model", "format", "sha256"],
                   "properties": {"status": {"const": "ok"}, "model": {"type": "string"},
                                  "format": {"type": "string"}, "sha256": {"type": ["string", "null"]}}},
        "PredictRequest": {"type": "object", "required": ["beats"],
                           "properties": {"beats": {"type": "array", "items": beat, "minItems": 1,
                                                    "maxItems": max_beats}}},
        "Prediction": {
            "type": "object", "required": ["labels", "class_names", "probabilities", "probability_labels"],
            "properties": {
                "labels": {"type": "array", "items": label,
                           "description": "predicted dataset label (ECG5000: 1..5) per beat"},
                "class_names": {"type": "array", "items": {"type": "string"},
                                "description": "predicted class name per beat"},
                "probabilities": {"type": "array", "description": "per beat, one probability per class, in the "
                                                                  "order of probability_labels",
                                  "items": {"type": "array", "items": {"type": "number"},
                                            "minItems": classes, "maxItems": classes}},
                "probability_labels": {"type": "array", "items": label},
                "warnings": {"type": "array", "items": {"type": "string"},
                             "description": "present when a beat is flat (constant) or holds a spike or artefact"},
            }},
        "Model": {"type": "object", "required": ["model", "format", "labels", "class_names", "input_length"],
                  "properties": {"model": {"type": "string"}, "architecture": {"type": "string"},
                                 "format": {"type": "string"}, "file": {"type": ["string", "null"]},
                                 "sha256": {"type": ["string", "null"]},
                                 "labels": {"type": "array", "items": label},
                                 "class_names": {"type": "array", "items": {"type": "string"}},
                                 "input_length": {"type": "integer"},
                                 "preprocessing": {"type": ["object", "null"]},
                                 "quantize": {"type": ["string", "null"]},
                                 "quantization": {"type": ["object", "null"]},
                                 "metrics": {"type": ["object", "null"]},
                                 "per_class_recall": {"type": ["array", "null"], "items": {"type": "number"}},
                                 "limits": {"type": "object"}}},
    }
    json_response = {"content": {"application/json": {"schema": {}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ecgcnn heartbeat classifier", "version": "1",
                 "description": f"Classifies ECG5000-style heartbeats ({length} samples) into {classes} classes "
                                f"with the model {predictor.name} ({predictor.format})."},
        "paths": {
            "/healthz": {"get": {"summary": "liveness and the model served", "responses": {"200": {
                "description": "serving", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Health"}}}}}}},
            "/v1/model": {"get": {"summary": "the model card: labels, class names, preprocessing, metrics",
                                  "responses": {"200": {"description": "model metadata", "content": {
                                      "application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}}}}},
            "/v1/predict": {"post": {
                "summary": "class probabilities for beats",
                "parameters": [{"name": "resample", "in": "query", "required": False,
                                "schema": {"type": "boolean", "default": False},
                                "description": f"linearly resample beats of another length (>= 2) to {length}"}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
                    "text/csv": {"schema": {"type": "string"},
                                 "description": "one beat per row, comma separated, optional header row "
                                                "(the format of 'ecgcnn predict --input')"}}},
                "responses": {
                    "200": {"description": "one row per beat", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Prediction"}}}},
                    "400": _error("malformed body (not JSON, not UTF-8) or query"),
                    "413": _error(f"more than {max_beats} beats or {max_bytes} bytes"),
                    "415": _error("content type other than application/json or text/csv"),
                    "422": _error("unusable beats: wrong length, NaN or infinite values, none at all"),
                }}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {
                "description": "OpenAPI 3.1", **json_response}}}},
            "/": {"get": {"summary": "a page to paste or upload beats and see them classified",
                          "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
        },
        "components": {"schemas": schemas},
    }
