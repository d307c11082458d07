"""Netfilter: what the kernel's tables do to a packet, read from parsed dumps.

:mod:`.walker` follows a packet through an ``iptables-save`` nat table,
:mod:`.nft_walker` through kube-proxy's ``ip kube-proxy`` nftables table (with
the same result types), :mod:`.render` prints a walk of either (text or
Mermaid), :mod:`.rules` checks kube-proxy's rules claim by claim. Pure: parsed
tables in, results out; no node, no pytest.
"""
