"""dra-kwok's configuration core: YAML → typed :class:`Config` → list of problems.  Pure: no I/O, no cluster.

``load_config``/``load_documents`` read text (a raw config or a ConfigMap manifest) and raise
:class:`ParseError` (unreadable YAML) or :class:`ConfigInvalid` (wrong structure: unknown fields, wrong
types).  ``validate`` then returns every violation of the config's own rules as a :class:`FieldError` with a
field path.  This package imports nothing else of dra-kwok but the leaf `runtime.duration` (Go durations): the
slices it renders to, and the apiserver's rules for them, live in :mod:`dra_kwok.slices`; the full verdict on a config is
:func:`dra_kwok.accept.validate`.
"""

from dra_kwok.config.errors import ConfigInvalid, FieldError, ParseError, errors_only
from dra_kwok.config.loader import load_config, load_documents
from dra_kwok.config.types import Config
from dra_kwok.config.validation import validate

__all__ = [
    "Config",
    "ConfigInvalid",
    "FieldError",
    "ParseError",
    "errors_only",
    "load_config",
    "load_documents",
    "validate",
]
