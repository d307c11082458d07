"""Netfilter: what the kernel's tables do to a packet, read from parsed dumps.

:mod:`.walker` follows a packet through an ``iptables-save`` nat table,
:mod:`.render` prints a walk (text or JSON), :mod:`.rules` checks kube-proxy's
rules claim by claim. Pure: parsed tables in, results out; no node, no pytest.
"""
