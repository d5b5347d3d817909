"""The pipeline core: spec, stage graph, content-addressed cache, isolation, and the Dask runner."""
