"""``ip netns list``: the named network namespaces of a node (a pod's is ``cni-<uuid>``).

Schema: a tuple of names, in the order printed. Each line is ``NAME`` or
``NAME (id: N)`` (the id is the peer's nsid, printed once one was assigned)::

    >>> parse_netns_list("cni-6f1d2c0e-93f5-aa6b-4d6e-0c1f2f8b7a11 (id: 0)\\ncni-2b\\n")
    ('cni-6f1d2c0e-93f5-aa6b-4d6e-0c1f2f8b7a11', 'cni-2b')
"""

from __future__ import annotations

import re

from kindlab.errors import ParseError

_LINE = re.compile(r"^(?P<name>[^\s/]+)(?: \(id: \d+\))?$")


def parse_netns_list(text: str) -> tuple[str, ...]:
    """The namespace names of ``ip netns list``; a line of another shape is a ParseError."""
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise ParseError("ip netns list", number, line, "NAME or NAME (id: N)")
        names.append(match["name"])
    return tuple(names)
