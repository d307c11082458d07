"""Reading the API's answers without the client's models (pure)."""

from kindlab.drivers.kube import Endpoint, endpoints_from_slices


def test_endpoint_slices_read_as_json_including_a_service_without_endpoints() -> None:
    slices = {
        "items": [
            {"endpoints": None},  # what the API returns for a Service with no endpoints
            {
                "endpoints": [
                    {
                        "addresses": ["10.244.0.5"],
                        "conditions": {"ready": True},
                        "nodeName": "kindlab-ipvs-control-plane",
                        "targetRef": {"kind": "Pod", "name": "web-1"},
                    },
                    {"addresses": ["10.244.0.6"], "conditions": {"ready": False}},
                ]
            },
        ]
    }
    assert list(endpoints_from_slices(slices)) == [
        Endpoint("10.244.0.5", True, "kindlab-ipvs-control-plane", "web-1"),
        Endpoint("10.244.0.6", False, None, None),
    ]
    assert list(endpoints_from_slices({"items": None})) == []
