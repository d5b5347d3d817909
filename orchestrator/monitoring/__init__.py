"""Watching served models: reference profiles frozen at training time, windows counted on their edges, drift
statistics and verdicts, reports. Pure functions on data (run on Dask where the data is big); no cloud in here."""
