"""kindlab: a reproducible lab harness over kind clusters.

Layers, bottom first; imports point down (kindlab/README.md, enforced by
tests/unit/test_layers.py): the base modules (constants, errors, paths, labels,
timing), :mod:`kindlab.parsers` and :mod:`kindlab.versions`, :mod:`kindlab.drivers` and
:mod:`kindlab.nodeimage`, :mod:`kindlab.netfilter`, :mod:`kindlab.lab`, and on
top :mod:`kindlab.pytest_plugin` (loaded by :mod:`kindlab.plugin`) and
:mod:`kindlab.cli`. The library never imports pytest; the plugin wires it into
fixtures.
"""

__version__ = "0.1.0"
