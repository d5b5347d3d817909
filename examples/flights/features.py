"""Feature functions of the flights example, referenced from pipeline.yaml as `features:<name>`."""

import pandas as pd

from orchestrator.pipeline.declare import columns


# Declared, so that a misspelt feature, target or split column is reported before any stage runs.
@columns(adds={"route": "string", "dep_weekday": "float64", "dep_hour": "float64", "plane_age": "float64",
               "late": "int64"})
def add_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Route, departure weekday, plane age and the label: arrival more than 15 minutes late."""
    out = flights.copy()
    out["route"] = out["origin"].astype("string") + "-" + out["dest"].astype("string")
    local = out["time_hour"].dt.tz_convert("America/New_York")
    out["dep_weekday"] = local.dt.day_of_week.astype("float64")
    out["dep_hour"] = local.dt.hour.astype("float64")
    out["plane_age"] = (out["time_hour"].dt.year - out["year_plane"]).astype("float64")
    out["late"] = (out["arr_delay"] > 15).astype("int64")
    return out
