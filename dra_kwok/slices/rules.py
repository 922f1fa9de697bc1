"""The apiserver's ResourceSlice validation (resource.k8s.io/v1, as of 1.34-1.37), for rendered bodies.

Why here: these are the API's rules for the objects we publish, not rules of the user's config. They are ported from
``pkg/apis/resource/validation`` and checked case by case against a real apiserver
(tests/integration/test_validation_agrees.py). Paths are the apiserver's (``spec.devices[3].name``).
Beyond the apiserver, :func:`validate_slice` also refuses fields that an apiserver without their feature gate would
drop (the driver would rewrite the slice forever) and unknown fields (a renderer bug, not something to send).
"""

from __future__ import annotations

from typing import Any

from dra_kwok.config.errors import FieldError, Report
from dra_kwok.config.formats import (
    dns_label_errors,
    dns_subdomain_errors,
    driver_name_errors,
    label_key_errors,
    label_value_errors,
    pool_name_errors,
    qualified_name_errors,
    semver_errors,
)
from dra_kwok.config.quantity import QuantityError, parse_quantity
from dra_kwok.config.validation import (
    MAX_ATTRIBUTES_AND_CAPACITIES,
    MAX_DEVICES_PER_SLICE,
    MAX_STRING_LENGTH,
)

__all__ = ["validate_slice"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SPEC_FIELDS = {"driver", "pool", "nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection", "devices",
                "sharedCounters"}
_DEVICE_FIELDS = {"name", "attributes", "capacity", "consumesCounters", "nodeName", "nodeSelector", "allNodes",
                  "taints", "bindsToNode", "bindingConditions", "bindingFailureConditions",
                  "allowMultipleAllocations"}
_ALPHA_SPEC = {"sharedCounters", "perDeviceNodeSelection"}
_ALPHA_DEVICE = {"consumesCounters", "nodeName", "nodeSelector", "allNodes", "taints", "bindsToNode",
                 "bindingConditions", "bindingFailureConditions", "allowMultipleAllocations"}


def _slice_node_selector(report: Report, selector: Any, path: str) -> None:
    if not isinstance(selector, dict):
        report.error(path, "must be an object")
        return
    terms = selector.get("nodeSelectorTerms") or []
    if not isinstance(terms, list):
        report.error(f"{path}.nodeSelectorTerms", "must be a list")
        return
    if not terms:
        report.error(f"{path}.nodeSelectorTerms", "Required value: must have at least one node selector term")
        return
    for i, term in enumerate(terms):
        term_path = f"{path}.nodeSelectorTerms[{i}]"
        if not isinstance(term, dict):
            report.error(term_path, "must be an object")
            continue
        for j, req in enumerate(term.get("matchExpressions") or []):
            req_path = f"{term_path}.matchExpressions[{j}]"
            operator, values = req.get("operator"), req.get("values") or []
            if operator in ("In", "NotIn"):
                if not values:
                    report.error(f"{req_path}.values", "Required value: must be specified when `operator` is 'In' or "
                                 "'NotIn'")
            elif operator in ("Exists", "DoesNotExist"):
                if values:
                    report.error(f"{req_path}.values", "Forbidden: may not be specified when `operator` is 'Exists' "
                                 "or 'DoesNotExist'")
            elif operator in ("Gt", "Lt"):
                if len(values) != 1:
                    report.error(f"{req_path}.values", "Required value: must be specified single value when "
                                 "`operator` is 'Lt' or 'Gt'")
            else:
                report.error(f"{req_path}.operator", f"Invalid value: {operator!r}: not a valid selector operator")
            report.extend(f"{req_path}.key", label_key_errors(str(req.get("key", ""))))
            for k, value in enumerate(values):
                report.extend(f"{req_path}.values[{k}]", label_value_errors(str(value)))
        for j, req in enumerate(term.get("matchFields") or []):
            req_path = f"{term_path}.matchFields[{j}]"
            values = req.get("values") or []
            if req.get("operator") in ("In", "NotIn"):
                if len(values) != 1:
                    report.error(f"{req_path}.values", "Required value: must be only one value when `operator` is "
                                 "'In' or 'NotIn' for node field selector")
            else:
                report.error(f"{req_path}.operator", f"Invalid value: {req.get('operator')!r}: not a valid selector "
                             "operator")
            if req.get("key") != "metadata.name":
                report.error(f"{req_path}.key", f"Invalid value: {req.get('key')!r}: not a valid field selector key")
            else:
                for k, value in enumerate(values):
                    report.extend(f"{req_path}.values[{k}]", dns_subdomain_errors(str(value), "node name"))
    if len(terms) != 1:
        report.error(f"{path}.nodeSelectorTerms", "Invalid value: must have exactly one node selector term")


def _slice_attribute(report: Report, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        report.error(path, "must be an object")
        return
    count = 0
    for key, item in value.items():
        item_path = f"{path}.{key}"
        if key == "bool":
            count += 1
            if not isinstance(item, bool):
                report.error(item_path, "must be a boolean")
        elif key == "int":
            count += 1
            if not isinstance(item, int) or isinstance(item, bool) or not _INT64_MIN <= item <= _INT64_MAX:
                report.error(item_path, "must be a 64-bit integer")
        elif key == "string":
            count += 1
            if not isinstance(item, str):
                report.error(item_path, "must be a string")
            elif len(item.encode("utf-8")) > MAX_STRING_LENGTH:
                report.error(item_path, f"Too long: may not be more than {MAX_STRING_LENGTH} bytes")
        elif key == "version":
            count += 1
            if not isinstance(item, str):
                report.error(item_path, "must be a string")
            else:
                report.extend(item_path, semver_errors(item))
        else:
            report.error(item_path, "unknown field (list-valued attributes need an alpha feature gate)")
    if count != 1:
        report.error(path, "Invalid value: exactly one value must be specified")


def _slice_device(report: Report, device: Any, path: str) -> None:
    if not isinstance(device, dict):
        report.error(path, "must be an object")
        return
    for key in device:
        if key not in _DEVICE_FIELDS:
            report.error(f"{path}.{key}", "unknown field")
        elif key in _ALPHA_DEVICE:
            report.error(f"{path}.{key}", "dropped by an apiserver without the alpha feature gate; the driver would "
                         "update forever")
    name = device.get("name")
    report.extend(f"{path}.name", dns_label_errors(name if isinstance(name, str) else "", "device name"))
    attributes = device.get("attributes") or {}
    capacity = device.get("capacity") or {}
    if not isinstance(attributes, dict) or not isinstance(capacity, dict):
        report.error(path, "attributes and capacity must be objects")
        return
    if len(attributes) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        report.error(path, f"Invalid value: {len(attributes) + len(capacity)}: the total number of attributes and "
                     f"capacities must not exceed {MAX_ATTRIBUTES_AND_CAPACITIES}")
    for key, value in attributes.items():
        key_path = f"{path}.attributes[{key}]"
        report.extend(f"{path}.attributes", qualified_name_errors(str(key)))
        _slice_attribute(report, value, key_path)
    for key, value in capacity.items():
        key_path = f"{path}.capacity[{key}]"
        report.extend(f"{path}.capacity", qualified_name_errors(str(key)))
        if not isinstance(value, dict):
            report.error(key_path, "must be an object")
            continue
        for field_name in value:
            if field_name == "requestPolicy":
                report.error(f"{key_path}.requestPolicy", "Forbidden: allowMultipleAllocations must be true")
            elif field_name != "value":
                report.error(f"{key_path}.{field_name}", "unknown field")
        quantity = value.get("value")
        if isinstance(quantity, int) and not isinstance(quantity, bool):
            quantity = str(quantity)
        if not isinstance(quantity, str):
            report.error(f"{key_path}.value", "Required value: a quantity")
            continue
        try:
            parse_quantity(quantity)
        except QuantityError as exc:
            report.error(f"{key_path}.value", f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({exc})")


def validate_slice(body: dict[str, Any]) -> list[FieldError]:
    """The apiserver's create-time validation of a ResourceSlice body (paths as the apiserver reports them).

    Beyond the apiserver it also refuses fields that an apiserver without alpha gates would drop, and
    unknown fields — a renderer bug, not something to send.
    """
    report = Report()
    if not isinstance(body, dict):
        return [FieldError("<object>", "expected a ResourceSlice object")]
    if body.get("apiVersion") != "resource.k8s.io/v1":
        report.error("apiVersion", f"expected resource.k8s.io/v1, got {body.get('apiVersion')!r}")
    if body.get("kind") != "ResourceSlice":
        report.error("kind", f"expected ResourceSlice, got {body.get('kind')!r}")

    metadata = body.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        report.error("metadata.name", "Required value: name or generateName is required")
    else:
        report.extend("metadata.name", dns_subdomain_errors(str(name), "name"))
    labels = metadata.get("labels") or {}
    for key, value in labels.items():
        report.extend("metadata.labels", label_key_errors(str(key)))
        report.extend("metadata.labels", label_value_errors(str(value)) if isinstance(value, str)
                      else ["label values must be strings"])
    controllers = 0
    for i, owner in enumerate(metadata.get("ownerReferences") or []):
        owner_path = f"metadata.ownerReferences[{i}]"
        for field_name in ("apiVersion", "kind", "name", "uid"):
            if not owner.get(field_name):
                report.error(f"{owner_path}.{field_name}", "Required value")
        controllers += 1 if owner.get("controller") is True else 0
    if controllers > 1:
        report.error("metadata.ownerReferences", "Invalid value: Only one reference can have Controller set to true")

    spec = body.get("spec")
    if not isinstance(spec, dict):
        report.error("spec", "Required value")
        return report.items
    for key in spec:
        if key not in _SPEC_FIELDS:
            report.error(f"spec.{key}", "unknown field")
        elif key in _ALPHA_SPEC:
            report.error(f"spec.{key}", "dropped by an apiserver without the alpha feature gate; the driver would "
                         "update forever")
    driver = spec.get("driver")
    report.extend("spec.driver", driver_name_errors(driver if isinstance(driver, str) else "", apiserver=True))

    pool = given if isinstance(given := spec.get("pool"), dict) else {}
    pool_name = pool.get("name")
    report.extend("spec.pool.name", pool_name_errors(pool_name if isinstance(pool_name, str) else ""))
    count = pool.get("resourceSliceCount", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        report.error("spec.pool.resourceSliceCount", f"Invalid value: {count!r}: must be greater than zero")
    generation = pool.get("generation", 0)
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        report.error("spec.pool.generation", f"Invalid value: {generation!r}: must be greater than or equal to zero")

    selected = []
    if "nodeName" in spec and spec["nodeName"] is not None:
        node_name = spec["nodeName"]
        if node_name == "" or not isinstance(node_name, str):
            report.error("spec.nodeName", "Invalid value: must be either unset or set to a non-empty string")
        else:
            selected.append("nodeName")
            report.extend("spec.nodeName", dns_subdomain_errors(node_name, "node name"))
    if spec.get("nodeSelector") is not None:
        selected.append("nodeSelector")
        _slice_node_selector(report, spec["nodeSelector"], "spec.nodeSelector")
    if spec.get("allNodes") is not None:
        if spec["allNodes"] is True:
            selected.append("allNodes")
        else:
            report.error("spec.allNodes", "Invalid value: must be either unset or set to true")
    if spec.get("perDeviceNodeSelection") is not None:
        if spec["perDeviceNodeSelection"] is True:
            selected.append("perDeviceNodeSelection")
        else:
            report.error("spec.perDeviceNodeSelection", "Invalid value: must be either unset or set to true")
    if not selected:
        report.error("spec", "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, "
                     "`perDeviceNodeSelection` is required")
    elif len(selected) > 1:
        report.error("spec", f"Invalid value: {{{', '.join(selected)}}}: exactly one of `nodeName`, `nodeSelector`, "
                     "`allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set")
    if spec.get("sharedCounters") is not None and spec.get("devices") is not None:
        report.error("spec", "Invalid value: only one of `sharedCounters` or `devices` is allowed")

    devices = spec.get("devices") or []
    if not isinstance(devices, list):
        report.error("spec.devices", "must be a list")
        return report.items
    if len(devices) > MAX_DEVICES_PER_SLICE:
        report.error("spec.devices", f"Too many: {len(devices)}: must have at most {MAX_DEVICES_PER_SLICE} items")
        return report.items
    seen: set[str] = set()
    for i, device in enumerate(devices):
        _slice_device(report, device, f"spec.devices[{i}]")
        device_name = device.get("name") if isinstance(device, dict) else None
        if isinstance(device_name, str):
            if device_name in seen:
                report.error(f"spec.devices[{i}]", f"Duplicate value: {device_name!r}")
            seen.add(device_name)
    return report.items
