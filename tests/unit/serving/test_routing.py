"""Every V2 path the server answers, the parameters taken from it, and the paths it does not know."""

import pytest

from orchestrator.serving.routing import match


@pytest.mark.parametrize("path, expected", [
    ("/v2/health/live", ("live", "GET", {})),
    ("/v2/health/ready", ("ready", "GET", {})),
    ("/v2", ("server_metadata", "GET", {})),
    ("/metrics", ("metrics", "GET", {})),
    ("/v2/models/flights-delay", ("model_metadata", "GET", {"name": "flights-delay"})),
    ("/v2/models/flights-delay/versions/3", ("model_metadata", "GET", {"name": "flights-delay", "version": "3"})),
    ("/v2/models/flights-delay/ready", ("model_ready", "GET", {"name": "flights-delay"})),
    ("/v2/models/flights-delay/versions/3/ready",
     ("model_ready", "GET", {"name": "flights-delay", "version": "3"})),
    ("/v2/models/flights-delay/infer", ("infer", "POST", {"name": "flights-delay"})),
    ("/v2/models/flights-delay/versions/2/infer", ("infer", "POST", {"name": "flights-delay", "version": "2"})),
    ("/v2/models/flights-delay/predict", ("predict", "POST", {"name": "flights-delay"})),
    ("/v2/models/flights-delay/versions/2/predict", ("predict", "POST", {"name": "flights-delay", "version": "2"})),
    ("/v2/repository/index", ("repository_index", "POST", {})),
    ("/v2/repository/models/flights-delay/load", ("repository_load", "POST", {"name": "flights-delay"})),
    ("/v2/repository/models/flights-delay/unload", ("repository_unload", "POST", {"name": "flights-delay"})),
])
def test_each_v2_path_names_its_route_method_and_parameters(path, expected):
    assert match(path) == expected


def test_a_model_may_be_named_like_a_route():
    assert match("/v2/models/infer/infer") == ("infer", "POST", {"name": "infer"})
    assert match("/v2/models/versions/versions/versions/ready") == (
        "model_ready", "GET", {"name": "versions", "version": "versions"})


@pytest.mark.parametrize("path", [
    "/", "", "/v1/models/x/infer", "/v2/", "/v2/models", "/v2/models/", "/v2/models//infer", "/v2/models/x/",
    "/v2/models/x/infer/", "/v2/models/x/score", "/v2/models/x/versions/", "/v2/models/x/versions//infer",
    "/v2/models/x/versions/1/infer/extra", "/v2/repository/models/x/delete", "/v2/repository/models//load",
    "/v2/repository/models/x", "/v2/health", "/v2/health/live/", "/metrics/",
])
def test_paths_outside_the_protocol_match_nothing(path):
    assert match(path) is None
