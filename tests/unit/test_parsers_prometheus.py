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
    last: float | None,
    queued: float,
    pending: int,
    count: int = 0,
    total: float = 0.0,
    longest: str = "+Inf",
) -> Metrics:
    family = 'ip_family="IPv4"'
    lines = [f"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{{{family}}} {queued}"]
    if last is not None:
        lines.append(f"kubeproxy_sync_proxy_rules_last_timestamp_seconds{{{family}}} {last}")
        for le in ("0.128", "16.384", "+Inf"):
            # every sync lies in the bucket ``longest`` and those above it
            within = count if le == "+Inf" or float(le) >= float(longest) else 0
            lines.append(
                f'kubeproxy_sync_proxy_rules_duration_seconds_bucket{{{family},le="{le}"}} {within}'
            )
        lines.append(f"kubeproxy_sync_proxy_rules_duration_seconds_count{{{family}}} {count}")
        lines.append(f"kubeproxy_sync_proxy_rules_duration_seconds_sum{{{family}}} {total}")
    lines.append(f"kubeproxy_sync_proxy_rules_endpoint_changes_pending {pending}")
    lines.append("kubeproxy_sync_proxy_rules_service_changes_pending 0")
    return parse_prometheus("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("last", "queued", "pending", "count", "total", "now", "synced"),
    [
        (110.0, 104.0, 0, 1, 5.0, 111.0, True),  # began at 105, after the last change
        (110.0, 106.0, 0, 1, 5.0, 111.0, False),  # a change came in after it began
        (110.0, 104.0, 3, 1, 5.0, 111.0, False),  # changes pending
        (110.0, 104.0, 0, 1, 5.0, 101.0, False),  # too soon: informers may lag the API
        (None, 104.0, 0, 0, 0.0, 111.0, False),  # never synced
        (110.0, 104.0, 0, 4, 20.0, 111.0, False),  # when its last sync began is unknown
    ],
)
def test_programmed_means_the_last_sync_began_after_the_last_change(
    last: float | None,
    queued: float,
    pending: int,
    count: int,
    total: float,
    now: float,
    synced: bool,
) -> None:
    from kindlab.lab.samples import SyncWatch

    ok, state = SyncWatch(since=100.0, lag=2.0).observe(
        _scrape(last, queued, pending, count, total), now
    )
    assert ok is synced, state


def test_when_a_sync_began_comes_from_the_histogram() -> None:
    from kindlab.lab.samples import SyncWatch

    # Quiet since a sync that ended after the last change: every sync took under
    # 0.128 s, and a change queued during the last one would have started another
    # within minSyncPeriod (1 s); none did, so the last one took it.
    idle = _scrape(98.0, 97.95, 0, 7, 0.4, longest="0.128")
    assert SyncWatch(since=100.0, lag=2.0).observe(idle, 103.0)[0]
    assert not SyncWatch(since=97.0, lag=0.5).observe(idle, 98.5)[0]  # not quiet long enough
    slow = _scrape(98.0, 97.95, 0, 7, 40.0)  # a sync took longer than any bucket
    assert not SyncWatch(since=100.0, lag=2.0).observe(slow, 103.0)[0]
    # a slow sync seen finishing between two scrapes: its start is exact
    watch = SyncWatch(since=100.0, lag=2.0)
    assert not watch.observe(_scrape(98.0, 101.0, 1, 3, 12.0), 101.5)[0]
    # that sync ran 30 s, from 100: it began before the change queued at 101
    assert not watch.observe(_scrape(130.0, 101.0, 0, 4, 42.0), 131.0)[0]
    ok, state = watch.observe(_scrape(150.0, 101.0, 0, 5, 52.0), 151.0)  # the next, 10 s long
    assert ok, state
    assert "last sync began 140.00" in state
    # two syncs between scrapes, longer than any bucket: wait for the next one
    jumped = SyncWatch(since=100.0, lag=2.0)
    jumped.observe(_scrape(98.0, 97.0, 0, 3, 60.0), 101.0)
    assert not jumped.observe(_scrape(140.0, 101.0, 0, 5, 100.0), 141.0)[0]
    assert jumped.observe(_scrape(170.0, 101.0, 0, 6, 120.0), 171.0)[0]


def test_native_idle_gauges_of_kube_proxy_in_iptables_mode() -> None:
    """A real idle scrape (kind, v1.34.4, iptables mode, 2026-11-28): 7 syncs, all < 0.128 s."""
    from kindlab.lab.samples import SyncWatch

    text = (CAPTURED.parent / "v1.34.4-iptables-idle-metrics.out").read_text()
    metrics = parse_prometheus(text)
    since = 1795887600.0  # long after its last sync, as when the samples were there before
    ok, state = SyncWatch(since=since, lag=5.0).observe(metrics, since + 5.0)
    assert ok, state
    assert not SyncWatch(since=since, lag=5.0).observe(metrics, since + 1.0)[0]


def test_the_race_seen_in_the_ipvs_guest_is_not_taken_for_a_sync() -> None:
    """Real gauges of kube-proxy in ipvs mode under TCG (2026-11-28, see the fixture's README).

    The lab's old wait took ``last_timestamp >= since`` and ``last >= queued`` for
    "programmed" and let claim 7 read ipvsadm while the web Service had 2 of its 3 real
    servers. Its first sync had run 230 s, from before a change queued during it; the
    sync that would carry that change was under way.
    """
    from kindlab.lab.samples import SyncWatch

    race = CAPTURED.parent / "v1.34.4-ipvs-tcg-race"
    after = parse_prometheus((race / "metrics-after-run.out").read_text())
    family = {"ip_family": "IPv4"}
    count = after.value("kubeproxy_sync_proxy_rules_duration_seconds_count", **family)
    total = after.value("kubeproxy_sync_proxy_rules_duration_seconds_sum", **family)
    assert count == 1 and total is not None and total > 230
    # What the wait read when it stopped, from its own progress line.
    line = (race / "wait-progress.out").read_text()
    assert "last sync 1795887061.657589, last queued 1795886962.0494237, pending changes 0" in line
    last, waited = 1795887061.657589, 257.5
    since = last - waited
    at_the_time = _scrape(last, 1795886962.0494237, 0, 1, total)
    ok, state = SyncWatch(since=since, lag=30.0).observe(at_the_time, last + 1)
    assert not ok, state  # a change came in at 17:29:22, after that sync began at 17:27:11
    # and at the end of the run kube-proxy itself still had two changes pending
    assert not SyncWatch(since=since, lag=30.0).observe(after, last + 100)[0]


def test_before_1_33_the_gauges_have_no_ip_family_label() -> None:
    """kube-proxy v1.29.15 (nftables mode, kind, 2026-11-28): the gauges, count and sum as
    it served them (the two bucket lines are written in their shape, not captured); the
    lab waited for a label 1.29 does not write, and every check's setup timed out."""
    from kindlab.lab.samples import SyncWatch

    text = """\
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.128"} 19
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"} 19
kubeproxy_sync_proxy_rules_duration_seconds_sum 0.7491674309999999
kubeproxy_sync_proxy_rules_duration_seconds_count 19
kubeproxy_sync_proxy_rules_endpoint_changes_pending 0
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds 1.7958968275673969e+09
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7958970078212266e+09
kubeproxy_sync_proxy_rules_service_changes_pending 0
"""
    metrics = parse_prometheus(text)
    since = 1795897000.0
    ok, state = SyncWatch(since=since, lag=5.0).observe(metrics, since + 10.0)
    assert ok, state
    assert "last change queued 1795896827.57" in state
