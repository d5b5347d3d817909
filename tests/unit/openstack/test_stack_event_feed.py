"""Following a stack costs Heat as little as ``openstack stack create --wait`` does: each poll asks only for the
events after the last one seen, every event is shown once and in order, the stack itself is read (without resolving
its outputs) only on the first poll, when its own event says it settled, or after two polls with no event, and a
failed resource's reason still ends the wait. Heat is played by an in-memory orchestration proxy that lists events
as Heat does (newest first unless asked ``sort_dir=asc``; after ``marker``; from the start when the marker is gone)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orchestrator.errors import StackFailed
from orchestrator.openstack import cluster_cloud
from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud
from orchestrator.openstack.stacks import StackEvent, StackEventFeed, StackWatch


class Heat:
    """A stack named ``demo`` that moves one step at each poll: the step's status, and its events recorded just
    before the poll lists them."""

    def __init__(self, steps: list[tuple[str, list[tuple[str, str, str]]]], history=(), failed=()):
        self.steps, self.failed = list(steps), list(failed)
        self.events: list[SimpleNamespace] = []
        self.status = "CREATE_IN_PROGRESS"
        self.event_queries: list[dict] = []
        self.resolved_outputs: list[bool] = []
        self.purged: set[str] = set()
        self.record(history)

    def record(self, events):
        for resource, status, reason in events:
            self.events.append(SimpleNamespace(id=f"e{len(self.events) + 1}", resource_name=resource,
                                               resource_status=status, resource_status_reason=reason,
                                               physical_resource_id="stack-1" if resource == "demo" else "r"))

    def find_stack(self, name, ignore_missing=True):
        return SimpleNamespace(id="stack-1", name=name, status=self.status)

    def get_stack(self, stack_id, resolve_outputs=True):
        self.resolved_outputs.append(resolve_outputs)
        return SimpleNamespace(id=stack_id, name="demo", status=self.status, status_reason="Resource CREATE failed")

    def stack_events(self, stack, marker=None, sort_dir=None):
        if self.steps:
            self.status, recorded = self.steps.pop(0)
            self.record(recorded)
        self.event_queries.append({"marker": marker, "sort_dir": sort_dir})
        ordered = list(self.events) if sort_dir == "asc" else list(reversed(self.events))
        ids = [e.id for e in ordered]
        if marker is not None and marker not in self.purged and marker in ids:
            ordered = ordered[ids.index(marker) + 1:]
        return iter(ordered)

    def resources(self, stack, nested_depth=0):
        return [SimpleNamespace(name=n, status="CREATE_FAILED", status_reason=r, resource_type="OS::Nova::Server")
                for n, r in self.failed]


@pytest.fixture(autouse=True)
def no_pause_between_polls(monkeypatch):
    monkeypatch.setattr(cluster_cloud, "POLL_SECONDS", 0.0)


def follow(heat: Heat, action: str = "CREATE") -> list[StackEvent]:
    shown: list[StackEvent] = []
    OpenStackClusterCloud(SimpleNamespace(orchestration=heat)).wait_stack("demo", action, shown.append, 60)
    return shown


def test_every_event_is_shown_once_in_order_and_each_poll_asks_only_for_events_after_the_last_seen():
    heat = Heat([
        ("CREATE_IN_PROGRESS", [("demo", "CREATE_IN_PROGRESS", "Stack CREATE started"),
                                ("network", "CREATE_IN_PROGRESS", "state changed")]),
        ("CREATE_IN_PROGRESS", [("network", "CREATE_COMPLETE", "state changed")]),
        ("CREATE_IN_PROGRESS", []),
        ("CREATE_COMPLETE", [("workers", "CREATE_COMPLETE", "state changed"),
                             ("demo", "CREATE_COMPLETE", "Stack CREATE completed successfully")]),
    ])
    shown = follow(heat)
    assert [(e.resource, e.status) for e in shown] == [
        ("demo", "CREATE_IN_PROGRESS"), ("network", "CREATE_IN_PROGRESS"), ("network", "CREATE_COMPLETE"),
        ("workers", "CREATE_COMPLETE"), ("demo", "CREATE_COMPLETE")]
    assert shown[-1].reason == "Stack CREATE completed successfully"
    assert heat.event_queries == [
        {"marker": None, "sort_dir": "asc"}, {"marker": "e2", "sort_dir": "asc"},
        {"marker": "e3", "sort_dir": "asc"}, {"marker": "e3", "sort_dir": "asc"}]


def test_the_stack_is_read_on_the_first_poll_when_it_says_it_settled_and_after_quiet_polls():
    quiet = StackWatch.QUIET_POLLS
    heat = Heat([
        ("CREATE_IN_PROGRESS", [("demo", "CREATE_IN_PROGRESS", "")]),   # read: the first poll
        *[("CREATE_IN_PROGRESS", [])] * quiet,                          # read: after `quiet` polls without events
        ("CREATE_IN_PROGRESS", [("workers", "CREATE_COMPLETE", "")]),
        *[("CREATE_COMPLETE", [])] * quiet,   # its own event lost: read after `quiet` polls, and it is complete
    ])
    follow(heat)
    assert len(heat.event_queries) == 2 + 2 * quiet
    assert heat.resolved_outputs == [False, False, False]


def test_a_settled_event_left_from_an_earlier_update_does_not_end_the_wait():
    heat = Heat([("UPDATE_IN_PROGRESS", []), ("UPDATE_IN_PROGRESS", [("workers", "UPDATE_COMPLETE", "")]),
                 ("UPDATE_COMPLETE", [("demo", "UPDATE_COMPLETE", "Stack UPDATE completed successfully")])],
                history=[("demo", "UPDATE_IN_PROGRESS", ""), ("demo", "UPDATE_COMPLETE", "earlier update")])
    shown = follow(heat, "UPDATE")
    assert len(heat.event_queries) == 3
    assert shown[-1] == StackEvent("demo", "UPDATE_COMPLETE", "Stack UPDATE completed successfully")


def test_a_failed_resource_is_shown_and_its_reason_ends_the_wait():
    heat = Heat([
        ("CREATE_IN_PROGRESS", [("scheduler", "CREATE_IN_PROGRESS", "state changed")]),
        ("CREATE_FAILED", [("scheduler", "CREATE_FAILED", "Quota exceeded for instances"),
                           ("demo", "CREATE_FAILED", "Resource CREATE failed")]),
    ], failed=[("scheduler", "Quota exceeded for instances")])
    shown: list[StackEvent] = []
    with pytest.raises(StackFailed, match="stack demo CREATE_FAILED: resource scheduler: Quota exceeded"):
        OpenStackClusterCloud(SimpleNamespace(orchestration=heat)).wait_stack("demo", "CREATE", shown.append, 60)
    assert StackEvent("scheduler", "CREATE_FAILED", "Quota exceeded for instances") in shown
    assert heat.resolved_outputs == [False, False]


def test_when_heat_has_purged_the_marker_and_lists_from_the_start_no_event_is_shown_twice():
    heat = Heat([("CREATE_IN_PROGRESS", [("a", "CREATE_IN_PROGRESS", ""), ("b", "CREATE_IN_PROGRESS", "")])])
    feed = StackEventFeed(heat, heat.find_stack("demo"))
    assert [e.resource for e in feed.new_events()] == ["a", "b"]
    heat.purged.add("e2")
    heat.events.append(SimpleNamespace(id="e3", resource_name="c", resource_status="CREATE_COMPLETE",
                                       resource_status_reason=""))
    assert [e.resource for e in feed.new_events()] == ["c"]
    assert feed.new_events() == []
