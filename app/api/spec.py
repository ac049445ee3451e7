"""OpenAPI 3 for /api/v1, built from the registered routes and their marshmallow schemas.

Each API view is decorated with ``operation(...)``; the document lists every rule under the
API blueprint, so an endpoint without a description cannot go missing from it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from app.api.helpers import SQL_ID_MAX

API_TITLE = "Megabox API"
API_VERSION = "1.0.0"
OPENAPI_VERSION = "3.0.3"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "details"],
    "properties": {
        "error": {"type": "string", "description": "A stable machine-readable code."},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
}
_CONVERTER = re.compile(r"<(?:(?P<type>[a-z]+):)?(?P<name>\w+)>")
_PARAM_TYPES = {
    # app.api.inputs.BoundedIntConverter: a larger id matches no route.
    "int": {"type": "integer", "format": "int32", "minimum": 0, "maximum": SQL_ID_MAX},
    "string": {"type": "string"},
    None: {"type": "string"},
}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    auth: bool = False
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A raw (non-JSON) request body of this media type, e.g. an upload chunk.
    raw_body: str | None = None


def operation(summary: str, tag: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    """Describe an API view for the OpenAPI document."""

    def mark(view: Callable) -> Callable:
        view.openapi = Operation(summary=summary, tag=tag, **kwargs)  # type: ignore[attr-defined]
        return view

    return mark


def build_spec(app: Flask, prefix: str = "/api/v1") -> dict[str, Any]:
    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": "Artists, releases and tracks. Send `Authorization: Bearer <token>`."},
        servers=[{"url": "/"}],
    )
    spec.components.schema("Error", ERROR_SCHEMA)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(prefix):
            continue
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi", None)
        if op is None:
            raise LookupError(f"API endpoint {rule.endpoint} has no @operation description")
        path = _CONVERTER.sub(r"{\g<name>}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _describe(rule.rule, method, op)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _describe(rule: str, method: str, op: Operation) -> dict[str, Any]:
    params = [
        {"name": m["name"], "in": "path", "required": True, "schema": _PARAM_TYPES[m["type"]]}
        for m in _CONVERTER.finditer(rule)
    ]
    params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in op.query.items()]
    params += [{"name": n, "in": "header", "required": True, "schema": s} for n, s in op.headers.items()]
    operation_id = method.lower() + _CONVERTER.sub(r"by_\g<name>", rule).replace("/", "_")
    described: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": operation_id.replace("-", "_"),
        "responses": {
            **_success(op),
            "default": {
                "description": "An error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if params:
        described["parameters"] = params
    if op.auth:
        described["security"] = [{"bearer": []}]
    if op.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    if op.raw_body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {op.raw_body: {"schema": {"type": "string", "format": "binary"}}},
        }
    return described


def _success(op: Operation) -> dict[str, Any]:
    if op.response is None:
        return {str(op.status): {"description": "Done"}}
    schema: Any = op.response
    if op.many:
        schema = {"type": "array", "items": op.response}
    return {
        str(op.status): {"description": "OK", "content": {"application/json": {"schema": schema}}}
    }
