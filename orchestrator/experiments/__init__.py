"""Experiments: one pipeline run at many points of a parameter grid (or a random sample), compared by a metric.

``grid.py`` reads the grid file; ``overrides.py`` checks its parameter paths against the pipeline file's fields and
makes each point's pipeline; ``expand.py`` lists the points; ``sweep.py`` runs them on one Dask client, a point
starting once the stages it shares with an earlier point are in the cache; ``record.py`` keeps the experiment in the
artifact store (``experiments/<id>/experiment.json``); ``metrics.py`` says which metric ranks and in which
direction; ``compare.py`` ranks the points (or follows a schedule's runs over time) and ``plot.py`` draws them.
"""
