"""A `dataops` command started by a test gets a real Keystone token (`cluster list --shared` reads the cloud): the session's secret scan looks for it, having
read it from the file the command wrote it to, and the command printed it nowhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import secret_scan

pytestmark = [pytest.mark.integration, pytest.mark.openstack, pytest.mark.chaos]


def test_the_tokens_a_dataops_subprocess_obtains_are_among_those_the_session_looks_for(cloud):
    before = {s.value for s in secret_scan.subprocess_secrets()}
    listed = subprocess.run([str(Path(sys.executable).with_name("dataops")), "cluster", "list", "--shared"],
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    minted = [s for s in secret_scan.subprocess_secrets() if s.value not in before]
    assert minted and {s.kind for s in minted} == {"Keystone token (dataops subprocess)"}
    assert all(s in secret_scan.session_secrets() for s in minted)
    assert not any(s.value in listed.stdout + listed.stderr for s in minted)
