"""Scan what the test session wrote for the secrets it used: none may appear in a log, a run or stage record, a model
card, a capture or an ansible-runner artifact.

The secrets are the control plane's (every value of ``devstack/.state/secrets.env``, every password, token and
application-credential secret of its ``clouds.yaml``) and those the session mints: whatever calls
:func:`remember_secret` (the serving bearer token of ``live_server``), and, collected at the boundary once
:func:`collect_minted_secrets` has run, every application-credential secret sent to Keystone, every Keystone token
this process obtains, every Swift TempURL key the store signs with and the signature of every URL it signs; the
``dataops`` commands the tests start as subprocesses write the tokens and application-credential secrets they
obtain to a file of the session's own (``minted/sitecustomize.py``), read by the scan.

The places are the session's pytest temporary folder (stores, captures, model folders, namespace hosts' files),
``~/.dataops`` and ``./.dataops``, and each ansible-runner private data directory, scanned when its run ends
(``orchestrator.ansible`` deletes it right after). Files that hold a secret by purpose (a ``clouds.yaml``, a token
file handed to ``--token-file``, keys) and installed packages are skipped. A hit is reported as file and byte
offset, with the secret's kind and the first 12 hex digits of its sha256: never the secret itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support import chaos_table

# Imported as ``support.secret_scan`` and as ``tests.support.secret_scan``: one module, so one set of secrets.
for _alias in ("support.secret_scan", "tests.support.secret_scan"):
    sys.modules.setdefault(_alias, sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[2]
CONTROL_PLANE = ROOT / "devstack" / ".state"
MIN_LENGTH = 8  # shorter values ("admin") would match innocent text; none of the secrets used is that short
CHUNK = 8 << 20
# Files that are credentials by purpose, and folders of installed code: not output of the suite.
# "token": what the tests hand to --token-file; "extravars": ansible-runner's input, the variables a playbook is
# given (tokens, signed URLs), in a private directory removed when the run ends. "onnx-follow.json": a node's
# follower configuration, its two signed URLs.
PURPOSE_FILES = ("clouds.yaml", "secure.yaml", "token", "extravars", "onnx-follow.json")
PURPOSE_SUFFIXES = (".token", ".key", ".pem", ".crt", ".whl", ".capture-url")  # .capture-url: a node's signed URL
SKIPPED_FOLDERS = ("site-packages", "dist-packages", "__pycache__")
SECRET_AUTH_FIELDS = ("password", "token", "application_credential_secret")
MINTED_HOOK = Path(__file__).resolve().parent / "minted"  # the subprocesses' sitecustomize
MINTED_FILE_VARIABLE = "DATAOPS_TEST_MINTED_FILE"


@dataclass(frozen=True)
class Secret:
    """A value that must never be written: what kind it is, and the value."""

    kind: str
    value: str = field(repr=False)

    @property
    def digest(self) -> str:
        """What a report prints instead of the value."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:12]

    def forms(self) -> set[bytes]:
        """The value as written raw, URL-quoted and JSON-escaped."""
        return {form.encode() for form in (self.value, urllib.parse.quote(self.value, safe=""),
                                            json.dumps(self.value)[1:-1])}


@dataclass(frozen=True)
class Hit:
    """One secret found: where (file and byte offset) and which (kind and digest)."""

    path: str
    offset: int
    kind: str
    digest: str

    def __str__(self) -> str:
        return f"{self.path}:{self.offset}: {self.kind} (sha256 {self.digest}...)"


@dataclass
class ScanResult:
    """What a scan read and found."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    hits: list[Hit] = field(default_factory=list)

    def add(self, other: ScanResult) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.skipped += other.skipped
        self.hits += other.hits


_remembered: dict[str, str] = {}
_early_scanned = ScanResult()  # ansible-runner private data directories, scanned before their removal


def remember_secret(value: str | None, kind: str = "token") -> None:
    """Add a secret the session minted to those the session-end scan looks for (empty values are ignored)."""
    if value:
        _remembered.setdefault(str(value), kind)


def control_plane_secrets(state: Path = CONTROL_PLANE) -> list[Secret]:
    """The control plane's secrets: every value of ``secrets.env``, every password and token of ``clouds.yaml``."""
    found = []
    env = state / "secrets.env"
    if env.is_file():
        for line in env.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and value.strip() and not name.lstrip().startswith("#"):
                found.append(Secret(f"control-plane secret {name.strip()}", value.strip().strip("'\"")))
    clouds = state / "clouds.yaml"
    if clouds.is_file():
        for cloud, entry in (yaml.safe_load(clouds.read_text()) or {}).get("clouds", {}).items():
            for name in SECRET_AUTH_FIELDS:
                if value := (entry.get("auth") or {}).get(name):
                    found.append(Secret(f"cloud {name} ({cloud})", str(value)))
    return found


def session_secrets() -> list[Secret]:
    """Every secret the session knows of, long enough to be told from ordinary text."""
    secrets = (control_plane_secrets() + [Secret(kind, value) for value, kind in _remembered.items()]
               + subprocess_secrets())
    unique = {secret.value: secret for secret in secrets}
    return [secret for secret in unique.values() if len(secret.value) >= MIN_LENGTH]


def _skipped(path: Path) -> bool:
    name = path.name.lower()
    return name in PURPOSE_FILES or name.endswith(PURPOSE_SUFFIXES) or any(p in SKIPPED_FOLDERS for p in path.parts)


def scan_file(path: Path, secrets: list[Secret]) -> list[Hit]:
    """Every place in ``path`` where one of ``secrets`` appears, read in chunks that overlap by a secret's length."""
    needles = [(form, secret) for secret in secrets for form in secret.forms()]
    if not needles:
        return []
    overlap = max(len(form) for form, _ in needles) - 1
    hits, seen, offset, tail = [], set(), 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            window, base = tail + chunk, offset - len(tail)
            for form, secret in needles:
                at = window.find(form)
                while at != -1:
                    if (base + at, secret.digest) not in seen:
                        seen.add((base + at, secret.digest))
                        hits.append(Hit(str(path), base + at, secret.kind, secret.digest))
                    at = window.find(form, at + 1)
            offset += len(chunk)
            tail = window[-overlap:] if overlap else b""
    return hits


def scan(places: list[Path], secrets: list[Secret]) -> ScanResult:
    """Scan every regular file under ``places`` (folders or files) for ``secrets``."""
    result = ScanResult()
    for place in places:
        if not place.exists():
            continue
        files = [place] if place.is_file() else sorted(
            p for p in place.rglob("*") if p.is_file() and not p.is_symlink())
        for path in files:
            if _skipped(path.relative_to(place) if place.is_dir() else Path(path.name)):
                result.skipped += 1
                continue
            try:
                result.hits += scan_file(path, secrets)
                result.bytes += path.stat().st_size
                result.files += 1
            except OSError:  # removed while being read (a server's log rotated, a test cleaning up): not output
                result.skipped += 1
    return result


def collect_minted_secrets() -> None:
    """Remember, from now on, the secrets this process mints or receives at the boundaries that make them.

    Application-credential secrets as they are sent to Keystone, Keystone tokens as keystoneauth obtains them,
    TempURL keys as the Swift store reads or sets them, the signature of every URL it signs; and each ansible-runner private data directory is scanned
    when its run returns, before ``orchestrator.ansible`` removes it. Calling it twice changes nothing.
    """
    if getattr(collect_minted_secrets, "done", False):
        return
    collect_minted_secrets.done = True
    _collect_from_subprocesses()
    _wrap_application_credentials()
    _wrap_keystone_tokens()
    _wrap_temp_url_keys()
    _wrap_signed_urls()
    _wrap_ansible_runner()


def _collect_from_subprocesses() -> None:
    """Have every ``dataops`` command the session starts write what it mints to a file of the session's own (see
    ``minted/sitecustomize.py``); the file lies outside every scanned place, and is read by the scan."""
    folder = Path(tempfile.mkdtemp(prefix="dataops-minted-"))
    os.chmod(folder, 0o700)
    os.environ[MINTED_FILE_VARIABLE] = str(folder / "minted.tsv")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(MINTED_HOOK), os.environ.get("PYTHONPATH")]))


def subprocess_secrets() -> list[Secret]:
    """What the session's ``dataops`` subprocesses minted, as far as they have written it."""
    path = Path(os.environ.get(MINTED_FILE_VARIABLE, "/nonexistent"))
    if not path.is_file():
        return []
    lines = (line.partition("\t") for line in path.read_text(encoding="utf-8").splitlines())
    return [Secret(kind, value) for kind, sep, value in lines if sep and value]


def _wrap_application_credentials() -> None:
    from openstack.identity.v3._proxy import Proxy

    create = Proxy.create_application_credential

    @functools.wraps(create)
    def remembering(self, *args, **attrs):
        remember_secret(attrs.get("secret"), "application-credential secret")
        created = create(self, *args, **attrs)
        remember_secret(getattr(created, "secret", None), "application-credential secret")
        return created

    Proxy.create_application_credential = remembering


def _wrap_keystone_tokens() -> None:
    from keystoneauth1.identity.base import BaseIdentityPlugin

    get_access = BaseIdentityPlugin.get_access

    @functools.wraps(get_access)
    def remembering(self, *args, **kwargs):
        access = get_access(self, *args, **kwargs)
        remember_secret(getattr(access, "auth_token", None), "Keystone token")
        return access

    BaseIdentityPlugin.get_access = remembering


def _wrap_temp_url_keys() -> None:
    from orchestrator.artifacts.swift_objects import SwiftContainer

    temp_url_key = SwiftContainer.temp_url_key

    @functools.wraps(temp_url_key)
    def remembering(self):
        key = temp_url_key(self)
        remember_secret(key, "TempURL key")
        return key

    SwiftContainer.temp_url_key = remembering


def _wrap_signed_urls() -> None:
    """The signature of every URL the store signs: the endpoints' capture URLs (writes, for weeks), the workers'
    stage URLs (reads and writes under one stage's folder, for hours) and the nodes' model URLs. Each is a bearer
    credential for its objects, which only the process it is handed to may hold."""
    from urllib.parse import parse_qs, urlparse

    from orchestrator.artifacts.swift import SwiftStore

    temp_url = SwiftStore.temp_url

    @functools.wraps(temp_url)
    def remembering(self, key, expires_in, method="GET", **options):
        url = temp_url(self, key, expires_in, method, **options)
        kind = f"signed {method} URL signature ({'folder' if options.get('prefix') else 'object'}, {expires_in} s)"
        for signature in parse_qs(urlparse(url).query).get("temp_url_sig", []):
            remember_secret(signature, kind)
        return url

    SwiftStore.temp_url = remembering


def _wrap_ansible_runner() -> None:
    import ansible_runner

    run = ansible_runner.run

    @functools.wraps(run)
    def scanned(*args, **kwargs):
        try:
            return run(*args, **kwargs)
        finally:
            if private := kwargs.get("private_data_dir"):
                found = scan([Path(private)], session_secrets())
                _early_scanned.add(found)

    ansible_runner.run = scanned


def session_places(basetemp: Path | None) -> list[Path]:
    """Where the session's output lies."""
    places = [Path.home() / ".dataops", Path.cwd() / ".dataops"]
    return ([basetemp] if basetemp is not None else []) + [p for p in places if p != basetemp]


def check_session(session) -> ScanResult:
    """Scan the session's output; print a summary and every hit; fail the session when anything was found."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = factory.getbasetemp() if factory is not None else None
    secrets = session_secrets()
    result = scan(session_places(basetemp), secrets)
    result.add(_early_scanned)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter is not None else print
    write(f"secret scan: {len(secrets)} secrets, {result.files} files, {result.bytes / 1e6:.1f} MB, "
          f"{len(result.hits)} found ({result.skipped} files skipped: credentials by purpose, installed code)")
    for hit in result.hits:
        write(f"secret found: {hit}")
    if result.hits:
        session.exitstatus = 1  # pytest.ExitCode.TESTS_FAILED
    if chaos_table.recorded():  # a session running the chaos suite: the scan is one of its rows
        chaos_table.record(
            "secrets-in-the-session-output",
            component="secrets",
            fault="everything the test session wrote (logs, run and stage records, model cards, captures, "
                  "ansible-runner private data) scanned for the cloud passwords, tokens, application-credential "
                  "secrets, bearer tokens and TempURL keys it used",
            must_hold="none of them is found, in any form (raw, URL-quoted, JSON-escaped)",
            tries=1,
            held=int(not result.hits),
            outcomes={"secrets looked for": len(secrets), "files scanned": result.files,
                      "MB scanned": round(result.bytes / 1e6), "found": len(result.hits)},
            notes="tokens minted by `dataops` subprocesses stay in those processes and are not looked for; "
                  "credential files by purpose (clouds.yaml, token files, keys) and installed packages are skipped",
        )
    return result
