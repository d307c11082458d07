"""The lab: what kindlab claims about kube-proxy and how a claim is checked.

:mod:`.expectations` (the claims, per mode and Kubernetes version, as data),
:mod:`.samples` (the sample Services), :mod:`.probes` (a node command run and
parsed in one call), :mod:`.evidence` (what a check ran and saw),
:mod:`.report` (findings into the Markdown and JSON report), :mod:`.matrix`
(the report's claims by mode and version, the post's verdicts, what changed
between versions), :mod:`.explain` (``kindlab explain``: evidence and the walk
for one Service). No pytest here.
"""
