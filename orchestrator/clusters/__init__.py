"""Dask clusters on OpenStack: the cluster file, TLS material, provisioning, scaling, teardown and sweeping."""
