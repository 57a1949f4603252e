"""The wire's JSON Schemas (draft 2020-12), read from the package's ``json/`` folder.

``load(name)`` needs only the standard library; ``validator(name)`` needs
``jsonschema`` (a dev dependency), imported on first use, and resolves the
schemas' ``$ref`` to one another offline from the same folder. What each schema
covers, and the server's extensions to PROTOCOL.md: docs/WIRE.md.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from referencing import Registry

__all__ = ["SCHEMAS", "load", "registry", "validator"]

# Every schema file, by name (``<name>.json``); ``common`` holds shared ``$defs`` only.
SCHEMAS = (
    "common",
    "odds-stream-request",
    "catalog-events-request",
    "catalog-market-request",
    "market-snapshot",
    "odds-frame",
    "catalog-events-response",
    "error",
)


@cache
def _text(name: str) -> str:
    if name not in SCHEMAS:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(SCHEMAS)}")
    return resources.files("schemas").joinpath("json", f"{name}.json").read_text("utf-8")


def load(name: str) -> dict[str, Any]:
    """The schema ``name`` as a fresh dict (the caller may change it)."""
    schema = json.loads(_text(name))
    if not isinstance(schema, dict):
        raise TypeError(f"schema {name!r} is not a JSON object")
    return schema


@cache
def registry() -> Registry[Any]:
    """Every schema, by ``$id``, for resolving ``$ref`` (never fetched over the network)."""
    from referencing import Registry  # noqa: PLC0415 - jsonschema is a dev dependency
    from referencing.jsonschema import DRAFT202012  # noqa: PLC0415

    resources_ = [(s["$id"], DRAFT202012.create_resource(s)) for s in map(load, SCHEMAS)]
    return Registry().with_resources(resources_)


def validator(name: str) -> Draft202012Validator:
    """A draft 2020-12 validator for schema ``name``, its ``$ref`` resolved offline."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - a dev dependency

    return Draft202012Validator(load(name), registry=registry())
