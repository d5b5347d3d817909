"""``python -m netns_driver.cleanup STATE_DIR``: remove every namespace host (and its bridge) recorded under
STATE_DIR by the netns driver, for servers that were never deleted before the control plane stopped."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

from netns_driver.netns_host import Bridge, NetnsHost


def remove_hosts(root: Path) -> int:
    """Delete the hosts recorded under ``root`` and their bridges; return how many hosts were removed."""
    bridges: dict[str, Bridge] = {}
    removed = 0
    failures = []
    for record in sorted(root.glob("*/host.json")):
        try:
            saved = json.loads(record.read_text())
            bridge = bridges.setdefault(saved["bridge"], Bridge(saved["bridge"], ipaddress.ip_network(saved["cidr"])))
            NetnsHost(name=saved["name"], address=saved["address"], bridge=bridge, state_dir=record.parent,
                      authorized_key="").delete()
            removed += 1
        except Exception as exc:  # one broken record must not keep the others running
            failures.append(f"{record.parent.name}: {exc}")
    for bridge in bridges.values():
        bridge.delete()
    if failures:
        raise RuntimeError("could not remove: " + "; ".join(failures))
    return removed


if __name__ == "__main__":
    print(f"removed {remove_hosts(Path(sys.argv[1]))} namespace host(s)")
