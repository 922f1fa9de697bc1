"""dra-kwok's configuration core: YAML → typed :class:`Config` → list of problems.  Pure: no I/O, no cluster.

``load_config``/``load_documents`` read text (a raw config or a ConfigMap manifest) and raise
:class:`ParseError` (unreadable YAML) or :class:`ConfigInvalid` (wrong structure: unknown fields, wrong
types).  ``validate`` then returns every rule violation as a :class:`FieldError` with a field path; the
config is usable when none has ``severity == "error"``.  Rendering lives in :mod:`dra_kwok.slices.render`.
"""

from dra_kwok.config.errors import ConfigInvalid, FieldError, ParseError, errors_only
from dra_kwok.config.loader import load_config, load_documents
from dra_kwok.config.types import Config
from dra_kwok.config.validation import validate, validate_slice

__all__ = [
    "Config",
    "ConfigInvalid",
    "FieldError",
    "ParseError",
    "errors_only",
    "load_config",
    "load_documents",
    "validate",
    "validate_slice",
]
