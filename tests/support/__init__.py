"""What several tests share: fakes of boundaries (a cloud), tiny model folders, a live inference server.

``tests`` and ``devstack`` are on pytest's ``pythonpath`` (pyproject.toml), so tests import ``support.<module>``
and the namespace-host helpers ``netns_driver.netns_host`` without touching ``sys.path`` themselves.
"""
