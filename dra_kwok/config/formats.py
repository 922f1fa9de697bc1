"""Kubernetes name formats and the placeholder language of string attributes.

Shared by :mod:`~dra_kwok.config.validation` (which must agree with the apiserver to the character) and
:mod:`dra_kwok.slices.render` (which must only produce what validation allowed), so both read the same definitions.
Every regex is applied with ``fullmatch`` and ASCII classes: ``$`` and ``\\d`` in Python accept a trailing
newline and non-ASCII digits, the Go originals do not.

Placeholders (string attribute values only)
-------------------------------------------
``{{...}}`` never occurs in ordinary device data, so it cannot clash with it:

=================  ==========================================================================================
``{{node}}``       the node name (node-local pools only).  Names longer than 63 characters are shortened to
                   ``<first 54 characters>-<8 hex digits of their SHA-256>``, so the value is at most 63.
``{{device}}``     the device's own name after ``count`` expansion, e.g. ``gpu-3``.
``{{index}}``      the device's index within its ``count`` expansion (``0`` when ``count`` is not set).
``{{hash}}``       8 hex digits, stable per (driver, published pool name, device name); a node-local pool
                   name contains the node, so the value differs per node.  ``{{hash:N}}``: N digits, 1-64.
``{{uuid}}``       a UUID (version 5) derived from the same triple, e.g. for ``GPU-{{uuid}}``.
=================  ==========================================================================================

Any other ``{{`` is an error (there is no escape: a literal ``{{`` is not useful in a fake device).
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar, Union

__all__ = [
    "ASSUMED_NODE_NAME_LENGTH",
    "Placeholder",
    "TemplateError",
    "c_identifier_errors",
    "dns_label_errors",
    "dns_subdomain_errors",
    "driver_name_errors",
    "expand_template",
    "is_dns_label",
    "is_dns_subdomain",
    "is_label_value",
    "label_key_errors",
    "label_value_errors",
    "parse_int64",
    "parse_template",
    "pool_name_errors",
    "qualified_name_errors",
    "semver_errors",
    "short_hash",
    "short_node_name",
    "suggest_driver_name",
    "template_max_length",
]

#: The node name length assumed when checking lengths that depend on it (``<node>/<pool>``, ``{{node}}``).
#: Kubernetes allows 253, but kubelet (hostname), KWOK and Karpenter node names are at most 63 in practice;
#: longer names still render validly because the renderer shortens them (see :func:`short_node_name`).
ASSUMED_NODE_NAME_LENGTH = 63

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII)
_QUALIFIED_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", re.ASCII)
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_INT64 = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMERIC = r"(0|[1-9][0-9]*)"
_PRERELEASE = r"(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_BUILD = r"[0-9a-zA-Z-]+"
_SEMVER = re.compile(
    rf"{_NUMERIC}\.{_NUMERIC}\.{_NUMERIC}(-{_PRERELEASE}(\.{_PRERELEASE})*)?(\+{_BUILD}(\.{_BUILD})*)?", re.ASCII
)

_F = TypeVar("_F", bound=Callable[..., Sequence[str]])


def _memoized(function: _F) -> _F:
    """Cache a pure ``str -> problems`` check (the renderer re-checks the same names for every node).

    Results are returned as tuples so that a cached answer cannot be mutated by a caller.
    """
    cached = functools.lru_cache(maxsize=16384)(lambda *args, **kwargs: tuple(function(*args, **kwargs)))
    return functools.wraps(function)(cached)  # type: ignore[return-value]


_DNS_LABEL_HELP = "lowercase letters, digits and '-', starting and ending with a letter or digit"
_DNS_SUBDOMAIN_HELP = f"{_DNS_LABEL_HELP}, in parts joined by '.'"


def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and _DNS_SUBDOMAIN.fullmatch(value) is not None


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.fullmatch(value) is not None


@_memoized
def dns_label_errors(value: str, what: str = "name") -> list[str]:
    errors = []
    if not value:
        return [f"{what} must not be empty"]
    if len(value) > 63:
        errors.append(f"{what} {value!r} is {len(value)} characters; at most 63 are allowed")
    if not _DNS_LABEL.fullmatch(value):
        errors.append(f"{what} {value!r} is not a DNS label: use {_DNS_LABEL_HELP}")
    return errors


@_memoized
def dns_subdomain_errors(value: str, what: str = "name", max_length: int = 253) -> list[str]:
    errors = []
    if not value:
        return [f"{what} must not be empty"]
    if len(value) > max_length:
        errors.append(f"{what} is {len(value)} characters; at most {max_length} are allowed")
    if not _DNS_SUBDOMAIN.fullmatch(value):
        errors.append(f"{what} {value!r} is not a DNS subdomain: use {_DNS_SUBDOMAIN_HELP}")
    return errors


def suggest_driver_name(name: str) -> str:
    """A valid driver name close to ``name``: ``karpenter.sh/dra-kwok-driver`` → ``dra-kwok-driver.karpenter.sh``.

    A ``domain/name`` path is turned around into ``name.domain`` (the DNS convention for "name within
    domain"); invalid characters become '-'.  Falls back to ``<cleaned>.example.com`` forms when needed.
    """
    parts = [p for p in name.strip().lower().split("/") if p]
    candidate = ".".join(reversed(parts))
    candidate = re.sub(r"[^a-z0-9.-]+", "-", candidate)
    labels = [label.strip("-") for label in candidate.split(".")]
    labels = [label[:63].strip("-") for label in labels if label.strip("-")]
    while labels and len(".".join(labels)) > 63:
        if len(labels) > 1 and len(labels[0]) > 1:
            excess = len(".".join(labels)) - 63
            labels[0] = labels[0][: max(1, len(labels[0]) - excess)].strip("-") or "d"
        else:
            labels.pop(0)
    candidate = ".".join(labels)
    if candidate and is_dns_subdomain(candidate) and len(candidate) <= 63:
        return candidate
    return "dra-kwok.example.com"


@_memoized
def driver_name_errors(name: str, apiserver: bool = False) -> list[str]:
    """Problems with a DRA driver name.

    ``apiserver=True`` applies the apiserver's exact rule, which lowercases the name before checking it (it
    reuses the CSI driver name validation); dra-kwok itself also requires lowercase, because DeviceClass CEL
    expressions compare ``device.driver`` case-sensitively.
    """
    if not name:
        return ["required: set the DRA driver name, a lowercase DNS subdomain such as gpu.dra-kwok.x-k8s.io"]
    checked = name.lower() if apiserver else name
    problems = []
    if "/" in name:
        problems.append("'/' is not allowed")
    if len(name) > 63:
        problems.append(f"it is {len(name)} characters, at most 63 are allowed")
    if not _DNS_SUBDOMAIN.fullmatch(checked) and "/" not in name:
        if not apiserver and name != name.lower() and _DNS_SUBDOMAIN.fullmatch(name.lower()):
            problems.append("it must be lowercase")
        else:
            problems.append(f"it is not a DNS subdomain ({_DNS_SUBDOMAIN_HELP})")
    if not problems:
        return []
    if apiserver:
        return [f"invalid driver name {name!r}: " + "; ".join(problems)]
    return [
        f"invalid driver name {name!r}: " + "; ".join(problems)
        + f". A DRA driver name is a lowercase DNS subdomain of at most 63 characters; use e.g. "
        f"{suggest_driver_name(name)!r}"
    ]


@_memoized
def pool_name_errors(name: str, max_length: int = 253) -> list[str]:
    """The apiserver's pool name rule: one or more DNS subdomains joined by '/', at most 253 in total."""
    if not name:
        return ["required: set the pool name, e.g. gpu-pool"]
    errors = []
    if len(name) > max_length:
        errors.append(f"pool name is {len(name)} characters; at most {max_length} are allowed")
    for part in name.split("/"):
        if not part:
            errors.append(f"pool name {name!r} has an empty part: parts are joined by single '/'")
            break
        if not _DNS_SUBDOMAIN.fullmatch(part) or len(part) > 253:
            errors.append(
                f"pool name part {part!r} is not a DNS subdomain: a pool name is one or more DNS subdomains "
                f"({_DNS_SUBDOMAIN_HELP}) joined by '/'"
            )
    return errors


@_memoized
def c_identifier_errors(value: str, max_length: int = 32) -> list[str]:
    errors = []
    if len(value) > max_length:
        errors.append(f"{value!r} is {len(value)} characters; at most {max_length} are allowed")
    if not _C_IDENTIFIER.fullmatch(value):
        errors.append(f"{value!r} is not a C identifier: use letters, digits and '_', not starting with a digit")
    return errors


@_memoized
def qualified_name_errors(key: str) -> list[str]:
    """Attribute/capacity names: ``<C identifier ≤ 32>`` or ``<DNS subdomain ≤ 63>/<C identifier ≤ 32>``."""
    parts = key.split("/")
    if len(parts) == 1:
        if not key:
            return ["the name must not be empty"]
        return c_identifier_errors(key)
    if len(parts) > 2:
        return [f"{key!r} must not contain more than one '/'"]
    domain, name = parts
    errors = []
    if not domain:
        errors.append("the domain before '/' must not be empty")
    else:
        if len(domain) > 63:
            errors.append(f"the domain {domain!r} is {len(domain)} characters; at most 63 are allowed")
        if not _DNS_SUBDOMAIN.fullmatch(domain.lower()):
            errors.append(f"the domain {domain!r} is not a DNS subdomain ({_DNS_SUBDOMAIN_HELP})")
    if not name:
        errors.append("the name after '/' must not be empty")
    else:
        errors.extend(c_identifier_errors(name))
    return errors


@_memoized
def label_key_errors(key: str) -> list[str]:
    """A label key: ``[<DNS subdomain ≤ 253>/]<name ≤ 63>``."""
    parts = key.split("/")
    if len(parts) > 2:
        return [f"label key {key!r} may contain at most one '/'"]
    errors = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append(f"label key {key!r} has an empty prefix before '/'")
        else:
            errors.extend(dns_subdomain_errors(prefix, "label key prefix"))
    else:
        name = key
    if not name:
        errors.append("label key name must not be empty")
    else:
        if len(name) > 63:
            errors.append(f"label key name {name!r} is {len(name)} characters; at most 63 are allowed")
        if not _QUALIFIED_NAME_PART.fullmatch(name):
            errors.append(
                f"label key name {name!r} must use letters, digits, '-', '_' and '.', starting and ending with a "
                "letter or digit"
            )
    return errors


@_memoized
def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(f"label value {value!r} is {len(value)} characters; at most 63 are allowed")
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(
            f"label value {value!r} must be empty or use letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit"
        )
    return errors


def parse_int64(value: str) -> int | None:
    """Go's ``strconv.ParseInt(value, 10, 64)``: the integer, or None."""
    if not _INT64.fullmatch(value):
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


@_memoized
def semver_errors(value: str) -> list[str]:
    errors = []
    if not _SEMVER.fullmatch(value):
        hint = ""
        stripped = value[1:] if value[:1] in ("v", "V") else value
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", stripped, re.ASCII):
            parts = stripped.split(".")
            hint = f"; e.g. {'.'.join(str(int(p)) for p in (parts + ['0', '0'])[:3])!r}"
        elif stripped != value and _SEMVER.fullmatch(stripped):
            hint = f"; drop the leading {value[0]!r}: {stripped!r}"
        errors.append(
            f"{value!r} is not a semantic version (semver.org 2.0.0: MAJOR.MINOR.PATCH with optional -prerelease "
            f"and +build, no leading zeros){hint}"
        )
    size = len(value.encode("utf-8"))
    if size > 64:
        errors.append(f"version is {size} bytes; at most 64 are allowed")
    return errors


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def short_node_name(node_name: str) -> str:
    """``node_name`` if at most 63 characters, else ``<first 54, trimmed>-<8 hex of its SHA-256>``.

    For a valid node name the result is a valid DNS subdomain *and* label value of at most 63 characters, so
    it can go into a pool name, an attribute string and a label.
    """
    if len(node_name) <= 63:
        return node_name
    return f"{node_name[:54].rstrip('.-')}-{short_hash(node_name)}"


# ----------------------------------------------------------------------------------------------------------
# Placeholders.


class TemplateError(ValueError):
    """A string attribute uses an unknown or malformed placeholder."""


@dataclass(frozen=True)
class Placeholder:
    name: str  # node, device, index, hash, uuid
    length: int | None = None  # only for hash


TemplatePart = Union[str, Placeholder]

_PLACEHOLDER = re.compile(r"\{\{(node|device|index|uuid|hash(?::([0-9]{1,2}))?)\}\}", re.ASCII)
_AVAILABLE = "{{node}}, {{device}}, {{index}}, {{hash}}, {{hash:N}} (N = 1..64), {{uuid}}"


@functools.lru_cache(maxsize=4096)  # the renderer parses each device's template again: 18,400 times for 2,300 mappings
def parse_template(value: str) -> tuple[TemplatePart, ...]:
    """Split a string attribute into literal text and placeholders, or raise :class:`TemplateError`."""
    parts: list[TemplatePart] = []
    position = 0
    while True:
        start = value.find("{{", position)
        if start < 0:
            if position < len(value):
                parts.append(value[position:])
            return tuple(parts)
        match = _PLACEHOLDER.match(value, start)
        if match is None:
            end = value.find("}}", start)
            shown = value[start : end + 2] if end >= 0 else value[start:]
            raise TemplateError(f"unknown placeholder {shown!r}; available: {_AVAILABLE}")
        if start > position:
            parts.append(value[position:start])
        if match.group(1).startswith("hash"):
            length = int(match.group(2)) if match.group(2) else 8
            if not 1 <= length <= 64:
                raise TemplateError(f"{match.group(0)!r}: the hash length must be between 1 and 64")
            parts.append(Placeholder("hash", length))
        else:
            parts.append(Placeholder(match.group(1)))
        position = match.end()


def template_max_length(parts: tuple[TemplatePart, ...], device_name_length: int, index_length: int) -> int:
    """The most bytes (UTF-8) the expansion can take, with ``{{node}}`` at :data:`ASSUMED_NODE_NAME_LENGTH`.

    Bytes, because the apiserver measures strings with Go's ``len``; placeholders expand to ASCII.
    """
    total = 0
    for part in parts:
        if isinstance(part, str):
            total += len(part.encode("utf-8"))
        elif part.name == "node":
            total += ASSUMED_NODE_NAME_LENGTH
        elif part.name == "device":
            total += device_name_length
        elif part.name == "index":
            total += index_length
        elif part.name == "hash":
            total += part.length or 8
        elif part.name == "uuid":
            total += 36
    return total


def expand_template(
    parts: tuple[TemplatePart, ...], *, node_name: str | None, device: str, index: int, driver: str, pool: str
) -> str:
    """Fill in placeholders for one device.  ``{{node}}`` in a cluster-wide pool expands to ''."""
    out = []
    identity = f"{driver}/{pool}/{device}"
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part.name == "node":
            out.append(short_node_name(node_name) if node_name else "")
        elif part.name == "device":
            out.append(device)
        elif part.name == "index":
            out.append(str(index))
        elif part.name == "hash":
            out.append(short_hash(identity, part.length or 8))
        elif part.name == "uuid":
            out.append(str(uuid.uuid5(uuid.NAMESPACE_URL, f"dra-kwok://{identity}")))
    return "".join(out)
