"""Which route a request path names, and with which parameters.

The protocol's paths are few and fixed, so they are matched by splitting the path once rather than by trying a
list of patterns in turn: the inference routes cost the same two dictionary lookups as any other.
"""

from __future__ import annotations

_STATIC = {
    "/v2/health/live": ("live", "GET"),
    "/v2/health/ready": ("ready", "GET"),
    "/v2": ("server_metadata", "GET"),
    "/v2/repository/index": ("repository_index", "POST"),
    "/metrics": ("metrics", "GET"),
}
# The last segment of /v2/models/{name}[/versions/{version}]/{action}.
_MODEL_ACTIONS = {
    "infer": ("infer", "POST"),
    "predict": ("predict", "POST"),
    "ready": ("model_ready", "GET"),
}
_REPOSITORY_ACTIONS = {
    "load": ("repository_load", "POST"),
    "unload": ("repository_unload", "POST"),
}

Match = tuple[str, str, dict]


def match(path: str) -> Match | None:
    """The route a path names: ``(route name, its method, path parameters)``, or None when no route matches."""
    static = _STATIC.get(path)
    if static is not None:
        return static[0], static[1], {}
    parts = path.split("/")  # ['', 'v2', 'models', name, ...]
    if len(parts) < 4 or parts[1] != "v2" or not parts[3]:
        return None
    if parts[2] == "models":
        params = {"name": parts[3]}
        rest = parts[4:]
        if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
            params["version"] = rest[1]
            rest = rest[2:]
        if not rest:
            return "model_metadata", "GET", params
        action = _MODEL_ACTIONS.get(rest[0]) if len(rest) == 1 else None
        return (action[0], action[1], params) if action else None
    if parts[2] == "repository" and len(parts) == 6 and parts[3] == "models" and parts[4]:
        action = _REPOSITORY_ACTIONS.get(parts[5])
        return (action[0], action[1], {"name": parts[4]}) if action else None
    return None
