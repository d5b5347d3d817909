"""The openstacksdk cluster cloud waits through the one wait helper: a failed stack raises StackFailed naming the
failed resource and the cloud's reason, a stack still in progress at the deadline raises StackTimedOut, and a
stack that is gone counts as deleted. Heat is played by a small in-memory orchestration proxy (the integration
tests run the real one)."""

from __future__ import annotations

from types import SimpleNamespace

import openstack.exceptions
import pytest

from orchestrator.errors import StackFailed, StackTimedOut
from orchestrator.openstack import cluster_cloud
from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud


class Orchestration:
    """Answers get_stack with ``status`` (or 404 when it is None), lists ``failed`` as failed resources and ``busy``
    as resources in progress, and has recorded ``events`` ((resource, status) pairs)."""

    def __init__(self, status, failed=(), busy=(), events=()):
        self.status, self.failed, self.busy, self.deleted = status, list(failed), list(busy), False
        self.events = [SimpleNamespace(id=f"e{i}", resource_name=resource, resource_status=state,
                                       resource_status_reason="state changed", physical_resource_id=f"r{i}")
                       for i, (resource, state) in enumerate(events)]

    def find_stack(self, name, ignore_missing=True):
        return SimpleNamespace(id="stack-1", name=name, status=self.status)

    def get_stack(self, stack_id, resolve_outputs=True):
        if self.status is None:
            raise openstack.exceptions.NotFoundException("Stack not found")
        return SimpleNamespace(id=stack_id, status=self.status, status_reason="Resource CREATE failed")

    def stack_events(self, stack, **query):
        return [] if "marker" in query else self.events

    def resources(self, stack, nested_depth=0):
        return [SimpleNamespace(name=name, status="CREATE_FAILED", status_reason=reason, resource_type="OS::Nova::Server")
                for name, reason in self.failed] + [
                SimpleNamespace(name=name, status="CREATE_IN_PROGRESS", status_reason="", resource_type="node.yaml")
                for name in self.busy]

    def delete_stack(self, stack, ignore_missing=True):
        self.deleted = True


def _cloud(orchestration):
    return OpenStackClusterCloud(SimpleNamespace(orchestration=orchestration))


def test_a_failed_stack_raises_stack_failed_naming_the_resource_and_the_clouds_reason():
    cloud = _cloud(Orchestration("CREATE_FAILED", failed=[("scheduler", "Quota exceeded for instances")]))
    with pytest.raises(StackFailed, match="stack demo CREATE_FAILED: resource scheduler: Quota exceeded for instances"):
        cloud.wait_stack("demo", "CREATE", lambda event: None, timeout_s=60)


def test_a_stack_still_in_progress_at_the_deadline_raises_stack_timed_out_not_stack_failed():
    cloud = _cloud(Orchestration("CREATE_IN_PROGRESS"))
    with pytest.raises(StackTimedOut, match="stack demo still CREATE_IN_PROGRESS after 0 s"):
        cloud.wait_stack("demo", "CREATE", lambda event: None, timeout_s=0)


def test_a_stack_left_in_progress_says_what_it_did_last_and_which_resources_still_wait():
    # What Heat shows of a stack whose engine stopped mid-create: no more events, resources in progress for good.
    cloud = _cloud(Orchestration("CREATE_IN_PROGRESS", busy=["workers", "scheduler"],
                                 events=[("demo", "CREATE_IN_PROGRESS"), ("server_group", "CREATE_IN_PROGRESS")]))
    with pytest.raises(StackTimedOut) as timed_out:
        cloud.wait_stack("demo", "CREATE", lambda event: None, timeout_s=0)
    message = str(timed_out.value)
    assert "its last event came 0 s before (server_group CREATE_IN_PROGRESS)" in message
    assert "these resources are still in progress: scheduler, workers" in message
    assert "heat-engine restart" in message


def test_a_stack_heat_dropped_ends_the_wait_early_saying_so(monkeypatch):
    # What Heat shows of a stack whose action lost a message (RabbitMQ restarted mid-create): still in progress,
    # every resource settled, no event any more.
    monkeypatch.setattr(cluster_cloud, "LOST_AFTER_S", 0.0)
    cloud = _cloud(Orchestration("CREATE_IN_PROGRESS",
                                 events=[("demo", "CREATE_IN_PROGRESS"), ("workers", "CREATE_COMPLETE")]))
    with pytest.raises(StackTimedOut) as lost:
        cloud.wait_stack("demo", "CREATE", lambda event: None, timeout_s=60)
    message = str(lost.value)
    assert "stack demo is still CREATE_IN_PROGRESS but none of its resources is in progress" in message
    assert "its last event came 0 s before (workers CREATE_COMPLETE)" in message
    assert "delete the stack and create it again" in message


def test_a_quiet_stack_with_a_resource_still_in_progress_is_waited_for_until_the_deadline(monkeypatch):
    # A server that takes long to boot sends no event while it does: that is no sign of a dropped stack.
    monkeypatch.setattr(cluster_cloud, "LOST_AFTER_S", 0.0)
    cloud = _cloud(Orchestration("CREATE_IN_PROGRESS", busy=["scheduler"], events=[("demo", "CREATE_IN_PROGRESS")]))
    with pytest.raises(StackTimedOut, match="stack demo still CREATE_IN_PROGRESS after 0 s"):
        cloud.wait_stack("demo", "CREATE", lambda event: None, timeout_s=0.1)


def test_a_complete_stack_ends_the_wait():
    _cloud(Orchestration("UPDATE_COMPLETE")).wait_stack("demo", "UPDATE", lambda event: None, timeout_s=0)


def test_deleting_counts_a_stack_that_is_gone_as_deleted():
    orchestration = Orchestration(None)
    _cloud(orchestration).delete_stack("demo", timeout_s=0)
    assert orchestration.deleted


def test_a_failed_delete_raises_stack_failed_and_a_slow_one_stack_timed_out():
    failed = Orchestration("DELETE_FAILED", failed=[("port", "Port is in use")])
    with pytest.raises(StackFailed, match="stack demo DELETE_FAILED: resource port: Port is in use"):
        _cloud(failed).delete_stack("demo", timeout_s=60)
    with pytest.raises(StackTimedOut, match="stack demo still DELETE_IN_PROGRESS after 0 s"):
        _cloud(Orchestration("DELETE_IN_PROGRESS")).delete_stack("demo", timeout_s=0)
