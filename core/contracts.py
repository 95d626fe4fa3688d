"""The machinery that makes pydantic models a Kubernetes contract: :class:`CelRule`, the
:class:`Contract` base class, and the field types and patterns the models share.

Rules a schema cannot say (exactly one kind of content, rate caps, immutability) are
:class:`CelRule` objects on the model they constrain. Each carries the CEL expression the API
server evaluates and a Python predicate the model evaluates, with one message for both, so
a spec the API server rejects is also rejected by ``model_validate`` with the same words.
Transition rules (``oldSelf``) compare two versions of an object; only the API server sees
both, so they have no Python predicate. :mod:`herald.core.crds` emits the rules as
``x-kubernetes-validations``.

On the wire fields are camelCase (``botRef``); in Python they are snake_case (``bot_ref``)
and the models accept both. ``model_dump()`` produces the wire form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "DATA_KEY_PATTERN",
    "DNS_SUBDOMAIN_PATTERN",
    "LANGUAGE_CODES",
    "LANGUAGE_CODE_PATTERN",
    "MAX_LANGUAGES",
    "CelRule",
    "Contract",
    "LanguageCode",
    "Timestamp",
    "WireModel",
    "cel_string",
    "immutable",
    "language_codes_valid",
    "matches",
]

# Kubernetes' own rules for the name of an object (a Secret, a Bot) and the keys of a Secret's data.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
# Lowercase IETF tags as Telegram reports them in `language_code` ("en", "pt-br").
LANGUAGE_CODE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$"
_LANGUAGE_CODE_MAX_LENGTH = 20
# Upper bounds exist so the API server can bound the cost of the CEL rules (it rejects a
# CRD whose rules it cannot prove cheap) and so one object stays far below etcd's 1.5 MiB.
# This one bounds both the audience's languages and the content's localized variants.
MAX_LANGUAGES = 32
# What Kubernetes' `format: date-time` accepts: RFC 3339 with a mandatory offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def cel_string(value: str) -> str:
    """``value`` as a single-quoted CEL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def matches(pattern: str, value: str) -> bool:
    # fullmatch, because Python's `$` also matches before a trailing newline and RE2's does not.
    return re.fullmatch(pattern, value) is not None


class WireModel(BaseModel):
    """Every model with wire names (the CRDs' and the HTTP API's): immutable, camelCase on
    the wire, snake_case in Python, and nothing unknown taken silently."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


@dataclass(frozen=True, kw_only=True)
class CelRule:
    """One rule of the contract, enforced by the API server and by the model alike.

    ``rule`` is a CEL expression over ``self`` (the object of the model the rule sits on,
    in wire names); ``holds`` is the same predicate over the Python model. A rule that
    mentions ``oldSelf`` is a transition rule: it runs on updates only, on the API server.
    """

    rule: str
    message: str
    holds: Callable[[Any], bool] | None = None
    field_path: str | None = None

    def __post_init__(self) -> None:
        if self.holds is None and not self.is_transition:
            raise ValueError(f"CEL rule {self.rule!r} needs a Python predicate")

    @property
    def is_transition(self) -> bool:
        """Whether the rule compares with the previous version (runs on update only)."""
        return "oldSelf" in self.rule

    def as_validation(self) -> dict[str, str]:
        """The rule as an entry of ``x-kubernetes-validations``."""
        validation = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            validation["fieldPath"] = self.field_path
        return validation


def _add_cel_rules(schema: dict[str, Any], model: type[Any]) -> None:
    rules: tuple[CelRule, ...] = getattr(model, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.as_validation() for rule in rules]


def immutable(what: str) -> CelRule:
    return CelRule(
        rule="self == oldSelf",
        message=f"{what} is immutable once the Broadcast exists; create a new Broadcast instead",
    )


class Contract(WireModel):
    """Base of the spec and status models: immutable, wire names, unknown fields refused."""

    model_config = ConfigDict(json_schema_extra=_add_cel_rules)

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule in type(self).cel_rules:
            if rule.holds is not None and not rule.holds(self):
                raise ValueError(rule.message)
        return self


def _require_rfc3339(value: object) -> object:
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with a time zone, "
            "such as 2026-12-01T09:00:00Z",
        )
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_rfc3339)]
LanguageCode = Annotated[str, Field(min_length=2, max_length=_LANGUAGE_CODE_MAX_LENGTH)]


def language_codes_valid(codes: Iterable[str] | None) -> bool:
    return codes is None or all(matches(LANGUAGE_CODE_PATTERN, code) for code in codes)


LANGUAGE_CODES = "lowercase language codes such as en, ru or pt-br"
