"""Loaded by every Python process the test session starts (its folder is put on their PYTHONPATH): in a ``dataops``
command, each Keystone token and application-credential secret it obtains is appended to the session's file of
minted secrets (``DATAOPS_TEST_MINTED_FILE``, outside every scanned place), so the session-end scan looks for
the secrets of its subprocesses too. Any other process (a control-plane service, ansible, a Dask worker) is left
alone, and nothing here runs outside a test session."""

import os
import sys

_FILE = os.environ.get("DATAOPS_TEST_MINTED_FILE")
_written = set()  # a cached token is handed out again at every call: written once


def _append(kind, value):
    if value and value not in _written:
        _written.add(value)
        with open(_FILE, "a", encoding="utf-8") as out:  # one short write per line: whole lines, in any order
            out.write(f"{kind}\t{value}\n")


def _remember_minted():
    from keystoneauth1.identity.base import BaseIdentityPlugin
    from openstack.identity.v3._proxy import Proxy

    get_access = BaseIdentityPlugin.get_access
    create = Proxy.create_application_credential

    def get_access_remembered(self, *args, **kwargs):
        access = get_access(self, *args, **kwargs)
        _append("Keystone token (dataops subprocess)", getattr(access, "auth_token", None))
        return access

    def create_remembered(self, *args, **attrs):
        created = create(self, *args, **attrs)
        _append("application-credential secret (dataops subprocess)", getattr(created, "secret", None))
        return created

    BaseIdentityPlugin.get_access = get_access_remembered
    Proxy.create_application_credential = create_remembered


if _FILE and os.path.basename(sys.argv[0] if sys.argv else "") == "dataops":
    try:
        _remember_minted()
    except ImportError:  # an environment without the cloud SDK mints nothing
        pass
