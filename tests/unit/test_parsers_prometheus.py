"""kube-proxy's /metrics, captured from a real nftables-mode cluster, and edge cases."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers import prometheus
from kindlab.parsers.prometheus import parse_prometheus

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


def _gauges(last: float | None, queued: float, pending: int) -> str:
    lines = [
        f'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{{ip_family="IPv4"}} {queued}'
    ]
    if last is not None:
        lines.append(
            f'kubeproxy_sync_proxy_rules_last_timestamp_seconds{{ip_family="IPv4"}} {last}'
        )
    lines.append(f"kubeproxy_sync_proxy_rules_endpoint_changes_pending {pending}")
    lines.append("kubeproxy_sync_proxy_rules_service_changes_pending 0")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("last", "queued", "pending", "now", "synced"),
    [
        (105.0, 104.0, 0, 106.0, True),  # synced after the change, nothing pending
        (99.0, 98.0, 0, 100.5, False),  # idle, but its informers may not have seen it yet
        (99.0, 98.0, 0, 103.0, True),  # idle long enough after the change: it knows
        (105.0, 106.0, 0, 107.0, False),  # a sync is queued and not yet done
        (105.0, 104.0, 3, 107.0, False),  # changes pending
        (None, 104.0, 0, 107.0, False),  # never synced
    ],
)
def test_proxy_synced(
    last: float | None, queued: float, pending: int, now: float, synced: bool
) -> None:
    from kindlab.lab.samples import proxy_synced

    ok, state = proxy_synced(parse_prometheus(_gauges(last, queued, pending)), 100.0, now)
    assert ok is synced, state


def test_proxy_synced_waits_longer_for_informers_where_the_cluster_is_slow() -> None:
    from kindlab.lab.samples import proxy_synced

    idle = parse_prometheus(_gauges(99.0, 98.0, 0))
    assert proxy_synced(idle, 100.0, 103.0)[0]  # the default two seconds have passed
    assert not proxy_synced(idle, 100.0, 103.0, lag=12.0)[0]  # under TCG: not yet
    assert proxy_synced(idle, 100.0, 112.5, lag=12.0)[0]
