"""JSON Schemas (as pydantic writes them) read back as plain field tables.

One reading serves every place a person meets a shape: ``soundfleet submit KIND
--help`` and the coordinator's ``/docs`` page list each field with its type, default,
limits and meaning, taken from the very models that validate the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_LIMITS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("pattern", "matches {}"),
)
# Bounds that only say "fits in a JSON number" are noise to a reader.
_NOISE = {9007199254740992, -9007199254740992}


@dataclass(frozen=True)
class FieldRow:
    """One field: name, type, default (or ``required``), limits, meaning."""

    name: str
    type: str
    default: str
    limits: str
    description: str


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    resolved: dict[str, Any] = defs.get(ref.rsplit("/", 1)[-1], {})
    return resolved


def type_text(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short human reading of a schema node's type."""
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        target = _resolve(node, defs)
        keys = ", ".join(target.get("properties", {}))
        return f"{name} object ({keys})" if keys else f"{name} object"
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return "one of " + " | ".join(str(v) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [type_text(n, defs) for n in node[key] if n.get("type") != "null"]
            nullable = any(n.get("type") == "null" for n in node[key])
            return " or ".join(parts) + (" or null" if nullable else "")
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        if isinstance(items, dict):
            return f"list of {type_text(items, defs)}"
        if "prefixItems" in node:
            return "list of " + ", ".join(type_text(n, defs) for n in node["prefixItems"])
        return "list"
    if kind == "object":
        return "object"
    return str(kind or "any")


def limits_text(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """The node's bounds (and its items' bounds) in words."""
    out = [fmt.format(node[key]) for key, fmt in _LIMITS if key in node and node[key] not in _NOISE]
    items = node.get("items")
    if isinstance(items, dict):
        inner = limits_text(_resolve(items, defs), defs)
        if inner:
            out.append(f"each {inner}")
    for key in ("anyOf", "oneOf"):
        for option in node.get(key, ()):
            inner = limits_text(option, defs)
            if inner:
                out.append(inner)
    return ", ".join(out)


def field_rows(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> list[FieldRow]:
    """Every property of an object schema, in declaration order."""
    defs = {**schema.get("$defs", {}), **(defs or {})}
    schema = _resolve(schema, defs)
    required = set(schema.get("required", ()))
    rows = []
    for name, node in schema.get("properties", {}).items():
        if name in required:
            default = "required"
        elif "default" in node:
            default = json.dumps(node["default"])
        else:
            default = "-"
        rows.append(
            FieldRow(
                name=name,
                type=type_text(node, defs),
                default=default,
                limits=limits_text(node, defs),
                description=" ".join(str(node.get("description", "")).split()),
            )
        )
    return rows


def text_table(rows: list[FieldRow]) -> str:
    """Fields as indented plain text (for ``--help``)."""
    lines = []
    for r in rows:
        lines.append(f"  {r.name}: {r.type}  [{r.default}]")
        detail = "; ".join(x for x in (r.limits, r.description) if x)
        if detail:
            lines.append(f"      {detail}")
    return "\n".join(lines)
