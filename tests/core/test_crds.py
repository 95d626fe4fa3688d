"""The CRD is generated from the models, committed as generated, and agrees with them."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from herald.core import broadcasts, crds, statuses
from herald.core.contracts import CelRule, Contract

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / crds.CRD_FILENAME


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return crds.broadcast_crd()


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return only  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> dict[str, Any]:
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crds_are_the_generated_ones() -> None:
    for filename, text in crds.render_all().items():
        assert (ROOT / "crds" / filename).read_text() == text, (
            "crds/ is stale: run python -m herald.core.crds --write crds charts/herald/files/crds"
        )


def test_module_entry_point_prints_the_crd() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "herald.core.crds"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == crds.render()


def test_crd_identity(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "broadcasts.herald.dev"
    spec = crd["spec"]
    assert spec["group"] == "herald.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "Broadcast"
    assert spec["names"]["plural"] == "broadcasts"
    assert spec["names"]["shortNames"] == ["bc"]
    assert version["name"] == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    for path, node in _walk(schema):
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, (
            path
        )
        for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "not", "title", "nullable"):
            assert forbidden not in node, f"{path}: {forbidden}"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("default", "") is not None, f"{path}: null default"
        if node["type"] == "array":
            assert "maxItems" in node, f"{path}: unbounded list makes CEL cost unbounded"
        if node["type"] == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: unbounded map makes CEL cost unbounded"


def test_every_field_has_a_description(schema: dict[str, Any]) -> None:
    for path, node in _walk(schema):
        if path.endswith("[]") or path == ".metadata":
            continue  # list items are described by their list; metadata is the server's
        assert node.get("description", "").strip(), f"{path} has no description"


def _model_tree(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with refs and `X | None` resolved, written independently of
    the generator so that a generator bug cannot hide behind itself."""
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                target = defs[node["$ref"].split("/")[-1]]
                node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            else:
                (branch,) = [b for b in node["anyOf"] if b.get("type") != "null"]
                node = {**branch, **{k: v for k, v in node.items() if k != "anyOf"}}
        out = dict(node)
        if "properties" in node:
            out["properties"] = {k: resolve(v) for k, v in node["properties"].items()}
        if "items" in node:
            out["items"] = resolve(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = resolve(node["additionalProperties"])
        return out

    return resolve(raw)


@pytest.mark.parametrize(
    ("part", "model"),
    [("spec", broadcasts.BroadcastSpec), ("status", statuses.BroadcastStatus)],
)
def test_model_and_crd_schema_agree(
    schema: dict[str, Any], part: str, model: type[BaseModel]
) -> None:
    model_nodes = dict(_walk(_model_tree(model)))
    crd_nodes = dict(_walk(schema["properties"][part]))
    assert model_nodes.keys() == crd_nodes.keys()
    for path, crd_node in crd_nodes.items():
        model_node = model_nodes[path]
        assert crd_node["type"] == model_node["type"], path
        assert sorted(crd_node.get("required", [])) == sorted(model_node.get("required", [])), path
        for keyword in ("enum", "pattern", "minLength", "maxLength", "minimum", "maximum"):
            assert crd_node.get(keyword) == model_node.get(keyword), f"{path}: {keyword}"
        for keyword in ("minItems", "maxItems", "maxProperties", "format"):
            assert crd_node.get(keyword) == model_node.get(keyword), f"{path}: {keyword}"
        if model_node.get("default") is not None:
            assert crd_node["default"] == model_node["default"], path
        if not path.endswith("[]"):
            assert crd_node["description"] == model_node["description"], path


def _rules_by_model() -> Iterator[tuple[type[Contract], CelRule]]:
    """Every rule of every model of the contract, whichever module it lives in."""
    pending = [Contract]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        for rule in model.cel_rules:
            yield model, rule


def test_every_cel_rule_reaches_the_crd(schema: dict[str, Any]) -> None:
    bot = crds.bot_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    emitted = [
        (rule["rule"], rule["message"])
        for each in (schema, bot)
        for _, node in _walk(each)
        for rule in node.get("x-kubernetes-validations", [])
    ]
    for _, rule in _rules_by_model():
        assert (rule.rule, rule.message) in emitted


def test_cel_rules_name_fields_that_exist(schema: dict[str, Any]) -> None:
    # Wire names only: a snake_case name in a rule would make the API server refuse the CRD.
    for path, node in _walk(schema):
        for rule in node.get("x-kubernetes-validations", []):
            for name in re.findall(r"(?:self|oldSelf)\.(\w+)", rule["rule"]):
                assert name in node["properties"], f"{path}: {rule['rule']} names {name}"
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".") in node["properties"], path


def test_transition_rules_guard_what_must_not_change(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    immutable = {
        name
        for name, node in spec.items()
        if any(r["rule"] == "self == oldSelf" for r in node.get("x-kubernetes-validations", []))
    }
    assert immutable == {"botRef", "content", "audience"}
    for name in ("botRef", "content", "audience"):
        assert name in schema["properties"]["spec"]["required"], "transition rules need a value"


def _schema_at(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    node = schema
    for part in json_path.lstrip(".").split("."):
        node = node["properties"][part]
    return node


def test_printer_columns(version: dict[str, Any], schema: dict[str, Any]) -> None:
    columns = version["additionalPrinterColumns"]
    default = [c["name"] for c in columns if c.get("priority", 0) == 0]
    wide = [c["name"] for c in columns if c.get("priority", 0) == 1]
    assert default == ["Phase", "Progress", "Delivered", "Failed", "Age"]
    assert {"Total", "Blocked", "Rate", "Paused", "Bot"} <= set(wide)
    types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    for column in columns:
        assert column["description"]
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = _schema_at(schema, column["jsonPath"])
        assert types[node["type"]] == column["type"] or column["type"] == "string", column


def test_selectable_fields_are_scalars(version: dict[str, Any], schema: dict[str, Any]) -> None:
    for field in version["selectableFields"]:
        assert _schema_at(schema, field["jsonPath"])["type"] in {"string", "boolean", "integer"}


def test_crd_defaults_match_model_defaults(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["rate"]["default"] == {"messagesPerSecond": 25, "allowPaidBroadcast": False}
    rate = broadcasts.Rate.model_validate(spec["rate"]["default"])
    assert rate.messages_per_second == spec["rate"]["properties"]["messagesPerSecond"]["default"]
    assert rate.allow_paid_broadcast is spec["rate"]["properties"]["allowPaidBroadcast"]["default"]


def test_status_conditions_are_a_map_keyed_by_type(schema: dict[str, Any]) -> None:
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["type"]["enum"] == list(statuses.ConditionType)


class _Union(BaseModel):
    """A model the generator cannot express."""

    value: int | str


def test_generator_refuses_what_a_structural_schema_cannot_say() -> None:
    with pytest.raises(crds.CrdError, match=r"unions other than X \| None"):
        crds.structural_schema(_Union)


def test_contract_modules_import_no_io_library() -> None:
    code = (
        "import sys, herald.core.broadcasts, herald.core.crds\n"
        "banned = {'kubernetes', 'kopf', 'nats', 'asyncpg', 'aiogram', 'aiohttp'}\n"
        "print(sorted(banned & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
