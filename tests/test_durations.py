import pytest

from exporter.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("1h30m15s", 5415),
        ("7d", 604800),
        ("2w", 1209600),
        ("500ms", 0.5),
        ("1.5h", 5400),
        (" 30s ", 30),
    ],
)
def test_parses_prometheus_style_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "1h 30m", "-5m", "5min", "h"])
def test_rejects_what_is_not_a_duration(text):
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (45, "45s"), (5400, "1h30m"), (90061, "1d1h1m1s")]
)
def test_formats_durations_compactly(seconds, text):
    assert format_duration(seconds) == text
