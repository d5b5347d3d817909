"""Plain records of what the cloud holds for dataops: Heat stack summaries and events, and the tagged resources
(key pairs, ports, floating IPs) a stack may leave behind, with the tags that name their owner; and the feed that
reads a stack's new events while a wait follows it."""

from __future__ import annotations

import time

from dataclasses import dataclass, field

CLUSTER_TAG_PREFIX = "dataops-cluster="


def cluster_tag(name: str) -> str:
    """The tag every resource of cluster ``name`` carries."""
    return f"{CLUSTER_TAG_PREFIX}{name}"


@dataclass(frozen=True)
class StackEvent:
    """One Heat event, shown as it happens."""

    resource: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class StackSummary:
    """A cluster's stack as listed by the cloud."""

    name: str
    status: str
    tags: tuple[str, ...] = ()
    created_at: str = ""


@dataclass(frozen=True)
class Leftover:
    """A cloud resource tagged with a cluster (floating IP, port, key pair, application credential)."""

    kind: str
    id: str
    cluster: str
    extra: dict = field(default_factory=dict, compare=False)


class StackEventFeed:
    """The events of one stack, each handed on once and in order, read a page of new ones at a time.

    Each read asks Heat only for the events after the last one seen (its id as the ``marker``, oldest first), so a
    poll costs the same whether the stack has 10 events or 10,000: listing every event at every poll grew with
    the stack (a 32-worker cluster has hundreds) and slowed both the wait and Heat. Ids already handed on are
    also remembered: Heat purges a stack's oldest events past ``max_events_per_stack``, and a purged marker makes it
    list from the start again.
    """

    def __init__(self, orchestration, stack):
        """Follow ``stack`` (an openstacksdk Stack) through ``orchestration`` (the connection's proxy)."""
        self._orchestration = orchestration
        self._stack = stack
        self._marker: str | None = None
        self._seen: set[str] = set()
        self.stack_status: str | None = None

    def new_events(self) -> list[StackEvent]:
        """The events Heat recorded since the last call (all of them on the first), oldest first.

        ``stack_status`` becomes the status in the newest of them that is the stack's own (Heat records the
        stack's ``CREATE_IN_PROGRESS`` and ``CREATE_COMPLETE`` as events of a resource named after it), or None.
        """
        query = {"sort_dir": "asc"}
        if self._marker is not None:
            query["marker"] = self._marker
        events = list(self._orchestration.stack_events(self._stack, **query))
        if events:
            self._marker = events[-1].id
        fresh = [e for e in events if e.id not in self._seen]
        self._seen.update(e.id for e in fresh)
        own = [e for e in fresh if e.resource_name == self._stack.name
               or getattr(e, "physical_resource_id", None) == self._stack.id]
        self.stack_status = own[-1].resource_status if own else None
        return [StackEvent(e.resource_name, e.resource_status, e.resource_status_reason or "") for e in fresh]


@dataclass(frozen=True)
class StackProgress:
    """What a poll knows of a stack without asking Heat for the stack itself: its last status."""

    status: str


class StackWatch:
    """One wait's view of a stack, as cheap for Heat as ``openstack stack create --wait`` is: each poll reads the
    new events only, and asks for the stack itself (without resolving its outputs) only on the first poll, when its
    own event says it has settled, or after ``QUIET_POLLS`` polls with no event at all (so a wait whose events were
    lost still ends). Every other status read costs Heat an RPC to the engine that is building the stack.
    """

    # 5 polls of 2 s: the stack is read after 10 s without events, as the OpenStack client does (2 polls of 5 s).
    QUIET_POLLS = 5

    def __init__(self, orchestration, stack, settled):
        """Follow ``stack`` until one of the ``settled`` statuses (``CREATE_COMPLETE``, ``CREATE_FAILED``)."""
        self.feed = StackEventFeed(orchestration, stack)
        self._orchestration = orchestration
        self._stack = stack
        self._settled = set(settled)
        self._quiet = 0
        self._last = None
        self._last_event: tuple[float, StackEvent] | None = None
        self._started = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the stack's last event (since the wait began, before any)."""
        return time.monotonic() - (self._last_event[0] if self._last_event else self._started)

    def since_last_event(self) -> str:
        """How long the stack has been quiet and what it last did, for a timeout's message."""
        if self._last_event is None:
            return "Heat recorded no event for it"
        at, event = self._last_event
        return f"its last event came {time.monotonic() - at:.0f} s before ({event.resource} {event.status})"

    def poll(self, on_event):
        """Hand every new event to ``on_event``; return the stack (an openstacksdk Stack) when Heat was asked for it,
        else a ``StackProgress`` with its last known status. A settled status is always the stack's own answer."""
        events = self.feed.new_events()
        for event in events:
            on_event(event)
        if events:
            self._last_event = (time.monotonic(), events[-1])
        self._quiet = 0 if events else self._quiet + 1
        if self._last is None or self.feed.stack_status in self._settled or self._quiet >= self.QUIET_POLLS:
            self._last = self._orchestration.get_stack(self._stack.id, resolve_outputs=False)
            self._quiet = 0
            return self._last
        return StackProgress(self.feed.stack_status or self._last.status)
