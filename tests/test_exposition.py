"""/metrics is rendered once per poll cycle and served as bytes, in every format it offers."""

import asyncio
import zlib

import httpx
import pytest

from exporter.collector import SnapshotCollector
from exporter.runtime import Exporter
from tests.conftest import Serving, config_for, parse_samples, pick, poll_once, run

PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.fixture
def serving(simulator, clock):
    with Serving(Exporter(config_for(simulator), clock=clock)) as running:
        running.wait_ready()
        yield running


def one_gzip_member(data: bytes) -> bytes:
    """Decompress, insisting on exactly one complete gzip member (what every client reads)."""
    inflater = zlib.decompressobj(31)
    plain = inflater.decompress(data)
    assert inflater.eof and inflater.unused_data == b""
    return plain


def static_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(("process_", "# EOF"))]


@pytest.mark.parametrize("accept", ["", PROMETHEUS_2, PROMETHEUS_3])
def test_gzip_is_one_member_holding_exactly_the_plain_body(serving, accept):
    url = f"{serving.url}/metrics"
    with httpx.stream("GET", url, headers={"Accept": accept, "Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) == len(raw)
    plain = httpx.get(url, headers={"Accept": accept, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-type"] == plain.headers["content-type"]
    unzipped = one_gzip_member(raw).decode()
    assert static_lines(unzipped) == static_lines(plain.text)
    assert "process_resident_memory_bytes" in unzipped


@pytest.mark.parametrize("accept", [PROMETHEUS_2, PROMETHEUS_3])
def test_openmetrics_ends_once_with_eof_after_the_live_metrics(serving, accept):
    text = httpx.get(f"{serving.url}/metrics", headers={"Accept": accept}).text
    lines = text.splitlines()
    assert lines[-1] == "# EOF" and text.count("# EOF") == 1
    assert lines[-2].startswith("process_")
    assert text.index("# TYPE process_") > text.index("northflank_up{")


def test_scrapes_between_polls_serve_the_same_rendering(simulator, clock, monkeypatch):
    collects = []
    original = SnapshotCollector.collect

    def counted(self):
        collects.append(1)
        return original(self)

    monkeypatch.setattr(SnapshotCollector, "collect", counted)
    exporter = Exporter(config_for(simulator), clock=clock)
    poll_once(exporter)
    assert collects == []  # nobody has scraped: no format is rendered
    exporter.exposition()
    assert len(collects) == 1  # the first scrape in a format renders it
    bodies = {tuple(static_lines(exporter.exposition().decode())) for _ in range(20)}
    assert len(bodies) == 1
    assert len(collects) == 1  # twenty scrapes, no rendering
    poll_once(exporter)
    assert len(collects) == 2  # each poll renders the one format in use, once
    exporter.metrics.respond(PROMETHEUS_2, "gzip")
    poll_once(exporter)
    assert len(collects) == 5  # a second format: rendered when asked, then at every poll


def test_a_format_nobody_asked_for_in_an_hour_is_no_longer_rendered(simulator, clock):
    exporter = Exporter(config_for(simulator), clock=clock)
    exporter.exposition()
    poll_once(exporter)
    assert exporter.metrics.formats_in_use() == ["text/plain; version=0.0.4; charset=utf-8"]
    clock.now += 3601
    poll_once(exporter)
    assert exporter.metrics.formats_in_use() == []


def test_a_name_filter_renders_just_those_families(serving):
    response = httpx.get(
        f"{serving.url}/metrics",
        params=[("name[]", "northflank_up"), ("name[]", "process_open_fds")],
    )
    names = {line.split("{")[0].split(" ")[0] for line in response.text.splitlines()}
    assert {name for name in names if not name.startswith("#")} == {
        "northflank_up",
        "process_open_fds",
    }


def test_ages_keep_counting_while_no_poll_completes(simulator, clock):
    exporter = Exporter(config_for(simulator, interval=0.05), clock=clock)
    poll_once(exporter)
    age = "northflank_backup_last_completed_age_seconds"
    before = pick(parse_samples(exporter.exposition().decode()), age, destination="backups-02")

    async def without_polls():
        stop = asyncio.Event()
        refreshing = asyncio.create_task(exporter.keep_fresh(stop))
        clock.now += 600
        for _ in range(2000):  # a guard against a hang, counted in turns, not in seconds
            if exporter.metrics.rendered_at == clock.now:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await refreshing

    run(without_polls())
    assert exporter.metrics.rendered_at == clock.now
    after = pick(parse_samples(exporter.exposition().decode()), age, destination="backups-02")
    assert after == pytest.approx(before + 600)


@pytest.mark.parametrize("accept", ["", PROMETHEUS_2])
def test_name_filters_are_cut_from_the_rendering_not_rendered_again(serving, accept):
    url = f"{serving.url}/metrics"
    httpx.get(url, headers={"Accept": accept})  # this format is rendered and kept

    def no_second_rendering():
        raise AssertionError("a filtered scrape rendered the snapshot again")

    serving.exporter.metrics._snapshot_registry.collect = no_second_rendering
    response = httpx.get(
        url,
        headers={"Accept": accept},
        params=[
            ("name[]", "northflank_up"),
            ("name[]", "northflank_exporter_api_requests"),  # a counter, by its family name
            ("name[]", "process_open_fds"),
        ],
    )
    names = {
        line.split("{")[0].split(" ")[0]
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    assert names == {
        "northflank_up",
        "northflank_exporter_api_requests_total",
        "process_open_fds",
    }
    assert response.text.count("# EOF") == (1 if accept else 0)
    samples = parse_samples(response.text) if not accept else None
    if samples is not None:
        assert pick(samples, "northflank_up", destination="primary-backups") == 1
