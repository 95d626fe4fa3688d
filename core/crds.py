"""Herald's CustomResourceDefinitions, Broadcast and Bot, generated from
:mod:`herald.core.broadcasts` (and the modules that hold its parts: audiences, contents, media,
statuses) and :mod:`herald.core.bots`.

The pydantic models are the one definition of the contract; this module turns their JSON
Schema into the structural OpenAPI v3 schema the API server wants: ``$ref`` inlined,
``X | None`` turned into an optional property, titles and ``null`` defaults dropped, and the
models' :class:`~herald.core.contracts.CelRule` objects emitted as
``x-kubernetes-validations``. ``crds/*.yaml`` is this module's output, kept in the repository
for ``kubectl apply`` and the chart; a test fails when it drifts::

    python -m herald.core.crds --write crds charts/herald/files/crds

(Without arguments it prints the Broadcast CRD, as it always did.) Just over 400 lines: the
schema conversion is shared by both kinds, and each kind's names and printer columns sit
next to it, so a new field is followed from its model to the CRD in one file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from herald.core import bots, broadcasts, statuses

__all__ = [
    "BOT_CRD_FILENAME",
    "CRD_FILENAME",
    "CrdError",
    "bot_crd",
    "broadcast_crd",
    "render",
    "render_all",
    "structural_schema",
]

CRD_FILENAME = f"{broadcasts.PLURAL}.{broadcasts.GROUP}.yaml"
BOT_CRD_FILENAME = f"{bots.BOT_PLURAL}.{broadcasts.GROUP}.yaml"

_HEADER = (
    "# Generated from herald.core.{module} by `python -m herald.core.crds`; do not edit.\n"
    "# Regenerate with: python -m herald.core.crds --write crds charts/herald/files/crds\n"
)

# Keys in the order a reader wants them, so the generated YAML reads like a hand-written one.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "items",
    "additionalProperties",
    "properties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_VALIDATION_KEY_ORDER = ("rule", "message", "messageExpression", "fieldPath", "reason")
# JSON Schema keywords a structural schema may carry as they are.
_KEPT = frozenset(_KEY_ORDER) - {"items", "additionalProperties", "properties"}
# Annotations without meaning to the API server.
_DROPPED = frozenset({"title", "examples"})


class CrdError(ValueError):
    """A model uses a JSON Schema construct that has no structural-schema equivalent."""


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model``, in wire (alias) names."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return _convert(schema, definitions, path=model.__name__)


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref`` replaced by the definition; the node's own keys win.

    A field's description is more specific than its type's docstring, so it is kept.
    """
    if "$ref" not in node:
        return node
    name = node["$ref"].removeprefix("#/$defs/")
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    return _resolve({**definitions[name], **siblings}, definitions)


def _without_null(node: dict[str, Any], path: str) -> dict[str, Any]:
    """``X | None`` as plain ``X``: absent is how the API says "none"; null is never stored."""
    branches = [branch for branch in node["anyOf"] if branch != {"type": "null"}]
    if len(branches) != 1:
        raise CrdError(f"{path}: unions other than X | None have no structural schema")
    outer = {key: value for key, value in node.items() if key != "anyOf"}
    if "default" in outer and outer["default"] is None:
        del outer["default"]
    return {**branches[0], **outer}


def _convert(node: dict[str, Any], definitions: dict[str, Any], *, path: str) -> dict[str, Any]:
    node = _resolve(node, definitions)
    if "anyOf" in node:
        return _convert(_without_null(node, path), definitions, path=path)
    for unsupported in ("allOf", "oneOf", "not", "propertyNames", "uniqueItems", "prefixItems"):
        if unsupported in node:
            raise CrdError(f"{path}: {unsupported} has no structural-schema equivalent here")

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020-12 gives the bound; OpenAPI v3.0 flags the inclusive one.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {
                name: _field(child, definitions, path=f"{path}.{name}")
                for name, child in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, definitions, path=f"{path}[]")
        elif key == "additionalProperties":
            # Unknown fields are pruned (or refused by kubectl's strict field validation),
            # and the API server forbids `additionalProperties: false` beside `properties`.
            if isinstance(value, dict):
                out[key] = _convert(value, definitions, path=f"{path}{{}}")
        elif key == "x-kubernetes-validations":
            # pydantic sorts the keys of extra values; put the rule first again.
            out[key] = [
                {name: rule[name] for name in _VALIDATION_KEY_ORDER if name in rule}
                for rule in value
            ]
        elif key in _KEPT:
            out[key] = value
        else:
            raise CrdError(f"{path}: unexpected JSON Schema keyword {key!r}")

    if "type" not in out:
        raise CrdError(f"{path}: a structural schema needs a type on every node")
    if out.get("required") == []:
        del out["required"]
    return {key: out[key] for key in _KEY_ORDER if key in out}


def _field(node: dict[str, Any], definitions: dict[str, Any], *, path: str) -> dict[str, Any]:
    converted = _convert(node, definitions, path=path)
    if not converted.get("description"):
        raise CrdError(f"{path}: every field needs a description (kubectl explain shows it)")
    return converted


def _printer_column(
    name: str,
    type_: str,
    json_path: str,
    description: str,
    *,
    wide: bool = False,
) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": type_,
        "jsonPath": json_path,
        "description": description,
    }
    if wide:
        column["priority"] = 1
    return column


def _printer_columns() -> list[dict[str, Any]]:
    return [
        _printer_column("Phase", "string", ".status.phase", "Display summary of the conditions."),
        _printer_column("Progress", "string", ".status.progress", "Recipients done, in percent."),
        _printer_column("Delivered", "integer", ".status.delivered", "Messages delivered."),
        _printer_column("Failed", "integer", ".status.failed", "Recipients not reached."),
        _printer_column(
            "Blocked", "integer", ".status.blocked", "Recipients who blocked the bot.", wide=True
        ),
        _printer_column(
            "Uncertain",
            "integer",
            ".status.uncertain",
            "Sends interrupted by a crash, never retried.",
            wide=True,
        ),
        _printer_column("Total", "integer", ".status.total", "Recipients in total.", wide=True),
        _printer_column(
            "Clicks",
            "integer",
            ".status.totalClicks",
            "Presses of callback buttons, one per chat and button.",
            wide=True,
        ),
        _printer_column(
            "Rate", "number", ".status.observedRate", "Observed messages per second.", wide=True
        ),
        # A date column renders future times as <invalid>, so the ETA is shown as written.
        _printer_column("ETA", "string", ".status.eta", "Estimated completion.", wide=True),
        _printer_column("Paused", "boolean", ".spec.paused", "The pause switch.", wide=True),
        _printer_column("Bot", "string", ".spec.botRef.name", "The Bot that sends.", wide=True),
        _printer_column(
            "Age", "date", ".metadata.creationTimestamp", "Time since the Broadcast was created."
        ),
    ]


def _object_schema(
    kind: str, description: str, spec_model: type[BaseModel], status_model: type[BaseModel]
) -> dict[str, Any]:
    spec = structural_schema(spec_model)
    status = structural_schema(status_model)
    return {
        "description": description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": (
                    "Versioned schema of this representation of an object: "
                    f"{broadcasts.API_VERSION}."
                ),
                "type": "string",
            },
            "kind": {
                "description": f"Kind of REST resource this object represents: {kind}.",
                "type": "string",
            },
            # The API server owns metadata's schema and refuses anything but a bare type here.
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def broadcast_crd() -> dict[str, Any]:
    """The Broadcast CustomResourceDefinition as a plain dict, ready to dump or apply."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{broadcasts.PLURAL}.{broadcasts.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "herald"},
        },
        "spec": {
            "group": broadcasts.GROUP,
            "names": {
                "kind": broadcasts.KIND,
                "listKind": f"{broadcasts.KIND}List",
                "plural": broadcasts.PLURAL,
                "singular": broadcasts.SINGULAR,
                "shortNames": list(broadcasts.SHORT_NAMES),
                # `kubectl get herald` lists every Herald resource.
                "categories": ["herald"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": broadcasts.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    # For the admin bot and humans alike:
                    # kubectl get bc --field-selector status.phase=Sending
                    "selectableFields": [
                        {"jsonPath": ".spec.botRef.name"},
                        {"jsonPath": ".spec.paused"},
                        {"jsonPath": ".status.phase"},
                    ],
                    "schema": {
                        "openAPIV3Schema": _object_schema(
                            broadcasts.KIND,
                            "A Broadcast sends one Telegram message to many recipients of a "
                            "bot, at a controlled rate, and reports progress in its status. "
                            "Pause it with spec.paused; wait for it with kubectl wait "
                            "--for=condition=Complete.",
                            broadcasts.BroadcastSpec,
                            statuses.BroadcastStatus,
                        )
                    },
                },
            ],
        },
    }


def bot_crd() -> dict[str, Any]:
    """The Bot CustomResourceDefinition as a plain dict."""
    columns = [
        _printer_column("Username", "string", ".status.username", "The bot's @username."),
        _printer_column(
            "Ready",
            "string",
            '.status.conditions[?(@.type=="Ready")].status',
            "Whether getMe verified the token.",
        ),
        _printer_column("Active", "integer", ".status.subscribers.active", "Active subscribers."),
        _printer_column("Bot ID", "integer", ".status.botId", "The bot's id.", wide=True),
        _printer_column(
            "Reason",
            "string",
            '.status.conditions[?(@.type=="Ready")].reason',
            "Why the Bot is or is not Ready.",
            wide=True,
        ),
        _printer_column("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{bots.BOT_PLURAL}.{broadcasts.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "herald"},
        },
        "spec": {
            "group": broadcasts.GROUP,
            "names": {
                "kind": bots.BOT_KIND,
                "listKind": f"{bots.BOT_KIND}List",
                "plural": bots.BOT_PLURAL,
                "singular": bots.BOT_SINGULAR,
                "categories": ["herald"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": broadcasts.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": _object_schema(
                            bots.BOT_KIND,
                            "A Bot is one Telegram bot as Herald knows it: the Secret with its "
                            "token, its sending limits, its admins and how it takes updates. "
                            "Broadcasts name it in spec.botRef. The operator verifies the "
                            "token with getMe and reports the bot's id and username.",
                            bots.BotSpec,
                            bots.BotStatus,
                        )
                    },
                },
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-schemas out in full: anchors and aliases would puzzle a reader."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_CRDS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    CRD_FILENAME: ("broadcasts", broadcast_crd),
    BOT_CRD_FILENAME: ("bots", bot_crd),
}


def render(filename: str = CRD_FILENAME) -> str:
    """The committed YAML form of one Herald CRD, by its file name under crds/."""
    module, build = _CRDS[filename]
    body = yaml.dump(build(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return _HEADER.format(module=module) + body


def render_all() -> dict[str, str]:
    """Every Herald CRD by its file name under crds/."""
    return {filename: render(filename) for filename in _CRDS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m herald.core.crds")
    parser.add_argument(
        "--write", nargs="+", type=Path, metavar="DIR", help="write every CRD into each DIR"
    )
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(render())
        return
    for folder in args.write:
        for filename, text in render_all().items():
            (folder / filename).write_text(text)


if __name__ == "__main__":
    main()
