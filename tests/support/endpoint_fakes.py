"""A fake cloud and fake playbook runs for deploy tests (the integration tests run both for real)."""

from __future__ import annotations

from orchestrator.errors import ConfigurationFailed
from orchestrator.openstack.stacks import Leftover, StackEvent, StackSummary


ENDPOINT_FILE = """\
name: ignored
image: img
flavor: cpu
nodes: 2
operator_cidr: 127.0.0.1/32
client_cidr: 10.0.0.0/8
"""


class EndpointCloud:
    def __init__(self):
        self.stacks, self.keypairs = {}, set()
        self.ports = {"p1": "dataops-endpoint=web", "p2": "dataops-endpoint=other"}
        self.waits = []  # (stack, action, timeout in seconds) of every wait asked for

    def create_stack(self, name, template, environment_files, parameters, tags):
        assert template.name == "inference.yaml"
        self.stacks[name] = dict(parameters)

    def update_stack(self, name, template, environment_files, parameters):
        self.stacks[name] = dict(parameters)

    def wait_stack(self, name, action, on_event, timeout_s):
        self.waits.append((name, action, timeout_s))
        on_event(StackEvent(name, f"{action}_COMPLETE"))

    def stack_outputs(self, name):
        count, scheme = int(self.stacks[name]["node_count"]), self.stacks[name]["serving_scheme"]
        nodes = [{"name": f"web-{i}", "address": f"10.43.0.{10 + i}", "public_address": f"203.0.113.{10 + i}"}
                 for i in range(count)]
        return {"nodes": nodes, "endpoint_urls": [f"{scheme}://{n['public_address']}:8000" for n in nodes]}

    def find_stack(self, name):
        return StackSummary(name, "CREATE_COMPLETE") if name in self.stacks else None

    def delete_stack(self, name, timeout_s):
        self.waits.append((name, "DELETE", timeout_s))
        self.stacks.pop(name, None)

    def create_keypair(self, name, public_key, cluster):
        self.keypairs.add(name)

    def list_tagged(self, tag_prefix, owner):
        return [Leftover("port", p, owner) for p, tag in self.ports.items() if tag == f"{tag_prefix}{owner}"]

    def delete_leftover(self, leftover):
        if leftover.kind == "keypair":
            self.keypairs.discard(leftover.id)
        else:
            self.ports.pop(leftover.id, None)


class Playbooks:
    """Records each run (node, versions); refuses the versions listed in ``refuse``."""

    def __init__(self, refuse=()):
        self.runs, self.refuse, self.extravars = [], set(refuse), []

    def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
        versions = [m["version"] for m in extravars["onnx_server_models"]]
        self.runs.append((limit, versions))
        self.extravars.append(extravars)
        if set(versions) & self.refuse:
            raise ConfigurationFailed(f"{limit}: task 'Load the changed models' failed: example output 'label' differs")
