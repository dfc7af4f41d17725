"""``GET /docs``: the OpenAPI document as a page a person can read, without scripts.

Every operation with its roles, path and query parameters, the request body's fields
(type, default, limits, meaning, read by :mod:`schemas.fields` from the same models
that validate requests) and its answers. Rendered on the server: it works offline and
behind any content-security policy.
"""

from __future__ import annotations

import html
from typing import Any

from schemas.fields import FieldRow, field_rows, type_text

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328;background:#fafbfc}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}
.op{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.method{font-weight:700;font-family:monospace;padding:.1em .4em;border-radius:4px;color:#fff}
.get{background:#0969da}.post{background:#1a7f37}.path{font-family:monospace;font-weight:600}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #d0d7de;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f3f4f6}code{font-family:monospace}
.muted{color:#57606a}nav a{margin-right:1em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fields_table(rows: list[FieldRow]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td><code>{_e(r.name)}</code></td><td>{_e(r.type)}</td><td>{_e(r.default)}</td>"
        f"<td>{_e(r.limits)}</td><td>{_e(r.description)}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>field</th><th>type</th><th>default</th><th>limits</th>"
        f"<th>meaning</th></tr>{body}</table>"
    )


def _body(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    name = str(ref).rsplit("/", 1)[-1] if ref else "body"
    target = defs.get(name, schema)
    variants = target.get("oneOf") or target.get("anyOf")
    if variants:  # a tagged union (a job per kind): one table per variant
        parts = []
        for variant in variants:
            vname = str(variant.get("$ref", "")).rsplit("/", 1)[-1]
            parts.append(f"<p><b>{_e(vname)}</b></p>{_fields_table(field_rows(variant, defs))}")
            for prop, node in defs.get(vname, {}).get("properties", {}).items():
                inner = str(node.get("$ref", "")).rsplit("/", 1)[-1]
                if inner in defs:  # the nested object a person fills in (a job's spec)
                    rows = field_rows(defs[inner], defs)
                    parts.append(f"<p><code>{_e(prop)}</code>:</p>{_fields_table(rows)}")
        return "".join(parts)
    return f"<p><b>{_e(name)}</b></p>{_fields_table(field_rows(schema, defs))}"


def _operation(method: str, path: str, op: dict[str, Any], defs: dict[str, Any]) -> str:
    anchor = op.get("operationId", f"{method}_{path}")
    roles = op.get("description") or "Public: no key needed."
    parts = [
        f"<div class='op' id='{_e(anchor)}'><span class='method {_e(method)}'>"
        f"{_e(method.upper())}</span> <span class='path'>{_e(path)}</span>"
        f"<p>{_e(op.get('summary', ''))} <span class='muted'>{_e(roles)}</span></p>"
    ]
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
            f"<td>{_e(type_text(p.get('schema', {}), defs))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{_e(p.get('description') or '')}</td></tr>"
            for p in params
        )
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>"
            f"<th>meaning</th></tr>{rows}</table>"
        )
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        parts.append("<p>Request body (JSON):</p>" + _body(body["schema"], defs))
    answers = []
    for code, resp in op.get("responses", {}).items():
        content: dict[str, Any] = resp.get("content", {})
        kind, media = next(iter(content.items()), ("", None))
        schema: dict[str, Any] = (media or {}).get("schema", {})
        shape = str(schema.get("$ref", "")).rsplit("/", 1)[-1] or kind
        answers.append(f"<code>{_e(code)}</code> {_e(resp.get('description', ''))} ({_e(shape)})")
    parts.append("<p>Answers: " + "; ".join(answers) + "</p></div>")
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    """The whole page for an OpenAPI 3.1 document."""
    defs = doc.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[str]] = {}
    for path, methods in doc.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append(_operation(method, path, op, defs))
    info = doc.get("info", {})
    nav = "".join(f"<a href='#tag-{_e(t)}'>{_e(t)}</a>" for t in by_tag)
    sections = "".join(
        f"<h2 id='tag-{_e(tag)}'>{_e(tag)}</h2>{''.join(ops)}" for tag, ops in by_tag.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info.get('title', 'API'))} <span class='muted'>{_e(info.get('version', ''))}"
        "</span></h1><p>Every call but the public ones takes <code>Authorization: Bearer "
        "&lt;key&gt;</code>; errors are JSON naming the field. Machine-readable: "
        f"<a href='/openapi.json'>/openapi.json</a>.</p><nav>{nav}</nav>{sections}</body></html>"
    )
