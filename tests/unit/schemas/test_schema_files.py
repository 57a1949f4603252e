"""The schema files themselves: valid draft 2020-12, registered, every $ref resolvable offline."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from schemas.json_schemas import SCHEMAS, load, registry, validator

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://sportsbook.example/schemas/v1/"


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` anywhere in a schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_file_in_the_folder_is_registered_and_vice_versa() -> None:
    folder = resources.files("schemas").joinpath("json")
    on_disk = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))

    assert on_disk == sorted(f"{name}.json" for name in SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12_with_its_own_id(name: str) -> None:
    schema = load(name)

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT
    assert schema["$id"] == f"{BASE}{name}.json"
    assert schema.get("title")


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_ref_resolves_offline(name: str) -> None:
    schema = load(name)
    resolver = registry().resolver(base_uri=schema["$id"])
    found = list(refs(schema))

    for ref in found:
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict), ref
    assert found or name in {"common", "error"}


def test_a_ref_outside_the_folder_is_not_fetched() -> None:
    resolver = registry().resolver(base_uri=f"{BASE}odds-frame.json")

    with pytest.raises(Unresolvable):
        resolver.lookup("https://json-schema.org/draft/2020-12/schema#/$defs/nothing")
    with pytest.raises(Unresolvable):
        resolver.lookup("bets-place-request.json")


def test_every_shared_definition_is_used() -> None:
    used = {
        ref.split("#/$defs/")[1]
        for name in SCHEMAS
        for ref in refs(load(name))
        if "common.json#" in ref
    }

    assert used == set(load("common")["$defs"])


def test_load_returns_a_fresh_copy_and_refuses_unknown_names() -> None:
    load("error")["title"] = "changed"

    assert load("error")["title"] == "Error"
    with pytest.raises(KeyError, match="unknown schema 'bets'"):
        load("bets")


def test_validator_checks_through_refs() -> None:
    check = validator("market-snapshot")

    assert not check.is_valid({"marketId": "1.1"})
    assert isinstance(check, Draft202012Validator)
