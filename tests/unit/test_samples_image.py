"""The sample pods run the agnhost their cluster's version pins (a kindlab node holds no other)."""

from __future__ import annotations

import doctest

from kindlab.drivers.kube import load_manifests
from kindlab.lab import samples
from kindlab.lab.samples import AGNHOST, agnhost_for, with_image
from kindlab.paths import manifests_dir


def _images(docs: list[dict[str, object]]) -> list[str]:
    out = []
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})  # type: ignore[attr-defined]
        out += [c["image"] for c in spec.get("containers", [])]
    return out


def test_the_web_pods_get_the_versions_agnhost_and_the_manifests_stay_as_they_are() -> None:
    docs = load_manifests(manifests_dir())
    before = _images(docs)
    assert before == [f"{AGNHOST}:2.56"]  # 1.34's pin, written in labs/manifests/web.yaml
    image = agnhost_for("v1.29.15")
    assert image == f"{AGNHOST}:2.47"
    assert _images(with_image(docs, AGNHOST, image)) == [image]
    assert _images(docs) == before


def test_an_image_of_another_repository_is_left_alone() -> None:
    docs = [
        {
            "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{"image": f"{AGNHOST}-other:1"}]}}},
        }
    ]
    assert _images(with_image(docs, AGNHOST, "x")) == [f"{AGNHOST}-other:1"]
    assert agnhost_for("not a version") is None


def test_samples_docstring_examples_run() -> None:
    result = doctest.testmod(samples)
    assert result.attempted > 0 and result.failed == 0
