"""kindlab: a reproducible lab harness over kind clusters.

The library never imports pytest; :mod:`kindlab.plugin` wires it into fixtures.
"""

__version__ = "0.1.0"
