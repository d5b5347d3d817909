"""``python -m orchestrator.serving.admin load|ready ...``: repository calls to a running server, for deployment
playbooks. The bearer token is read from a file, so it never appears in a command line or a playbook's log.

    python -m orchestrator.serving.admin --url https://HOST:PORT --ca-file CA --token-file FILE load NAME
    python -m orchestrator.serving.admin --url https://HOST:PORT --ca-file CA --token-file FILE ready NAME VERSION

An ``https://`` server is verified against ``--ca-file`` (the endpoint's own CA), else against the system's CAs.

Exit status 0 on success; 1 with the server's own message on stderr otherwise (e.g. why a model was refused).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path


def server_request(url: str, token: str, method: str, context: ssl.SSLContext | None,
                   timeout: float = 600.0) -> tuple[int, str]:
    """One call to a server's API with its bearer token: the status and body (status 0 and why when the server
    cannot be reached or its certificate does not verify)."""
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"}, data=None)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:  # unreachable, or a certificate the CA did not sign
        return 0, f"cannot reach {url}: {getattr(exc, 'reason', exc)}"


def error_message(body: str) -> str:
    """The server's own message in an error body (its ``error`` field), else the body."""
    try:
        return str(json.loads(body).get("error", body))
    except (ValueError, AttributeError):
        return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.serving.admin", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL of the server, e.g. https://10.0.0.5:8000")
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--ca-file", type=Path, help="CA certificate an https:// server is verified against")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="(re)load every version of a model found in the repository folder")
    load.add_argument("name")
    ready = commands.add_parser("ready", help="succeed when a version of a model is served")
    ready.add_argument("name")
    ready.add_argument("version")
    args = parser.parse_args(argv)
    token = args.token_file.read_text(encoding="utf-8").strip()
    base = args.url.rstrip("/")
    context = ssl.create_default_context(cafile=str(args.ca_file) if args.ca_file else None)
    if args.command == "load":
        status, body = server_request(f"{base}/v2/repository/models/{args.name}/load", token, "POST", context)
        what = f"loading model {args.name}"
    else:
        status, body = server_request(f"{base}/v2/models/{args.name}/versions/{args.version}/ready", token, "GET", context)
        what = f"model {args.name} version {args.version}"
    if status != 200:
        print(f"{what}: {f'HTTP {status}: ' if status else ''}{error_message(body)}", file=sys.stderr)
        return 1
    print(f"{what}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
