"""One duration grammar (auditor/formats/durations.py, README "Durations"), hand-written cases:
what each accepted text is in seconds, what is refused and how the refusal reads, and that
the three options taking one (`backstop follow --publish-every`, `backstop-audit follow
--interval`, `backstop-audit reserves --max-block-age`) refuse the same text the same way."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from auditor.cli import main as audit
from auditor.formats.durations import (
    MAX_SECONDS,
    Duration,
    DurationError,
    format_duration,
    parse_duration,
)
from ledger.cli.main import main as backstop

GRAMMAR = ("a whole number from 1 and a unit s, m, h or d, or several, the largest unit first "
           "(e.g. 30s, 5m, 8h, 2d, 1h30m)")


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1),
    ("30s", 30),
    ("5m", 300),
    ("8h", 28_800),
    ("2d", 172_800),
    ("90m", 5_400),
    ("1h30m", 5_400),
    ("1d2h3m4s", 86_400 + 7_200 + 180 + 4),
    ("2d12h", 216_000),
    (" 1h\n", 3_600),  # from an environment file
    ("3650d", 315_360_000),  # the longest taken
    ("315360000s", 315_360_000),
])
def test_a_duration_is_its_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [
    "0", "0s", "00m", "1h0m",  # zero, whole or a part
    "-5m", "+5m",  # a sign
    "1.5h", "0.5", "1,5h",  # a fraction
    "5x", "1w", "5ms", "1H", "h", "s",  # no such unit, or no number
    "60", "5",  # a bare number: the unit is never implied
    "", "   ",  # nothing
    "1 h", "1h 30m", "1 hour",  # spaces inside, words
    "30m1h", "1s1m", "1h1h",  # the largest unit first, each once
    "01h", "007s",  # a leading zero
    "\u0661h", "\uff11h",  # digits that are not ASCII (Arabic-Indic, fullwidth one)
])
def test_anything_else_is_refused_quoting_it(text: str) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(text)
    assert str(refused.value) == f"{text!r} is not a duration: {GRAMMAR}"


@pytest.mark.parametrize("text", ["3651d", "315360001s", "3650d1s", "87601h",
                                  "99999999999s", "9" * 5000 + "d"])
def test_a_huge_duration_is_refused(text: str) -> None:
    with pytest.raises(DurationError) as refused:
        parse_duration(text)
    quoted = repr(text) if len(text) < 60 else f"{repr(text)[:60]}... ({len(text)} chars)"
    assert str(refused.value) == f"{quoted} is longer than 3650d, the longest duration taken"


def test_not_a_string_is_refused() -> None:
    for value in (None, 60, b"1h"):
        with pytest.raises(DurationError, match="is not a duration"):
            parse_duration(value)


def test_format_writes_what_parse_reads() -> None:
    assert [format_duration(s) for s in (1, 59, 60, 3_600, 3_723, 90_061, MAX_SECONDS)] == [
        "1s", "59s", "1m", "1h", "1h2m3s", "1d1h1m1s", "3650d"]
    assert format_duration(0) == "0s"  # an age can be 0; it is never read back
    for seconds in (1, 61, 3_599, 86_399, 86_401, 1_000_000, MAX_SECONDS):
        assert parse_duration(format_duration(seconds)) == seconds


def test_the_option_type_gives_seconds_and_refuses_as_click_does() -> None:
    @click.command()
    @click.option("--every", type=Duration(), default="1m", show_default=True)
    def command(every: int) -> None:
        click.echo(repr(every))

    runner = CliRunner()
    assert runner.invoke(command, []).output == "60\n"
    assert runner.invoke(command, ["--every", "1h30m"]).output == "5400\n"
    result = runner.invoke(command, ["--every", "1.5h"])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for '--every': '1.5h' is not a duration: {GRAMMAR}")
    assert "[default: 1m]" in runner.invoke(command, ["--help"]).output


@pytest.mark.parametrize("text", ["0", "-5m", "1.5h", "5x", "", "3651d"])
def test_the_three_options_refuse_alike_before_doing_anything(text: str, tmp_path) -> None:
    """Each refusal is a usage error (exit 2) naming the option, raised while the arguments
    are parsed: before a database, a bus or a log is opened (none exists here)."""
    reason = (f"{text!r} is longer than 3650d, the longest duration taken" if text == "3651d"
              else f"{text!r} is not a duration: {GRAMMAR}")
    runs = [
        (backstop, ["follow", "--stream", "s", "--dead-letter", "d", "--db",
                    f"sqlite:///{tmp_path / 'none.sqlite'}", "--publish-every", text],
         "'--publish-every' (env var: 'BACKSTOP_PUBLISH_EVERY')"),
        (audit, ["follow", str(tmp_path / "log"), "--key", "k", "--state",
                 str(tmp_path / "state"), "--interval", text], "'--interval'"),
        (audit, ["reserves", str(tmp_path / "snapshot.json"), "--key", "k",
                 "--max-block-age", text], "'--max-block-age'"),
    ]
    for command, args, option in runs:
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.splitlines()[-1] == f"Error: Invalid value for {option}: {reason}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
