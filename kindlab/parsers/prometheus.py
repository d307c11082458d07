"""Parser for the Prometheus text format, as kube-proxy serves it at :10249/metrics.

Pure: text in, frozen dataclasses out. kindlab reads a few gauges from it to know
when kube-proxy has synced its rules (see :func:`kindlab.lab.samples.wait_proxy_synced`).

Schema::

    Metrics
      samples: (Sample, ...)                # in the order printed
      accessors: value(name, **labels) -> float | None, values(name) -> (Sample, ...)
    Sample
      name: str                             # "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
      labels: ((key, value), ...)           # (("ip_family", "IPv4"),)
      value: float                          # NaN and ±Inf as float does
      line_no: int
      raw: str

Example::

    >>> m = parse_prometheus('''# HELP x help
    ... # TYPE x gauge
    ... kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.79e+09
    ... kubeproxy_sync_proxy_rules_service_changes_pending 0
    ... ''')
    >>> m.value("kubeproxy_sync_proxy_rules_last_timestamp_seconds", ip_family="IPv4")
    1790000000.0
    >>> m.value("kubeproxy_sync_proxy_rules_service_changes_pending")
    0.0

Errors raise :class:`kindlab.errors.ParseError` naming the line: a sample line
without a value, a value that is not a number, unbalanced label braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kindlab.errors import ParseError

TOOL = "metrics"

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<rest>.+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    line_no: int
    raw: str = field(compare=False)

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True, slots=True)
class Metrics:
    samples: tuple[Sample, ...]

    def values(self, name: str) -> tuple[Sample, ...]:
        return tuple(s for s in self.samples if s.name == name)

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample of ``name`` whose labels include ``labels``."""
        for sample in self.values(name):
            have = dict(sample.labels)
            if all(have.get(k) == v for k, v in labels.items()):
                return sample.value
        return None


def parse_prometheus(text: str) -> Metrics:
    samples = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SAMPLE.match(stripped)
        if not match:
            raise ParseError(TOOL, line_no, line, "a sample: NAME{LABELS} VALUE [TIMESTAMP]")
        labels = _labels(match.group("labels"), line_no, line)
        value_text = match.group("rest").split()[0]
        try:
            value = float(value_text)
        except ValueError:
            raise ParseError(TOOL, line_no, line, "a number as the sample's value") from None
        samples.append(Sample(match.group("name"), labels, value, line_no, line))
    return Metrics(tuple(samples))


def _labels(text: str | None, line_no: int, line: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = []
    pos = 0
    while pos < len(text):
        found = _LABEL.match(text, pos)
        if not found:
            raise ParseError(TOOL, line_no, line, 'labels as key="value", separated by commas')
        out.append((found.group(1), found.group(2).replace('\\"', '"').replace("\\\\", "\\")))
        pos = found.end()
    return tuple(out)
