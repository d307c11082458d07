"""Drivers: kindlab's hands on outside tools. Plain classes, no pytest.

One module per tool: :mod:`.proc` (the one process runner), :mod:`.kind` (the kind
CLI), :mod:`.node` (a node container: ``docker exec``), :mod:`.kube` (the
Kubernetes API), :mod:`.kernel` (what the Docker host's kernel supports),
:mod:`.vm` (a qemu guest for what that kernel lacks). :mod:`.clusters` composes
them into one kind cluster per proxy mode, with its identity on disk in
:mod:`.state`; :mod:`.cleanup` removes what kindlab labelled.
"""
