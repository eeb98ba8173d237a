"""OpenAPI post-processing (drf-spectacular `POSTPROCESSING_HOOKS`): document what the API
really does, so that schemathesis can hold it to it (tests/integration/api/test_api_fuzz.py).

- Every operation documents the error statuses any request can meet, in the one error shape:
  400 (bad input, also a bad query string or a control character anywhere), 401, 404 (also a
  page past the last), 406 (an Accept header the API cannot serve), 429 (throttled); with a
  body also 415; a POST also 403 (CSRF for session clients, or the role may not act).
- Request strings carry the control-character rule of `mediation.core.middleware` as a
  pattern (tab, line feed and carriage return are allowed).
- Request objects admit no other keys (`additionalProperties: false`, mediation/api/strict.py).
- Lists of parties are documented as 1–50 long, as the serializers enforce.
"""

from __future__ import annotations

from typing import Any

NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALWAYS = {
    "400": "invalid / parse_error",
    "401": "not_authenticated / authentication_failed",
    "404": "not_found",
    "406": "not_acceptable",
    "429": "throttled / locked_out",
}


def _strings(schema: dict[str, Any]) -> None:
    """Add the control-character pattern to every plain string of a request schema."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_CONTROL_CHARACTERS
    for key in ("properties",):
        for value in (schema.get(key) or {}).values():
            _strings(value)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _strings(schema[key])
    for key in ("allOf", "oneOf", "anyOf"):
        for value in schema.get(key) or []:
            _strings(value)


def document_the_api(result: dict[str, Any], generator: Any, request: Any, public: bool) -> Any:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            _strings(component)
            if component.get("type") == "object" and "properties" in component:
                component["additionalProperties"] = False
            parties = component.get("properties", {}).get("parties")
            if parties and parties.get("type") == "array":
                parties.setdefault("minItems", 1)
                parties.setdefault("maxItems", 50)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _strings(parameter.get("schema", {}))
            statuses = dict(ALWAYS)
            if "requestBody" in operation:
                statuses["415"] = "unsupported_media_type"
            if method == "post":
                statuses["403"] = "permission_denied"
            for status, description in statuses.items():
                operation["responses"].setdefault(
                    status,
                    {
                        "content": {"application/json": {"schema": ERROR_REF}},
                        "description": description,
                    },
                )
    return result
