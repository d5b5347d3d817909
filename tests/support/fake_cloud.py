"""An in-memory cloud standing in for OpenStack at the ClusterCloud boundary, for unit tests only."""

from __future__ import annotations

from orchestrator.errors import StackFailed
from orchestrator.openstack.stacks import Leftover, StackEvent, StackSummary


class InMemoryCloud:
    def __init__(self, known_flavors=("m1.small", "gpu.small")):
        self.known_flavors = set(known_flavors)
        self.stacks: dict[str, dict] = {}
        self.keypairs: dict[str, str] = {}
        self.leftovers: list[Leftover] = []
        self.next_address = 10
        # Every wait asked of the cloud, as (stack, action, timeout in seconds): what the options reached.
        self.waits: list[tuple[str, str, float]] = []
        # Stacks whose delete fails while a server of theirs outside Heat's knowledge holds their port.
        self.lost_servers: dict[str, str] = {}

    def _nodes(self, name, params):
        nodes = [{"name": f"{name}-scheduler", "role": "scheduler", "address": "10.42.0.5"}]
        stack = self.stacks[name]
        for role, count_key, prefix in (("worker", "worker_count", "worker"), ("gpu_worker", "gpu_worker_count", "gpu-worker")):
            members = stack.setdefault(role, {})
            wanted = int(params[count_key])
            removal = [r for r in params.get(f"{role}_removal_list", "").split(",") if r]
            for index in removal:
                if len(members) > wanted:
                    members.pop(int(index), None)
            while len(members) > wanted:
                members.pop(max(members))
            index = 0
            while len(members) < wanted:
                if index not in members:
                    self.next_address += 1
                    members[index] = f"10.42.0.{self.next_address}"
                index += 1
            nodes += [{"name": f"{name}-{prefix}-{i}", "role": role, "address": a} for i, a in sorted(members.items())]
        return nodes

    def create_stack(self, name, template, environment_files, parameters, tags):
        assert template.exists() and all(f.exists() for f in environment_files)
        self.stacks[name] = {"params": dict(parameters), "tags": tags, "action": "CREATE", "env": environment_files}

    def update_stack(self, name, template, environment_files, parameters):
        self.stacks[name].update(params=dict(parameters), action="UPDATE")

    def wait_stack(self, name, action, on_event, timeout_s):
        self.waits.append((name, action, timeout_s))
        params = self.stacks[name]["params"]
        for flavor_key in ("scheduler_flavor", "worker_flavor", "gpu_worker_flavor"):
            if params[flavor_key] not in self.known_flavors:
                on_event(StackEvent("scheduler", f"{action}_FAILED", f"Flavor {params[flavor_key]} could not be found."))
                raise StackFailed(f"stack {name} {action}_FAILED: resource scheduler: Flavor {params[flavor_key]} could not be found.")
        self.stacks[name]["nodes"] = self._nodes(name, params)
        on_event(StackEvent(name, f"{action}_COMPLETE"))

    def stack_outputs(self, name):
        nodes = self.stacks[name]["nodes"]
        return {"nodes": nodes, "scheduler_url": "tls://10.42.0.5:8786", "dashboard_url": "http://10.42.0.5:8787/status",
                "scheduler_public_address": "203.0.113.50"}

    def find_stack(self, name):
        return StackSummary(name, "CREATE_COMPLETE") if name in self.stacks else None

    def list_stacks(self, tag):
        return [StackSummary(n, "CREATE_COMPLETE") for n, s in self.stacks.items() if tag in s["tags"]]

    def delete_stack(self, name, timeout_s):
        self.waits.append((name, "DELETE", timeout_s))
        if name in self.lost_servers and Leftover("server", self.lost_servers[name], name) in self.leftovers:
            raise StackFailed(f"stack {name} DELETE_FAILED: resource workers: Forbidden: rule:delete_port is "
                              f"disallowed by policy")
        self.stacks.pop(name, None)

    def create_keypair(self, name, public_key, cluster):
        self.keypairs[name] = public_key
        self.leftovers.append(Leftover("keypair", name, cluster))

    def list_leftovers(self, cluster):
        return [l for l in self.leftovers if cluster is None or l.cluster == cluster]

    def delete_leftover(self, leftover):
        self.leftovers = [l for l in self.leftovers if l != leftover]
        if leftover.kind == "keypair":
            self.keypairs.pop(leftover.id, None)
