"""What the driver reports about a rejected config is bounded (#19): the log line and the Warning Event carry the
first errors and a count of the rest; `dra-kwok validate` prints them all."""

from __future__ import annotations

from click.testing import CliRunner

from dra_kwok.cli import main
from dra_kwok.controllers.source import (
    _EVENT_PREFIX,
    MAX_REPORTED_ERROR_LENGTH,
    MAX_REPORTED_ERRORS,
    cap_errors,
)
from dra_kwok.runtime.events import MAX_MESSAGE

ERRORS = [f"mappings[{i}].resourceSlice.devices[0].capacity[memory].value: invalid quantity '80GB'" for i in range(2300)]


def test_log_line_carries_the_first_errors_and_a_count() -> None:
    capped = cap_errors(ERRORS)
    assert capped[:MAX_REPORTED_ERRORS] == ERRORS[:MAX_REPORTED_ERRORS]
    assert capped[-1] == f"and {2300 - MAX_REPORTED_ERRORS} more; run `dra-kwok validate` for the full list"
    assert len(capped) == MAX_REPORTED_ERRORS + 1


def test_event_fits_the_event_limit_with_the_count_at_the_end() -> None:
    capped = cap_errors(ERRORS, MAX_MESSAGE - len(_EVENT_PREFIX))
    message = _EVENT_PREFIX + "; ".join(capped)
    assert len(message) <= MAX_MESSAGE  # so the recorder never cuts the count off
    shown = len(capped) - 1
    assert 1 <= shown < MAX_REPORTED_ERRORS and capped[:shown] == ERRORS[:shown]
    assert message.endswith(f"and {2300 - shown} more; run `dra-kwok validate` for the full list")


def test_a_huge_error_is_cut_and_few_errors_are_kept_whole() -> None:
    assert cap_errors(["a", "b"]) == ["a", "b"]
    [cut] = cap_errors(["driver: " + "x" * 10_000_000])
    assert len(cut) < MAX_REPORTED_ERROR_LENGTH + 40 and cut.endswith("... (10000008 characters)")


def test_validate_still_prints_every_error(tmp_path) -> None:
    mappings = "".join(
        f"  - name: m{i}\n    nodeSelectorTerms: [{{matchExpressions: [{{key: t, operator: In, values: [k]}}]}}]\n"
        f"    resourceSlice: {{pool: {{name: p{i}}}, devices: [{{name: d, attributes: {{a: {{int: 1}}}}, "
        f"capacity: {{m: {{value: 80GB}}}}}}]}}\n"
        for i in range(50)
    )
    path = tmp_path / "c.yaml"
    path.write_text("driver: gpu.example.com\nmappings:\n" + mappings)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert sum("invalid quantity '80GB'" in line for line in result.output.splitlines()) == 50
