"""kube-proxy's /metrics, captured from a real nftables-mode cluster, and edge cases."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers import prometheus
from kindlab.parsers.prometheus import Metrics, parse_prometheus

CAPTURED = Path(__file__).parent.parent / "fixtures" / "captured" / "v1.34.4-nftables"


def test_kube_proxy_sync_gauges_from_a_real_cluster() -> None:
    metrics = parse_prometheus((CAPTURED / "metrics.out").read_text())
    assert len(metrics.samples) > 500
    last = metrics.value("kubeproxy_sync_proxy_rules_last_timestamp_seconds", ip_family="IPv4")
    queued = metrics.value(
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", ip_family="IPv4"
    )
    assert last is not None and queued is not None and last > 1.7e9 and last >= queued
    assert metrics.value("kubeproxy_sync_proxy_rules_service_changes_pending") == 0
    assert metrics.value("kubeproxy_sync_proxy_rules_endpoint_changes_pending") == 0
    buckets = metrics.values("apiserver_client_certificate_expiration_seconds_bucket")
    assert "2.592e+06" in {b.label("le") for b in buckets}


@pytest.mark.parametrize(
    ("line", "name", "labels", "value"),
    [
        ("up 1", "up", (), 1.0),
        ('x{a="1",b="two words"} 2.5 1700000000', "x", (("a", "1"), ("b", "two words")), 2.5),
        ('x{path="a\\"b"} +Inf', "x", (("path", 'a"b'),), math.inf),
        ('x{a="1",} -3e-2', "x", (("a", "1"),), -0.03),
    ],
)
def test_sample_lines(
    line: str, name: str, labels: tuple[tuple[str, str], ...], value: float
) -> None:
    (sample,) = parse_prometheus(f"# HELP x y\n{line}\n").samples
    assert (sample.name, sample.labels, sample.value, sample.line_no) == (name, labels, value, 2)


def test_missing_value_is_none() -> None:
    assert parse_prometheus("up 1\n").value("down") is None
    assert parse_prometheus('x{a="1"} 1\n').value("x", a="2") is None


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(prometheus)
    assert result.attempted > 0 and result.failed == 0, result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("up\n", "a sample"),
        ("up one\n", "a number"),
        ("x{a=1} 1\n", "labels as key"),
        ('{a="1"} 1\n', "a sample"),
    ],
)
def test_errors_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=f"metrics: line 1: expected {expected}"):
        parse_prometheus(text)


def _scrape(
    last: float | None, queued: float, pending: int, count: int = 0, total: float = 0.0
) -> Metrics:
    family = '{ip_family="IPv4"}'
    lines = [f"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{family} {queued}"]
    if last is not None:
        lines.append(f"kubeproxy_sync_proxy_rules_last_timestamp_seconds{family} {last}")
        lines.append(f"kubeproxy_sync_proxy_rules_duration_seconds_count{family} {count}")
        lines.append(f"kubeproxy_sync_proxy_rules_duration_seconds_sum{family} {total}")
    lines.append(f"kubeproxy_sync_proxy_rules_endpoint_changes_pending {pending}")
    lines.append("kubeproxy_sync_proxy_rules_service_changes_pending 0")
    return parse_prometheus("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("last", "queued", "pending", "count", "total", "synced"),
    [
        (110.0, 101.0, 0, 1, 5.0, True),  # began at 105, after since+lag, nothing queued after
        (110.0, 101.0, 0, 1, 9.0, False),  # began at 101: before since+lag (102)
        (110.0, 106.0, 0, 1, 5.0, False),  # a change queued after it began: maybe not in it
        (110.0, 101.0, 3, 1, 5.0, False),  # changes pending
        (None, 101.0, 0, 0, 0.0, False),  # never synced
        (110.0, 101.0, 0, 4, 20.0, False),  # the last sync's start cannot be known yet
    ],
)
def test_a_sync_counts_when_it_began_after_the_change(
    last: float | None, queued: float, pending: int, count: int, total: float, synced: bool
) -> None:
    from kindlab.lab.samples import SyncWatch

    ok, state = SyncWatch(since=100.0, lag=2.0).observe(
        _scrape(last, queued, pending, count, total)
    )
    assert ok is synced, state


def test_the_start_of_a_later_sync_comes_from_the_histogram_between_two_scrapes() -> None:
    from kindlab.lab.samples import SyncWatch

    watch = SyncWatch(since=100.0, lag=2.0)
    assert not watch.observe(_scrape(98.0, 97.0, 0, 3, 12.0))[0]  # idle, synced before
    ok, state = watch.observe(_scrape(130.0, 97.0, 0, 4, 12.5))  # one more, 0.5 s long
    assert ok, state
    assert "last sync began 129.5" in state
    # two syncs between scrapes: which one began when is not known, so wait for another
    jumped = SyncWatch(since=100.0, lag=2.0)
    jumped.observe(_scrape(98.0, 97.0, 0, 3, 12.0))
    assert not jumped.observe(_scrape(140.0, 97.0, 0, 5, 13.0))[0]
    assert jumped.observe(_scrape(150.0, 97.0, 0, 6, 13.5))[0]


def test_the_race_seen_in_the_ipvs_guest_is_not_taken_for_a_sync() -> None:
    """Real gauges of kube-proxy in ipvs mode under TCG (2026-11-28, see the fixture's README).

    The lab's old wait took ``last_timestamp >= since`` and ``last >= queued`` for
    "programmed" and let claim 7 read ipvsadm while the web Service had 2 of its 3 real
    servers. Its first sync had run 230 s, from before the endpoints were ready; the
    sync that would carry them was under way.
    """
    from kindlab.lab.samples import SyncWatch

    race = Path(__file__).parent.parent / "fixtures" / "captured" / "v1.34.4-ipvs-tcg-race"
    after = parse_prometheus((race / "metrics-after-run.out").read_text())
    family = {"ip_family": "IPv4"}
    last = after.value("kubeproxy_sync_proxy_rules_last_timestamp_seconds", **family)
    count = after.value("kubeproxy_sync_proxy_rules_duration_seconds_count", **family)
    total = after.value("kubeproxy_sync_proxy_rules_duration_seconds_sum", **family)
    assert (last, count) == (1795887061.657589, 1) and total is not None and total > 230
    # What the wait read when it stopped, from its own progress line.
    line = (race / "wait-progress.out").read_text()
    assert "last sync 1795887061.657589, last queued 1795886962.0494237, pending changes 0" in line
    last, waited = 1795887061.657589, 257.5
    since = last - waited
    at_the_time = _scrape(last, 1795886962.0494237, 0, 1, total)
    ok, state = SyncWatch(since=since, lag=12.0).observe(at_the_time)
    assert not ok, state  # a change came in at 17:29:22, after that sync began at 17:27:11
    # and at the end of the run kube-proxy itself still had two changes pending
    assert not SyncWatch(since=since, lag=12.0).observe(after)[0]
