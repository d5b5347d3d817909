"""The cluster use cases' cloud operations (``orchestrator.clusters.cloud.ClusterCloud``) on openstacksdk."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openstack.exceptions
from openstack.orchestration.util import template_utils

from orchestrator.errors import StackFailed, StackTimedOut
from orchestrator.openstack.connection import cloud_errors
from orchestrator.openstack.stacks import CLUSTER_TAG_PREFIX, Leftover, StackEvent, StackSummary, StackWatch
from orchestrator.waiting import POLL_SECONDS, wait_until

# A stack that is gone reads as deleted: deleting it again succeeds.
_GONE = "DELETE_COMPLETE"
SERVER_DELETE_TIMEOUT_S = 300
# No event and no resource in progress for this long: Heat dropped the stack's action. Two minutes, as a loaded
# engine can leave a queued step waiting a while; a stack whose servers take long to boot has them in progress.
LOST_AFTER_S = 120.0
LOST_CHECK_EVERY_S = 10.0


def _template_and_files(template: Path, environment_files: list[Path]) -> tuple[dict, dict, dict]:
    files, body = template_utils.get_template_contents(template_file=str(template))
    env_files, environment = template_utils.process_multiple_environments_and_files(
        env_paths=[str(p) for p in environment_files]
    )
    return body, {**files, **env_files}, environment


class OpenStackClusterCloud:
    """Heat stacks, key pairs and tagged leftovers of dataops clusters on one cloud connection."""

    def __init__(self, connection):
        self.conn = connection

    def create_stack(self, name, template, environment_files, parameters, tags):
        body, files, environment = _template_and_files(template, environment_files)
        with cloud_errors(f"cannot create stack {name}"):
            self.conn.orchestration.create_stack(
                name=name, template=body, files=files, environment=environment, parameters=parameters,
                tags=",".join(tags), disable_rollback=True, timeout_mins=60,
            )

    def update_stack(self, name, template, environment_files, parameters):
        body, files, environment = _template_and_files(template, environment_files)
        with cloud_errors(f"cannot update stack {name}"):
            stack = self.conn.orchestration.find_stack(name, ignore_missing=False)
            self.conn.orchestration.update_stack(
                stack, template=body, files=files, environment=environment, parameters=parameters
            )

    def wait_stack(self, name, action, on_event: Callable[[StackEvent], None], timeout_s):
        with cloud_errors(f"cannot follow stack {name}"):
            stack = self.conn.orchestration.find_stack(name, ignore_missing=False)
            watch = StackWatch(self.conn.orchestration, stack, settled=[f"{action}_COMPLETE", f"{action}_FAILED"])
            checked_at = [0.0]

            def poll():
                current = watch.poll(on_event)
                # A stack in progress with no event and no resource in progress for two minutes is one Heat dropped
                # (a message of the action lost, as when RabbitMQ restarts mid-create): it would never settle, so
                # the wait ends now rather than at its deadline (half an hour by default). Checked every 10 s.
                if (str(current.status).endswith("_IN_PROGRESS") and watch.quiet_for() >= LOST_AFTER_S
                        and time.monotonic() - checked_at[0] >= LOST_CHECK_EVERY_S):
                    checked_at[0] = time.monotonic()
                    if not self._busy(stack):
                        raise StackTimedOut(
                            f"stack {name} is still {current.status} but none of its resources is in progress, and "
                            f"{watch.since_last_event()}: Heat has dropped the action (a message lost while its "
                            f"engine or message queue restarted) and will not finish it; delete the stack and "
                            f"create it again")
                return current

            try:
                wait_until(
                    poll, status=lambda current: current.status, ready=[f"{action}_COMPLETE"],
                    failures=[f"{action}_FAILED"], timeout_s=timeout_s, what=f"stack {name}",
                    interval_s=POLL_SECONDS, reason=self._failure, timeout_error=StackTimedOut,
                    failure_error=StackFailed,
                )
            except StackTimedOut as exc:
                raise StackTimedOut(f"{exc}; {watch.since_last_event()}, and "
                                    f"{self._in_progress(stack)}. Heat leaves a stack in progress for good when its "
                                    f"engine stops during the action (a heat-engine restart, for one)") from None

    def _busy(self, stack) -> list[str]:
        return sorted(r.name for r in self.conn.orchestration.resources(stack, nested_depth=5)
                      if r.status and r.status.endswith("IN_PROGRESS"))

    def _in_progress(self, stack) -> str:
        busy = self._busy(stack)
        return f"these resources are still in progress: {', '.join(busy)}" if busy else "no resource is in progress"

    def _failure(self, stack) -> str:
        # The stack's own reason is generic; a failed resource carries the cloud's real reason.
        failed = [
            r for r in self.conn.orchestration.resources(stack, nested_depth=5)
            if r.status and r.status.endswith("FAILED")
        ]
        if failed:
            leaf = min(failed, key=lambda r: r.resource_type.endswith(".yaml") or r.resource_type.startswith("OS::Heat"))
            return f"resource {leaf.name}: {leaf.status_reason}"
        return stack.status_reason or "no reason given"

    def stack_outputs(self, name):
        with cloud_errors(f"cannot read outputs of stack {name}"):
            stack = self.conn.orchestration.find_stack(name, ignore_missing=False)
            stack = self.conn.orchestration.get_stack(stack.id)
            return {o["output_key"]: o.get("output_value") for o in stack.outputs or []}

    def find_stack(self, name):
        with cloud_errors(f"cannot look up stack {name}"):
            stack = self.conn.orchestration.find_stack(name, ignore_missing=True)
        if stack is None:
            return None
        return StackSummary(stack.name, stack.status, tuple(stack.tags or ()), stack.created_at or "")

    def list_stacks(self, tag):
        with cloud_errors("cannot list stacks"):
            return [StackSummary(s.name, s.status, tuple(s.tags or ()), s.created_at or "")
                    for s in self.conn.orchestration.stacks(tags=tag)]

    def delete_stack(self, name, timeout_s):
        with cloud_errors(f"cannot delete stack {name}"):
            stack = self.conn.orchestration.find_stack(name, ignore_missing=True)
            if stack is None:
                return
            self.conn.orchestration.delete_stack(stack, ignore_missing=True)

            def poll():
                try:
                    return self.conn.orchestration.get_stack(stack.id, resolve_outputs=False)
                except openstack.exceptions.NotFoundException:
                    return None

            wait_until(
                poll, status=lambda current: _GONE if current is None else current.status, ready=[_GONE],
                failures=["DELETE_FAILED"], timeout_s=timeout_s, what=f"stack {name}", interval_s=POLL_SECONDS,
                reason=self._failure, timeout_error=StackTimedOut, failure_error=StackFailed,
            )

    def create_keypair(self, name, public_key, cluster):
        with cloud_errors(f"cannot create key pair {name}"):
            if self.conn.compute.find_keypair(name, ignore_missing=True) is None:
                self.conn.compute.create_keypair(name=name, public_key=public_key)

    def list_leftovers(self, cluster):
        leftovers = []
        with cloud_errors("cannot list cluster resources"):
            for key in self.conn.compute.keypairs():
                owner = key.name.removeprefix("dataops-")
                # Endpoints' and schedule runners' key pairs are theirs: their own deletes remove them.
                theirs = key.name.startswith(("dataops-endpoint-", "dataops-runner-"))
                if key.name.startswith("dataops-") and not theirs and (cluster is None or owner == cluster):
                    leftovers.append(Leftover("keypair", key.name, owner))
            leftovers += self.list_tagged(CLUSTER_TAG_PREFIX, cluster)
        return leftovers

    def list_tagged(self, tag_prefix, owner):
        leftovers = []
        with cloud_errors("cannot list tagged ports"):
            ports = self.conn.network.ports(tags=[f"{tag_prefix}{owner}"]) if owner else self.conn.network.ports()
            for port in ports:
                found = next((t.removeprefix(tag_prefix) for t in port.tags or [] if t.startswith(tag_prefix)), None)
                if found:
                    for fip in self.conn.network.ips(port_id=port.id):
                        leftovers.append(Leftover("floating_ip", fip.id, found))
                    # A server still bound to the port (one Heat lost track of) goes first: the port is its own.
                    if (port.device_owner or "").startswith("compute:") and port.device_id:
                        leftovers.append(Leftover("server", port.device_id, found))
                    leftovers.append(Leftover("port", port.id, found))
        return leftovers

    def delete_leftover(self, leftover):
        with cloud_errors(f"cannot delete {leftover.kind} {leftover.id}"):
            if leftover.kind == "keypair":
                self.conn.compute.delete_keypair(leftover.id, ignore_missing=True)
            elif leftover.kind == "floating_ip":
                self.conn.network.delete_ip(leftover.id, ignore_missing=True)
            elif leftover.kind == "server":
                server = self.conn.compute.find_server(leftover.id, ignore_missing=True)
                if server is not None:
                    self.conn.compute.delete_server(server, ignore_missing=True)
                    self.conn.compute.wait_for_delete(server, wait=SERVER_DELETE_TIMEOUT_S)
            elif leftover.kind == "port":
                self.conn.network.delete_port(leftover.id, ignore_missing=True)
