"""Hostile input through the real CLI: every case of tests/corpus/hostile/ (alias bombs, a 50 MB document,
10,000 levels of nesting, binary garbage, wrong types everywhere, duplicate keys, non-UTF-8, python tags, ConfigMaps
whose config is hostile, empty files...) given to ``python -m dra_kwok validate`` as a subprocess, in text and
``--output json``, with an address-space limit of 1 GiB and a CPU limit.

Each must end with exit code 1 (not a valid config) or 2 (not read), name the line and column or the field path
(as the case in tests/corpus/hostile/cases.py says), never print a traceback, stay within the time and memory
bounds, and execute nothing (the python-tag cases would create a marker file).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "corpus" / "hostile"

MEMORY_LIMIT = 1024 * 1024 * 1024  # RLIMIT_AS of each CLI process: 1 GiB of address space
CPU_LIMIT = 60  # RLIMIT_CPU (seconds): the kernel stops a runaway process
MAX_CPU_SECONDS = 20.0  # what each run may use (measured: about 6 s for the worst case)
MAX_RSS = 512 * 1024 * 1024  # peak resident memory of each run (measured: under 150 MiB)
WALL_TIMEOUT = 90.0  # a hang guard only: CPU time is what is asserted (a busy CI machine stretches wall time)


def _load_cases():
    spec = importlib.util.spec_from_file_location("hostile_cases", CORPUS / "cases.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostile_cases"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


hostile = _load_cases()
CASES = hostile.CASES


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    cpu: float  # user + system seconds
    wall: float
    max_rss: int  # bytes

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _limits() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT))


def run_cli(*args: str, stdin: object = subprocess.DEVNULL) -> Run:
    """``python -m dra_kwok ARGS`` under the limits; its own rusage (wait4), so the CPU time is exactly its."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "dra_kwok", *args], cwd=ROOT, env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limits)
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: chunks.__setitem__(n, s.read()), daemon=True)
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for reader in readers:
        reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > WALL_TIMEOUT:
            proc.kill()  # reaped by the next wait4; the assertions below then fail with the output so far
        time.sleep(0.01)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    for reader in readers:
        reader.join(10)
    proc.stdout.close()
    proc.stderr.close()
    return Run(proc.returncode, chunks.get("out", b"").decode("utf-8", "replace"),
               chunks.get("err", b"").decode("utf-8", "replace"), usage.ru_utime + usage.ru_stime, wall,
               usage.ru_maxrss * 1024)


def assert_clean(run: Run, what: str) -> None:
    assert "Traceback" not in run.output, f"{what}: a traceback\n{run.output[-3000:]}"
    assert run.code in (1, 2), f"{what}: exit {run.code}\n{run.output[-3000:]}"
    assert run.cpu < MAX_CPU_SECONDS, f"{what}: {run.cpu:.1f} s of CPU"
    assert run.wall < WALL_TIMEOUT, f"{what}: killed after {run.wall:.0f} s"
    assert run.max_rss < MAX_RSS, f"{what}: {run.max_rss // 2**20} MiB resident"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def test_every_corpus_file_has_a_case_and_every_case_a_file() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name not in ("cases.py", "README.md", "__pycache__")}
    named = {c.name for c in CASES if c.generate is None and c.special is None}
    assert files == named, f"files without a case: {files - named}; cases without a file: {named - files}"
    assert len({c.name for c in CASES}) == len(CASES)
    for case in CASES:
        assert case.exit in (1, 2) and case.message
        # a location, or field paths; or neither for a path refused before it is read (a device)
        assert (case.line is not None) == (case.column is not None), case
        assert case.line is not None or case.paths or case.special == "dev-zero", case
        assert case.configmap in ("text", "data", None), case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_input_is_refused_cleanly_with_its_location(case, workdir: Path) -> None:
    path = case.path(workdir)
    with ThreadPoolExecutor(2) as pool:  # text and JSON at once: two cores
        text_run, json_run = pool.map(lambda extra: run_cli("validate", *extra, str(path)),
                                      [(), ("--output", "json")])
    for mode, run in (("text", text_run), ("json", json_run)):
        assert_clean(run, f"{case.name} ({mode})")
        assert run.code == case.exit, f"{case.name} ({mode}): exit {run.code}, expected {case.exit}\n{run.output}"

    # text: "FILE:LINE:COLUMN: error: [SOURCE: ]MESSAGE", or "FILE[:LINE:COLUMN]: error: PATH: MESSAGE"
    assert case.message in text_run.stderr, text_run.output[-3000:]
    if case.line is not None:
        inner = f"{case.source}: " if case.source else ""
        assert f"{path}:{case.line}:{case.column}: error: {inner}" in text_run.stderr, text_run.output[-3000:]
    for field_path in case.paths:
        assert f": error: {field_path}: " in text_run.stderr, (field_path, text_run.output[-3000:])

    # json: the same, as data
    [entry] = json.loads(json_run.stdout)
    assert entry["file"] == str(path) and entry["valid"] is False and entry["errors"], entry
    assert any(case.message in e["message"] for e in entry["errors"]), entry
    if case.line is not None:
        first = entry["errors"][0]
        assert (first["line"], first["column"], first["path"]) == (case.line, case.column, case.source), entry
    assert set(case.paths) <= {e["path"] for e in entry["errors"]}, entry

    if case.marker:
        assert not hostile.marker(workdir).exists(), "a hostile tag was executed"


def test_python_tags_execute_nothing(workdir: Path) -> None:
    """The static python-tag files would `touch /tmp/pwned`; generated ones touch a file in the test's directory."""
    pwned = Path("/tmp/pwned")
    before = pwned.stat().st_mtime_ns if pwned.exists() else None  # a stale file from elsewhere must not matter
    tagged = [c for c in CASES if c.marker or "python" in c.name]
    assert len(tagged) >= 5
    runs = [run_cli("validate", str(c.path(workdir))) for c in tagged]
    assert all(r.code == 2 and "could not determine a constructor" in r.stderr for r in runs)
    assert (pwned.stat().st_mtime_ns if pwned.exists() else None) == before
    assert not hostile.marker(workdir).exists()


def test_an_endless_stdin_is_refused_without_filling_memory() -> None:
    """Fault: `validate -` fed /dev/zero (a pipe that never ends): read at most 10 MiB + 1 byte, then refused."""
    with open("/dev/zero", "rb") as zero:
        run = run_cli("validate", "-", stdin=zero)
    assert_clean(run, "stdin /dev/zero")
    assert run.code == 2 and "-:1:1: error: input is larger than the limit of 10485760 bytes" in run.stderr


def test_one_invocation_over_the_whole_corpus_reports_each_file(workdir: Path) -> None:
    """All hostile files and one valid example in one `validate` call: each file gets its verdict, the valid one
    stays valid, and the exit code is the worst (2)."""
    cases = [c for c in CASES if "flood" not in c.name]  # the slowest ones (seconds each) are covered above
    paths = [str(c.path(workdir)) for c in cases] + [str(ROOT / "examples" / "gpu.yaml")]
    run = run_cli("validate", "--output", "json", *paths)
    assert_clean(run, "whole corpus")
    assert run.code == 2
    entries = json.loads(run.stdout)
    assert [e["file"] for e in entries] == paths
    assert [e["valid"] for e in entries] == [False] * len(cases) + [True]


def test_render_refuses_every_hostile_input_cleanly(workdir: Path) -> None:
    """`dra-kwok render FILE` reads configs with the same loader: one case of each kind gets the same exit code
    and an error line, never a traceback."""
    names = {"alias-bomb-billion-laughs.yaml", "alias-amplification-99-aliases-of-3000-devices.yaml",
             "document-50-mb.yaml", "sparse-3-gib.yaml", "dev-zero", "single-line-1-mb-string.yaml",
             "deep-nesting-10000-flow-sequences.yaml", "deep-nesting-10000-block-sequences.yaml",
             "binary-random-64-kib.bin", "binary-nul-bytes.yaml", "wrong-types-everywhere.yaml",
             "wrong-types-top-level-list.yaml", "huge-integer-5000-digits.yaml", "duplicate-keys.yaml",
             "latin-1.yaml", "utf-16-le-without-bom.yaml", "lone-surrogate-escape.yaml",
             "tag-python-object-apply-os-system.yaml", "tag-int-on-a-word.yaml", "configmap-config-alias-bomb.yaml",
             "configmap-config-wrong-types.yaml", "configmap-data-no-config-key.yaml", "empty.yaml",
             "only-comments.yaml"}
    cases = [c for c in CASES if c.name in names]
    assert len(cases) == len(names)

    def render(case):
        return case, run_cli("render", str(case.path(workdir)), "--labels", "type=kwok")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(render, cases))
    for case, run in results:
        assert_clean(run, f"render {case.name}")
        assert run.code == case.exit, (case.name, run.output[-2000:])
        assert "error:" in run.stderr and run.stdout == "", (case.name, run.output[-2000:])


# ----------------------------------------------------------------------------------------------------------------
# In-process regressions of the bugs the corpus found (fast, precise).


def test_characters_beyond_the_bmp_survive_the_controllers_json_manifest() -> None:
    """The ConfigMap controller hands the loader json.dumps(data), which writes an emoji as a surrogate pair of
    \\u escapes; PyYAML decoded each half alone, so a valid config with an emoji (even in a comment) was refused."""
    from dra_kwok.controllers.source import parse_and_validate

    text = hostile.VALID.replace("MODEL", '"T4 \U0001F680"') + "# \U0001F680 GPUs\n"
    config = parse_and_validate(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"config.yaml": text}}),
                                "configmap test")
    assert config.mappings[0].resource_slice.devices[0].attributes["model"].string == "T4 \U0001F680"


def test_a_lone_surrogate_is_refused_where_it_is_written() -> None:
    from dra_kwok.config import ParseError, load_config

    with pytest.raises(ParseError) as info:
        load_config('driver: "a\\udc80"\nmappings: []\n', "x.yaml")
    assert (info.value.line, info.value.column) == (1, 9) and "lone UTF-16 surrogate" in info.value.message


def test_the_node_budget_is_shared_by_all_documents_and_configmap_configs() -> None:
    """Each document alone is small; together they pass the limit (otherwise N documents cost N times it)."""
    from dra_kwok.config import ParseError, load_documents
    from dra_kwok.config.loader import MAX_EXPANDED_NODES

    # 2,000 nodes written, 4,000 once expanded, one alias: 30 of them stay under the written and alias limits
    pair = "a: &a [" + ", ".join(["x"] * 2_000) + "]\nb: *a\n"
    with pytest.raises(ParseError) as info:
        load_documents("---\n".join([pair] * 30))
    assert "more than 100000 nodes once aliases are expanded" in info.value.message
    # a ConfigMap's config is read by a loader of its own (its own 100 aliases), but from the same budget
    fan_out = "a: &a [" + ", ".join(["x"] * 99) + "]\nb: [" + ", ".join(["*a"] * 10) + "]\n"  # 1,100 expanded
    documents = MAX_EXPANDED_NODES // 1_000
    inner = json.dumps(fan_out)
    with pytest.raises(ParseError) as info:
        load_documents("---\n".join([f"kind: ConfigMap\ndata: {{config.yaml: {inner}}}\n"] * documents))
    assert "more than 100000 nodes once aliases are expanded" in info.value.message


@pytest.mark.parametrize("text", [
    "- a\n- b\n",  # a list
    "metadata: [1]\n",
    "metadata: {name: n, labels: {gpu: 1}}\n",  # a label value that is not a string
    "[" * 10_000 + "]" * 10_000 + "\n",  # deeper than Python's recursion limit
    (CORPUS / "alias-bomb-billion-laughs.yaml").read_text() + "metadata: {name: n, labels: {a: *lol9}}\n",
], ids=["list", "metadata-list", "int-label", "deep", "alias-bomb"])
def test_render_refuses_a_hostile_node_manifest_cleanly(tmp_path: Path, text: str) -> None:
    """`render --node FILE` reads a Node manifest: a hostile one is refused (exit 2), it does not crash render."""
    from click.testing import CliRunner

    from dra_kwok.cli import main

    node = tmp_path / "node.yaml"
    node.write_text(text)
    result = CliRunner().invoke(main, ["render", str(ROOT / "examples" / "gpu.yaml"), "--node", str(node)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "not a Node manifest" in result.output
