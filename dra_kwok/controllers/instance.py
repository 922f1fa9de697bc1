"""The identity of one running driver instance: the value of the instance label on every slice it publishes.

Why: every instance used to claim every slice labelled ``app.kubernetes.io/managed-by=dra-kwok``, so a second
``dra-kwok run`` against the same cluster (a laptop with ``--config-file``, a ``--namespace`` typo, a second
Deployment) deleted what the first one created and the two fought at ~20,000 writes a minute. Now each instance
lists, watches, updates and deletes only the slices carrying its own ``dra-kwok.x-k8s.io/instance`` value, so
two instances with different identities never touch each other's slices, whatever their configs say.

The identity is derived from the config source, so that it is stable across restarts and replicas (replicas of
one Deployment share it and coordinate with ``--leader-elect``) and different for different sources:
``<namespace>.<configmap>`` for a ConfigMap, ``file-<12 hex of SHA-256 of the absolute path>`` for
``--config-file``; ``--instance`` overrides it (two laptops using the same path, say). Values are label values
(at most 63 characters of ``[A-Za-z0-9._-]``, alphanumeric at both ends); a derived value that would not be one
keeps a readable prefix and ends in a hash of the whole.
"""

from __future__ import annotations

import hashlib
import os
import re

from dra_kwok.config.formats import is_label_value

__all__ = ["InvalidInstance", "instance_name"]

MAX_LABEL_VALUE = 63
_HASH = 16


class InvalidInstance(ValueError):
    """An explicit ``--instance`` that is no label value."""


def _sha(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _label_safe(value: str) -> str:
    """`value` if it is a label value, else a readable prefix of its allowed characters and a hash of the whole."""
    if is_label_value(value):
        return value
    prefix = re.sub(r"[^A-Za-z0-9._-]", "-", value)[: MAX_LABEL_VALUE - _HASH - 1]
    prefix = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", prefix)
    digest = _sha(value, _HASH)
    return f"{prefix}-{digest}" if prefix else digest


def instance_name(*, namespace: str, configmap: str, config_file: str | None = None,
                  explicit: str | None = None) -> str:
    """The instance label value of a driver run with these settings (see the module docstring)."""
    if explicit:
        if not is_label_value(explicit):
            raise InvalidInstance(
                f"--instance {explicit!r}: must be a label value (at most 63 characters of letters, digits, '-', '_' "
                "and '.', beginning and ending with a letter or digit), e.g. --instance=laptop-alice")
        return explicit
    if config_file:
        return f"file-{_sha(os.path.abspath(config_file), 12)}"
    return _label_safe(f"{namespace}.{configmap}")
