"""``python -m orchestrator.serving MODEL_FOLDER [...]``: the server without the rest of the project."""

from __future__ import annotations

import argparse
import sys

from orchestrator.serving.errors import ServingError
from orchestrator.serving.settings import ServerSettings


def parse_args(argv: list[str] | None = None) -> ServerSettings:
    defaults = ServerSettings()
    parser = argparse.ArgumentParser(prog="python -m orchestrator.serving", description=__doc__)
    parser.add_argument("model_folders", nargs="*", help="model folders (model.onnx + model_card.json)")
    parser.add_argument("--repository-dir", help="folder of model folders, loadable through the repository API")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default=defaults.device)
    parser.add_argument("--intra-op-threads", type=int, default=defaults.intra_op_threads)
    parser.add_argument("--max-batch-rows", type=int, default=defaults.max_batch_rows,
                        help="micro-batching: rows scored together at most (1 turns batching off)")
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    parser.add_argument("--range-policy", choices=["reject", "flag"], default=defaults.range_policy)
    parser.add_argument("--capture-dir")
    parser.add_argument("--capture-rate", type=float, default=defaults.capture_rate)
    parser.add_argument("--capture-url-file",
                        help="file holding a signed folder URL captures are PUT under (a Swift prefix TempURL)")
    parser.add_argument("--token-file", help="bearer token file (else DATAOPS_SERVE_TOKEN; neither: no auth)")
    parser.add_argument("--tls-cert", help="certificate (PEM, with its chain) the serving port speaks HTTPS with")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    parser.add_argument("--insecure-http", action="store_true",
                        help="serve plain HTTP on an address other than loopback (tokens and rows travel in the clear)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--log-level", default=defaults.log_level)
    return ServerSettings(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    from orchestrator.serving.server import run_server

    try:
        run_server(parse_args(argv))
    except ServingError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
