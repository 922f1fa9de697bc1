"""Go duration strings, by value: what `dra-kwok run --resync-period 30s` and friends accept and show."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dra_kwok.runtime.duration import DurationError, format_duration, parse_duration


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5h", 5400.0), ("2h45m", 9900.0),
    ("1h2m3.5s", 3723.5), (".5s", 0.5), ("250us", 0.00025), ("250µs", 0.00025), ("10ns", 1e-8), ("0s", 0.0),
    ("0", 0.0), ("30", 30.0), ("0.5", 0.5), (" 30s ", 30.0), (7, 7.0), (2.5, 2.5),
])
def test_parses_go_durations_and_plain_seconds(text, seconds) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "30x", "1m30", "-1s", "-5", "abc", "1e3", "1 m", "30S", "1d", "nan", True])
def test_refuses_anything_else_and_says_what_is_accepted(text) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert "30s, 1m30s, 500ms" in str(err.value) and "plain number of seconds" in str(err.value)


@pytest.mark.parametrize("seconds, text", [
    (30.0, "30s"), (90.0, "1m30s"), (120.0, "2m0s"), (3600.0, "1h0m0s"), (0.5, "500ms"), (0.0, "0s"), (2.5, "2.5s"),
    (60.0, "1m0s"), (0.00025, "250µs"),
])
def test_formats_like_go(seconds, text) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_the_cli_takes_durations_and_refuses_bad_ones_with_the_accepted_forms(mocker) -> None:
    from dra_kwok.cli import main

    app = mocker.patch("dra_kwok.app.App")
    app.return_value.run.return_value = 0
    mocker.patch("dra_kwok.runtime.log.setup")
    result = CliRunner().invoke(main, ["run", "--resync-period", "1m30s", "--lease-duration", "20"])
    assert result.exit_code == 0, result.output
    settings = app.call_args.args[0]
    assert (settings.resync_period, settings.lease_duration, settings.renew_deadline) == (90.0, 20.0, 10.0)
    bad = CliRunner().invoke(main, ["run", "--resync-period", "30x"])
    assert bad.exit_code == 2 and "--resync-period" in bad.output and "1m30s" in bad.output
