"""The hostile-input corpus: every case, what it attacks, and what `dra-kwok validate` must answer.

Small cases are files in this directory (read them: each starts with a ``# hostile:`` line, except those whose
point is to hold nothing). Big and binary ones are generated at test time by the functions below (a 50 MB file
is not committed). ``python tests/corpus/hostile/cases.py DIR`` writes every case into DIR, to try by hand:
``dra-kwok validate DIR/*``.

Each :class:`Case` says what the CLI must answer: the exit code (1: read, but not a valid config; 2: not read at
all), and *where*: ``line``/``column`` for input refused while reading (the CLI prints ``FILE:LINE:COLUMN:``),
``paths`` (field paths such as ``mappings[0].name``) for a structure or rule that is wrong, and a fragment of the
message. Used by tests/unit/config/test_hostile.py (the CLI as a subprocess, with memory and time limits) and
tests/integration/test_hostile_configmap.py (the same text in a real ConfigMap, against the running driver).
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024

VALID = """\
driver: gpu.dra-kwok.x-k8s.io
mappings:
  - name: gpu
    nodeSelectorTerms:
      - matchExpressions:
          - {key: type, operator: In, values: [kwok]}
    resourceSlice:
      pool: {name: gpu}
      devices:
        - name: gpu
          count: 2
          attributes:
            model: {string: MODEL}
"""


@dataclass(frozen=True)
class Case:
    name: str
    exit: int  # 1 invalid config, 2 unreadable
    message: str  # a fragment of the (first) error message
    line: int | None = None  # with column: where a read error is reported
    column: int | None = None
    paths: tuple[str, ...] = ()  # field paths that must all be reported (structure/rule errors)
    source: str = ""  # what line/column count in when not the file: a ConfigMap's "data[config.yaml]" value
    generate: Callable[[Path], bytes] | None = None  # None: the file of that name in this directory
    special: str | None = None  # "sparse": a sparse file of 3 GiB; "dev-zero": /dev/zero itself
    # How the case goes into a real ConfigMap: "text": the whole file as data["config.yaml"] (then the Event
    # names the same line/column or paths); "data": the file is a ConfigMap manifest, its data becomes the
    # ConfigMap's data (then the Event names the same paths, or some line of data[config.yaml]); None: cannot be
    # (not UTF-8, over 1 MiB, or data the apiserver refuses).
    configmap: str | None = "text"
    configmap_message: str | None = None  # the Event's message fragment, when not `message` (then it is all)
    marker: bool = False  # generate() writes a command that would create marker(directory) if executed

    def path(self, directory: Path) -> Path:
        """The file to give the CLI: this directory's file, or the case generated into ``directory``."""
        if self.special == "dev-zero":
            return Path("/dev/zero")
        if self.special == "sparse":
            target = directory / self.name
            with open(target, "wb") as f:
                f.truncate(3 * 1024 * MIB)  # no disk used: a hole
            return target
        if self.generate is None:
            return HERE / self.name
        target = directory / self.name
        target.write_bytes(self.generate(directory))
        return target


# --------------------------------------------------------------------------------------------------------------
# Generators (each takes the output directory, for cases that need a path inside it).

def marker(directory: Path) -> Path:
    """The file that a hostile tag would create if the loader ever executed anything."""
    return directory / "PWNED"


def _deep_flow_sequences(_: Path) -> bytes:
    return b"driver: gpu.dra-kwok.x-k8s.io\nmappings: " + b"[" * 10_000 + b"]" * 10_000 + b"\n"


def _deep_flow_mappings(_: Path) -> bytes:
    return b"driver: gpu.dra-kwok.x-k8s.io\nmappings: " + b"{a: " * 10_000 + b"x" + b"}" * 10_000 + b"\n"


def _deep_block_sequences(_: Path) -> bytes:
    return b"driver: gpu.dra-kwok.x-k8s.io\nmappings:\n  " + b"- " * 10_000 + b"x\n"


def _deep_block_mappings(_: Path) -> bytes:  # 1,000 levels of indentation: about 500 KB
    return b"".join(b" " * level + b"k:\n" for level in range(1_000)) + b" " * 1_000 + b"x\n"


def _deep_through_aliases(_: Path) -> bytes:
    # 40 levels written once, then aliased 30 levels down: 70 once expanded.
    return (b"a: &a " + b"[" * 40 + b"]" * 40 + b"\nmappings: " + b"[" * 30 + b"*a" + b"]" * 30 + b"\n")


def _amplified(devices: int) -> bytes:
    """One mapping of ``devices`` devices, then 99 aliases of it: within the alias limit, structurally valid."""
    names = ", ".join(f"{{name: d{i}}}" for i in range(devices))
    head = ("driver: gpu.dra-kwok.x-k8s.io\nmappings:\n  - &m {name: gpu, nodeSelectorTerms: [{matchExpressions: "
            f"[{{key: type, operator: In, values: [kwok]}}]}}], resourceSlice: {{pool: {{name: gpu}}, devices: "
            f"[{names}]}}}}\n")
    return (head + "  - *m\n" * 99).encode()


def _alias_amplification(_: Path) -> bytes:
    """3,000 devices aliased 99 times: 44 KB, 900,000 nodes once expanded. With the old limit of 1,000,000 it was
    read, and took about a minute of CPU to check; now it is refused while its aliases are counted."""
    return _amplified(3_000)


def _alias_amplification_under_the_limit(_: Path) -> bytes:
    """300 devices aliased 99 times: 5 KB, 90,000 nodes once expanded, just under the limit. So it is read and
    checked (about 5 s of CPU, the most a config of that size can cost) and refused by the rules."""
    return _amplified(300)


def _node_flood(_: Path) -> bytes:
    """Just under 10 MiB of short scalars: 5 million nodes to build, if nothing counted them."""
    body = b"a," * ((10 * MIB - 16) // 2)
    return b"mappings: [" + body + b"a]\n"


def _configmap_flood(_: Path) -> bytes:
    """ConfigMaps in one file, each config a small alias fan-out: each one passes, all of them together not."""
    inner = "a: &a [x, x, x, x, x, x, x, x, x, x]\\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\\n"
    document = f'kind: ConfigMap\ndata:\n  config.yaml: "{inner}"\n---\n'
    return (document * 2_000).encode()


def _empty_documents_flood(_: Path) -> bytes:
    return b"---\n" * 200_000


def _fifty_megabytes(_: Path) -> bytes:
    device = b"        - name: gpu\n          attributes: {model: {string: t4}}\n"
    head = VALID.split("      devices:\n")[0].encode() + b"      devices:\n"
    return head + device * ((50 * MIB) // len(device))


def _one_megabyte_string(_: Path) -> bytes:
    """A 1,000,000-character string on one line, in a string attribute (at most 64 bytes are allowed)."""
    return VALID.replace("MODEL", '"' + "x" * 1_000_000 + '"').encode()


def _one_megabyte_key(_: Path) -> bytes:
    return b"driver: gpu.dra-kwok.x-k8s.io\n" + b"k" * 1_000_000 + b": x\n"


def _random_bytes(_: Path) -> bytes:
    return random.Random(8).randbytes(64 * 1024)


def _elf_header(_: Path) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + random.Random(9).randbytes(4096)


def _nul_bytes(_: Path) -> bytes:
    return VALID.replace("MODEL", "t4\x00\x00evil").encode()


def _terminal_escapes(_: Path) -> bytes:
    return VALID.replace("MODEL", "\x1b[2J\x1b]0;owned\x07").encode()


def _latin1(_: Path) -> bytes:
    return VALID.replace("MODEL", "caf\u00e9-t4").encode("latin-1")


def _utf16_le(_: Path) -> bytes:
    return VALID.replace("MODEL", "t4").encode("utf-16-le")


def _utf16_be(_: Path) -> bytes:
    return VALID.replace("MODEL", "t4").encode("utf-16-be")


def _utf16_bom(_: Path) -> bytes:
    return VALID.replace("MODEL", "t4").encode("utf-16")


def _utf32(_: Path) -> bytes:
    return VALID.replace("MODEL", "t4").encode("utf-32")


def _surrogate_bytes(_: Path) -> bytes:  # U+D800 encoded as if it were a character (CESU-8 / WTF-8)
    return VALID.replace("MODEL", "t4").encode().replace(b"t4", b"t4\xed\xa0\x80", 1)


def _overlong_utf8(_: Path) -> bytes:  # '/' as an overlong two-byte sequence
    return VALID.replace("MODEL", "t4").encode().replace(b"t4", b"t4\xc0\xaf", 1)


def _huge_integer(_: Path) -> bytes:  # 5,000 digits: Python refuses to convert more than 4,300
    return VALID.replace("count: 2", "count: " + "9" * 5_000).encode()


def _python_subprocess(directory: Path) -> bytes:
    return (f'driver: !!python/object/apply:subprocess.check_call [["touch", "{marker(directory)}"]]\n'
            "mappings: []\n").encode()


def _python_eval(directory: Path) -> bytes:
    code = f"__import__('os').system('touch {marker(directory)}')"
    return f'mappings:\n  - name: !!python/object/apply:builtins.eval ["{code}"]\n'.encode()


def _configmap_python_exec(directory: Path) -> bytes:
    inner = f"driver: !!python/object/new:builtins.exec [\\\"open('{marker(directory)}', 'w')\\\"]\\n"
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dra-kwok-configmap}\n"
            f'data:\n  config.yaml: "{inner}"\n').encode()


def _json_manifest_lone_surrogate(_: Path) -> bytes:
    """What the controller builds from a ConfigMap, with a lone surrogate escape in the config."""
    text = VALID.replace("MODEL", '"t4 \\udc80"')
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"config.yaml": text}}).encode()


# --------------------------------------------------------------------------------------------------------------
# The corpus.

CASES: list[Case] = [
    # alias/anchor bombs
    Case("alias-bomb-billion-laughs.yaml", 2, "once aliases are expanded", 7, 7),
    Case("alias-bomb-in-mapping-keys-and-merges.yaml", 2, "once aliases are expanded", 6, 4),
    Case("alias-flood-101-aliases.yaml", 2, "more than 100 aliases", 3, 412),
    Case("alias-recursive.yaml", 2, "recursive alias", 3, 11),
    Case("alias-deep-through-aliases.yaml", 2, "nested deeper than 64 levels once aliases are expanded", 1, 4,
         generate=_deep_through_aliases),
    Case("alias-amplification-99-aliases-of-3000-devices.yaml", 2, "more than 100000 nodes once aliases are expanded",
         3, 3, generate=_alias_amplification),
    Case("alias-amplification-just-under-the-limit.yaml", 1, "duplicate mapping name 'gpu'",
         paths=("mappings[1].name", "mappings[99].name"), generate=_alias_amplification_under_the_limit),
    Case("configmap-flood-2000-configmaps-with-alias-fan-outs.yaml", 2,
         "more than 100000 nodes once aliases are expanded", 1, 1,
         source="data[config.yaml]", generate=_configmap_flood, configmap=None),
    # size
    Case("document-50-mb.yaml", 2, "input is larger than the limit of 10485760 bytes", 1, 1,
         generate=_fifty_megabytes, configmap=None),
    Case("sparse-3-gib.yaml", 2, "input is larger than the limit of 10485760 bytes", 1, 1, special="sparse",
         configmap=None),
    Case("dev-zero", 2, "a character device, not a regular file: give a regular file, or - for stdin",
         special="dev-zero", configmap=None),  # refused before any read (issue #18: never block on a path)
    Case("node-flood-10-mib.yaml", 2, "more than 100000 YAML nodes", 1, 200_006, generate=_node_flood,
         configmap=None),
    Case("empty-documents-flood.yaml", 2, "more than 100000 YAML nodes", 100_002, 1,
         generate=_empty_documents_flood,  # in a ConfigMap the outer manifest's nodes count too: a bit earlier
         configmap_message="more than 100000 YAML nodes (mappings, lists, scalars); refusing"),
    Case("single-line-1-mb-string.yaml", 1, "string is 1000000 bytes",
         paths=("mappings[0].resourceSlice.devices[0].attributes[model].string",), generate=_one_megabyte_string),
    Case("single-line-1-mb-key.yaml", 2, "could not find expected ':'", 2, 1_000_001,
         generate=_one_megabyte_key),
    # deep nesting
    Case("deep-nesting-10000-flow-sequences.yaml", 2, "nested deeper than 64 levels", 2, 74,
         generate=_deep_flow_sequences),
    Case("deep-nesting-10000-flow-mappings.yaml", 2, "nested deeper than 64 levels", 2, 263,
         generate=_deep_flow_mappings),
    Case("deep-nesting-10000-block-sequences.yaml", 2, "nested deeper than 64 levels", 3, 129,
         generate=_deep_block_sequences),
    Case("deep-nesting-1000-block-mappings.yaml", 2, "nested deeper than 64 levels", 65, 65,
         generate=_deep_block_mappings),
    # binary garbage
    Case("binary-random-64-kib.bin", 2, "not UTF-8", 1, 5, generate=_random_bytes, configmap=None),
    Case("binary-elf-header.bin", 2, "not UTF-8", 1, 18, generate=_elf_header, configmap=None),
    Case("binary-nul-bytes.yaml", 2, "unacceptable character #x0000", 13, 31, generate=_nul_bytes),
    Case("binary-terminal-escapes.yaml", 2, "unacceptable character #x001b", 13, 29, generate=_terminal_escapes),
    # wrong types
    Case("wrong-types-everywhere.yaml", 1, "expected a string, got a mapping", paths=(
        "driver", "mappings[0].name", "mappings[0].nodeSelectorTerms", "mappings[0].resourceSlice.pool",
        "mappings[0].resourceSlice.allNodes", "mappings[0].resourceSlice.devices", "mappings[1].name",
        "mappings[1].nodeSelectorTerms[0].matchExpressions", "mappings[1].resourceSlice", "mappings[2].name",
        "mappings[2].nodeSelectorTerms[0].matchExpressions[0].key",
        "mappings[2].nodeSelectorTerms[0].matchExpressions[0].operator",
        "mappings[2].nodeSelectorTerms[0].matchExpressions[0].values", "mappings[2].resourceSlice.pool.name",
        "mappings[2].resourceSlice.pool.resourceSliceCount", "mappings[2].resourceSlice.devices[0].name",
        "mappings[2].resourceSlice.devices[0].count", "mappings[2].resourceSlice.devices[0].attributes",
        "mappings[2].resourceSlice.devices[0].capacity[memory].value", "mappings[2].resourceSlice.devices[1]",
        "mappings[2].resourceSlice.devices[2]", "mappings[2].resourceSlice.devices[3].attributes[type]",
        "mappings[2].resourceSlice.devices[3].attributes[cores].int",
        "mappings[2].resourceSlice.devices[3].attributes[fast].bool",
        "mappings[2].resourceSlice.devices[3].attributes[v].version", "mappings[3]", "mappings[4]")),
    Case("wrong-types-booleans-and-numbers-as-keys.yaml", 1, "field names must be strings, got boolean true",
         paths=("mappings[0]", "mappings[0].resourceSlice.devices[0].attributes")),
    Case("wrong-types-top-level-list.yaml", 2, "the top level must be a mapping", 2, 1),
    Case("wrong-types-top-level-scalar.yaml", 2, "got integer 12345", 2, 1),
    Case("huge-integer-5000-digits.yaml", 2, "as !!int", 11, 18, generate=_huge_integer),
    Case("impossible-date.yaml", 2, "as !!timestamp (day is out of range for month)", 4, 11),
    # duplicate keys
    Case("duplicate-keys.yaml", 2, "found duplicate key 'type' (first on line 13)", 14, 13),
    Case("duplicate-keys-yaml-1-1-booleans.yaml", 2, "found duplicate key True (first on line 5)", 6, 5),
    Case("duplicate-keys-top-level.yaml", 2, "found duplicate key 'driver' (first on line 2)", 4, 1),
    # not UTF-8
    Case("latin-1.yaml", 2, "not UTF-8: byte 0xe9", 13, 32, generate=_latin1, configmap=None),
    Case("utf-16-le-without-bom.yaml", 2, "unacceptable character #x0000", 1, 2, generate=_utf16_le,
         configmap=None),
    Case("utf-16-be-without-bom.yaml", 2, "unacceptable character #x0000", 1, 1, generate=_utf16_be,
         configmap=None),
    Case("utf-16-with-bom.yaml", 2, "not UTF-8: byte 0xff", 1, 1, generate=_utf16_bom, configmap=None),
    Case("utf-32-with-bom.yaml", 2, "not UTF-8: byte 0xff", 1, 1, generate=_utf32, configmap=None),
    Case("lone-surrogate-bytes.yaml", 2, "not UTF-8: byte 0xed", 13, 31, generate=_surrogate_bytes,
         configmap=None),
    Case("overlong-utf-8.yaml", 2, "not UTF-8: byte 0xc0", 13, 31, generate=_overlong_utf8, configmap=None),
    Case("lone-surrogate-escape.yaml", 2, "lone UTF-16 surrogate", 13, 29),
    Case("lone-surrogate-in-the-controllers-json.json", 2, "lone UTF-16 surrogate", 13, 29,
         source="data[config.yaml]", generate=_json_manifest_lone_surrogate, configmap=None),
    # tags: nothing may be executed
    Case("tag-python-object-apply-os-system.yaml", 2, "could not determine a constructor", 2, 1),
    Case("tag-python-in-a-field.yaml", 2, "could not determine a constructor", 9, 20),
    Case("tag-python-subprocess-check-call.yaml", 2, "could not determine a constructor", 1, 9,
         generate=_python_subprocess, marker=True),
    Case("tag-python-eval.yaml", 2, "could not determine a constructor", 2, 11, generate=_python_eval,
         marker=True),
    Case("tag-custom-and-explicit-standard-tags.yaml", 2, "could not determine a constructor for the tag '!vault'",
         2, 9),
    Case("tag-binary.yaml", 2, "failed to decode base64 data", 2, 9),
    Case("tag-set-and-omap.yaml", 1, "expected a list of mappings, got a set", paths=("mappings", "extra")),
    Case("tag-int-on-a-word.yaml", 2, "cannot read 'many' as !!int", 7, 45),
    Case("tag-empty-timestamp.yaml", 2, "cannot read '' as !!timestamp", 2, 9),
    Case("yaml-directives-and-anchors-soup.yaml", 2, "found undefined alias 'y'", 5, 16),
    # invalid YAML
    Case("invalid-yaml-unclosed-flow.yaml", 2, "expected the node content, but found '<stream end>'", 4, 1),
    Case("invalid-yaml-tabs-for-indentation.yaml", 2, "found character '\\t' that cannot start any token", 4, 1),
    # ConfigMaps whose config is hostile, or whose data is
    Case("configmap-config-alias-bomb.yaml", 2, "once aliases are expanded", 14, 8, configmap="data"),
    Case("configmap-config-python-tag.yaml", 2, "could not determine a constructor", 10, 15, configmap="data"),
    Case("configmap-config-python-exec.yaml", 2, "could not determine a constructor", 1, 9,
         source="data[config.yaml]", generate=_configmap_python_exec, configmap="data", marker=True),
    Case("configmap-config-wrong-types.yaml", 1, "expected a string, got a list", paths=(
        "driver", "mappings[0].name", "mappings[0].resourceSlice.pool", "mappings[0].resourceSlice.devices"),
         configmap="data"),
    Case("configmap-config-duplicate-keys.yaml", 2, "found duplicate key 'mappings' (first on line 10)", 11, 5,
         configmap="data", configmap_message="found duplicate key 'mappings' (first on line 2)"),
    Case("configmap-config-control-characters.yaml", 2, "unacceptable character #x0000", 1, 12,
         source="data[config.yaml]", configmap="data"),
    Case("configmap-config-deep-nesting.yaml", 2, "nested deeper than 64 levels", 2, 74,
         source="data[config.yaml]", configmap="data"),
    Case("configmap-config-is-another-configmap.yaml", 2, "holds another ConfigMap", 9, 5, configmap="data"),
    Case("configmap-config-two-documents.yaml", 2, "must hold exactly one YAML document, found 2", 12, 5,
         configmap="data"),
    Case("configmap-config-binary-garbage.yaml", 2, "unacceptable character #x007f", 1, 1,
         source="data[config.yaml]", configmap="data"),
    Case("configmap-config-empty.yaml", 1, "is empty", paths=("data[config.yaml]",), configmap="data"),
    Case("configmap-data-no-config-key.yaml", 1, "no config key", paths=("data",), configmap="data"),
    Case("configmap-data-two-yaml-keys.yaml", 1, "more than one config key", paths=("data",), configmap="data"),
    Case("configmap-data-config-not-text.yaml", 1, "expected the config as text", paths=("data[config.yaml]",),
         configmap=None),
    Case("configmap-data-is-a-list.yaml", 1, "expected a mapping of key to text, got a list", paths=("data",),
         configmap=None),
    Case("configmap-without-data.yaml", 1, "the ConfigMap has no data", paths=("data",), configmap="data",
         configmap_message="data: no config key"),  # its binaryData is not read: a real ConfigMap has data {}
    Case("kind-secret.yaml", 1, "unsupported kind 'Secret'", paths=("kind",),
         configmap_message="kind: unknown field"),  # inside a ConfigMap it is read as a raw config
    # nothing at all (in a ConfigMap: an empty data["config.yaml"])
    Case("empty.yaml", 2, "no YAML document found", 1, 1, configmap_message="data[config.yaml]: is empty"),
    Case("only-comments.yaml", 2, "no YAML document found", 1, 1, configmap_message="data[config.yaml]: is empty"),
    Case("only-whitespace.yaml", 2, "found character '\\t' that cannot start any token", 2, 1),
    Case("document-marker-only.yaml", 2, "no YAML document found", 1, 1,
         configmap_message="data[config.yaml]: is empty"),
    Case("empty-documents-only.yaml", 2, "no YAML document found", 1, 1,
         configmap_message="data[config.yaml]: is empty"),
]


def write_all(directory: Path) -> list[Path]:
    """Every case as a file in ``directory`` (the sparse one included: it uses no disk)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for case in CASES:
        path = case.path(directory)
        if path.parent != directory and case.special != "dev-zero":
            (directory / case.name).write_bytes(path.read_bytes())
            path = directory / case.name
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")):
        print(written)
