"""The HTTP edge: route records, auth, body checks, JSON errors and the OpenAPI document.

A :class:`Route` says everything about an endpoint once (method, path, roles, body and
response models); :func:`add_route` mounts it with auth and body checks, and
:func:`openapi` turns the same records into the OpenAPI 3.1 document, so the document
cannot drift from what the server enforces. Other services' extensions (dashboard,
scoring-run API) mount their routes with :func:`add_route` too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from coordinator.auth import Principal
from coordinator.errors import AuthError, FieldsError, HttpError
from coordinator.metrics import Metrics
from coordinator.service import Coordinator
from schemas.errors import ConflictError, DatabaseError, InputError, NotFoundError
from schemas.jobs import ErrorBody, FieldError

log = structlog.get_logger("coordinator.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

COORDINATOR = web.AppKey("coordinator", Coordinator)
METRICS = web.AppKey("metrics", Metrics)
ROUTES = web.AppKey("routes", list["Route"])
BODY_LIMIT = web.AppKey("body_limit", int)
PRINCIPAL = web.RequestKey("principal", Principal)


@dataclass(frozen=True)
class Route:
    """One endpoint: who may call it, what it takes and what it answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    roles: frozenset[str] | None = None  # None: public (health, metrics, OpenAPI)
    body: Any = None  # a pydantic model or an Annotated union
    response: Any = None
    status: int = 200
    query: type[BaseModel] | None = None  # the query parameters' model (schemas/)
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = field(default=())
    raw_response: str | None = None  # content type of a non-JSON answer


# --------------------------------------------------------------------------- errors


def error_response(
    status: int, code: str, message: str, fields: list[FieldError] | None = None
) -> web.Response:
    """A JSON error body (:class:`ErrorBody`)."""
    body = ErrorBody(error=code, message=message, fields=fields or [])
    return web.Response(status=status, body=body.model_dump_json(), content_type="application/json")


def field_errors(
    exc: ValidationError, prefix: str = "", strip_tag: bool = False
) -> list[FieldError]:
    """Pydantic errors as dotted field paths (``spec.depth``)."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        # Escaped, so that a field name made of unstorable characters can be reported.
        loc = [
            str(p).encode("unicode_escape").decode() if unstorable(str(p)) else str(p)
            for p in err["loc"]
        ]
        if strip_tag and loc:
            loc = loc[1:]  # the discriminated union's tag, e.g. "network"
        # Smart unions add the member's tag ("constrained-int", "str") to the path.
        loc = [p for p in loc if not _is_union_tag(p)]
        if err["type"].startswith("union_tag"):
            loc = ["kind"]
        path = ".".join(([prefix] if prefix else []) + loc) or "body"
        out.append(FieldError(field=path, message=err["msg"], type=err["type"]))
    return out


_TYPE_TAGS = frozenset({"int", "str", "float", "bool", "list", "dict", "none", "tuple"})


def _is_union_tag(part: str) -> bool:
    return part in _TYPE_TAGS or "-" in part or "[" in part


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "quota_exceeded",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON :class:`ErrorBody`; counts requests by route."""
    metrics = request.app[METRICS]
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except FieldsError as exc:
        response = error_response(422, "invalid", str(exc), exc.fields)
    except HttpError as exc:
        response = error_response(exc.status, _STATUS_CODES.get(exc.status, "error"), str(exc))
        if isinstance(exc, AuthError) and exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
    except InputError as exc:
        response = error_response(400, "bad_request", str(exc))
    except NotFoundError as exc:
        response = error_response(404, "not_found", str(exc))
    except ConflictError as exc:
        response = error_response(409, "conflict", str(exc))
    except (
        asyncpg.DataError,
        asyncpg.UntranslatableCharacterError,
        asyncpg.CharacterNotInRepertoireError,
    ) as exc:
        # Input PostgreSQL refused (the edge checks should have caught it): still the
        # caller's fault, and the failed statement wrote nothing.
        log.warning("input_refused_by_database", route=name, error=str(exc))
        # The database's own words stay in the log: they quote its internals.
        response = error_response(
            422, "invalid", "the database refused a value of the request (out of range?)"
        )
    except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as exc:
        # lock_timeout / statement_timeout: rows held by a stalled session; retry later.
        log.warning("database_busy", route=name, error=str(exc))
        response = error_response(503, "unavailable", "the database is busy; retry shortly")
    except asyncpg.UndefinedTableError:
        response = error_response(503, "unavailable", "the database is not migrated")
    except (
        DatabaseError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        asyncpg.OperatorInterventionError,
        OSError,
    ) as exc:
        log.error("database_unavailable", error=str(exc), route=name)
        response = error_response(503, "unavailable", "the database is unavailable")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "error")
        message = exc.reason if exc.status != 413 else "the request body is too large"
        response = error_response(exc.status, code, message)
    except Exception:
        log.exception("request_failed", route=name, method=request.method)
        response = error_response(500, "internal", "internal error (see the coordinator log)")
    metrics.http_request(name, response.status).inc()
    return response


# ----------------------------------------------------------------------- the guards


async def _principal(request: web.Request, roles: frozenset[str]) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("missing bearer key (Authorization: Bearer <key>)", 401)
    principal = await request.app[COORDINATOR].authenticate(key.strip())
    if principal is None:
        raise AuthError("unknown or revoked key", 401)
    if principal.role not in roles:
        raise AuthError(
            f"role {principal.role!r} may not call this route (needs one of "
            f"{', '.join(sorted(roles))})",
            403,
        )
    return principal


def _guard(route: Route) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if route.roles is not None:
            request[PRINCIPAL] = await _principal(request, route.roles)
        if route.body is not None:
            limit = request.app[BODY_LIMIT]
            if request.content_length is not None and request.content_length > limit:
                raise HttpError(
                    f"the request body is {request.content_length} bytes; the limit is {limit}",
                    413,
                )
            if request.content_type != "application/json":
                raise HttpError(
                    f"Content-Type must be application/json, not {request.content_type!r}", 415
                )
        return await route.handler(request)

    return guarded


def principal(request: web.Request) -> Principal:
    """The authenticated caller of a guarded route."""
    p: Principal = request[PRINCIPAL]
    return p


async def body(request: web.Request, model: type[T]) -> T:
    """Parse and validate the JSON body; 422 naming the fields, 400 for broken JSON."""
    parsed: T = await body_as(request, model)
    return parsed


# JSON escapes that may decode to text PostgreSQL cannot store: NUL, or half of a
# surrogate pair. Seen in a body, the decoded strings are checked one by one.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def unstorable(value: str) -> bool:
    """True if PostgreSQL cannot store ``value`` as text (NUL or a lone surrogate)."""
    return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)


def _unstorable_path(node: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if isinstance(node, str):
        return path if unstorable(node) else None
    items: Any = ()
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    for key, child in items:
        if isinstance(key, str) and unstorable(key):
            return (*path, key.encode("unicode_escape").decode())
        found = _unstorable_path(child, (*path, str(key)))
        if found is not None:
            return found
    return None


def check_text(field: str, value: str | None) -> str | None:
    """A text parameter (query, path) PostgreSQL can store, else 422 naming it."""
    if value is not None and unstorable(value):
        raise _unstorable_error(field)
    return value


def _unstorable_error(field: str) -> FieldsError:
    message = "contains a NUL or an unpaired surrogate character"
    return FieldsError(
        f"{field} {message}", [FieldError(field=field, message=message, type="unstorable_text")]
    )


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI query parameters of ``model``, field by field from its JSON schema."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", "")
        # An optional parameter is one left out, not a null: its non-null branch.
        branches = [b for b in prop.pop("anyOf", ()) if b.get("type") != "null"]
        if len(branches) == 1:
            prop = {**branches[0], **prop}
        if prop.get("default", ...) is None:
            del prop["default"]
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                "description": description,
            }
        )
    return params


def query(request: web.Request, model: type[T]) -> T:
    """The request's query parameters as ``model``, else 422 naming each bad one."""
    adapter = _adapter(model)
    try:
        parsed: T = adapter.validate_python(dict(request.query))
    except ValidationError as exc:
        raise FieldsError("invalid query parameters", field_errors(exc, "query")) from None
    for name, value in request.query.items():
        check_text(f"query.{name}", value)
    return parsed


async def body_as(request: web.Request, model: Any) -> Any:
    """:func:`body` for a type that is not a class (e.g. an ``Annotated`` union)."""
    raw = await request.read()
    adapter = _adapter(model)
    try:
        parsed = adapter.validate_json(raw)
        if _SUSPECT.search(raw):
            bad = _unstorable_path(json.loads(raw))
            if bad is not None:
                where = ".".join(bad) or "body"
                raise _unstorable_error(where)
        return parsed
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InputError(f"the body is not valid JSON: {errors[0]['msg']}") from None
        discriminated = getattr(model, "__metadata__", None) is not None
        raise FieldsError(
            "the request body is invalid", field_errors(exc, strip_tag=discriminated)
        ) from None


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _adapter(model: Any) -> TypeAdapter[Any]:
    key = id(model)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = _ADAPTERS[key] = TypeAdapter(model)
    return adapter


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    """Serialize a response model."""
    return web.Response(
        status=status, body=model.model_dump_json(), content_type="application/json"
    )


def dict_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    """Serialize a JSON-ready dict that already has a response model's shape (hot paths)."""
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type="application/json",
    )


def add_route(app: web.Application, route: Route) -> None:
    """Mount ``route`` with its guards and list it in the OpenAPI document."""
    app.router.add_route(route.method, route.path, _guard(route))
    app[ROUTES].append(route)


# -------------------------------------------------------------------------- OpenAPI


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = _adapter(model).json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    if isinstance(model, type) and issubclass(model, BaseModel):
        components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}
    return schema


def _operation_id(route: Route) -> str:
    path = route.path.replace(":\\d+", "").strip("/")
    for char in "/{}-.":
        path = path.replace(char, "_")
    return f"{route.method.lower()}_{path}".replace("__", "_").strip("_")


def openapi(routes: list[Route], title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    components: dict[str, Any] = {}
    error_ref = _schema_of(ErrorBody, components)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path_params = [
            part[1:-1].split(":")[0]
            for part in route.path.split("/")
            if part.startswith("{") and part.endswith("}")
        ]
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "tags": list(route.tags),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in path_params
            ]
            + [
                *(query_parameters(route.query) if route.query is not None else ()),
            ],
            "responses": {},
        }
        for p in op["parameters"]:
            if p["in"] == "path" and p["name"] in ("unit", "job_id", "run_id"):
                p["schema"] = {"type": "integer"}
        if route.roles is not None:
            op["security"] = [{"bearerAuth": []}]
            op["description"] = "Roles: " + ", ".join(sorted(route.roles)) + "."
        else:
            op["security"] = []
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_of(route.body, components)}},
            }
        if route.raw_response is not None:
            op["responses"][str(route.status)] = {
                "description": "OK",
                "content": {route.raw_response: {"schema": {"type": "string"}}},
            }
        elif route.response is not None:
            op["responses"][str(route.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": _schema_of(route.response, components)}},
            }
        codes = set(route.errors)
        if route.roles is not None:
            codes |= {401, 403}
        if route.body is not None:
            codes |= {400, 413, 415, 422}
        for code in sorted(codes):
            op["responses"][str(code)] = {
                "description": _STATUS_CODES.get(code, "error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        clean = route.path.replace(":\\d+", "")
        paths.setdefault(clean, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_json(routes: list[Route], title: str, version: str) -> str:
    """The OpenAPI document serialized."""
    return json.dumps(openapi(routes, title, version), separators=(",", ":"))
