"""The inference server under load with hostile input mixed in: 16 keep-alive connections over TLS for 60 s, one
request in five malformed (bad JSON, wrong shapes, datatypes and element types, unknown, missing and repeated
inputs, fields the protocol does not define, values outside the card, bodies of other types, corrupt compression,
large bodies within the limit), the other four good V2 and records requests. Every malformed request is answered
with a 4xx, every good one with a 200, and no connection fails; the server is still ready afterwards and logged no
unexpected failure.

``DATAOPS_CHAOS_MALFORMED_LOAD_S`` shortens the load for a quick local run; CI runs the full 60 s.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import ssl
import sys
import time
from collections import Counter

import pytest

from tests.support.chaos_table import record as record_case
from tests.support.live_server import TOKEN, RunningServer, free_port, loopback_tls
from tests.support.tiny_models import NUMERIC, build_model_folder, valid_row

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# 20 s send some 30,000 requests here, a fifth of them malformed: DATAOPS_CHAOS_MALFORMED_LOAD_S=600 soaks longer.
DURATION_S = float(os.environ.get("DATAOPS_CHAOS_MALFORMED_LOAD_S", "20"))
CONNECTIONS = 16
MALFORMED_EVERY = 5
MODEL = "flights-delay"
INFER = f"/v2/models/{MODEL}/infer"
PREDICT = f"/v2/models/{MODEL}/predict"
JSON = {"Content-Type": "application/json"}


def _tensors(row: dict) -> list[dict]:
    return [{"name": column, "shape": [1, 1], "datatype": "FP32" if column in NUMERIC else "BYTES",
             "data": [value]} for column, value in row.items()]


def _infer_body(tensors: list[dict]) -> bytes:
    return json.dumps({"inputs": tensors}).encode()


def _replace(tensors: list[dict], name: str, **changes) -> list[dict]:
    return [{**t, **changes} if t["name"] == name else t for t in tensors]


GOOD = [
    ("v2 tensors", INFER, _infer_body(_tensors(valid_row())), JSON),
    ("v2 tensors, another row", INFER, _infer_body(_tensors(valid_row(dep_hour=18.0, carrier="UA"))), JSON),
    ("records", PREDICT, json.dumps({"records": [valid_row(origin="EWR")]}).encode(), JSON),
    ("records, a missing value", PREDICT, json.dumps({"records": [valid_row(prev_delay=None)]}).encode(), JSON),
]
_ROW = _tensors(valid_row())
MALFORMED = [
    ("bad JSON", INFER, _infer_body(_ROW)[:-7], JSON),
    ("not an object", INFER, b"[1, 2, 3]", JSON),
    ("wrong shape", INFER, _infer_body(_replace(_ROW, "distance", shape=[2, 1])), JSON),
    ("wrong datatype", INFER, _infer_body(_replace(_ROW, "dep_hour", datatype="FP64")), JSON),
    ("wrong element type", INFER, _infer_body(_replace(_ROW, "distance", data=["far"])), JSON),
    ("unknown input", INFER, _infer_body(_ROW + [{"name": "wing_span", "shape": [1, 1], "datatype": "FP32",
                                                  "data": [30.0]}]), JSON),
    ("missing input", INFER, _infer_body(_ROW[1:]), JSON),
    ("unknown request field", INFER, json.dumps({"inputs": _ROW, "input": _ROW}).encode(), JSON),
    ("unknown tensor field", INFER, _infer_body(_replace(_ROW, "origin", dims=[1, 1])), JSON),
    ("a record missing a field", PREDICT, json.dumps({"records": [{"dep_hour": 9.0}]}).encode(), JSON),
    ("input given twice", INFER, _infer_body(_ROW + _ROW[:1]), JSON),
    ("value outside the card", PREDICT, json.dumps({"records": [valid_row(distance=1e9)]}).encode(), JSON),
    ("unknown category", PREDICT, json.dumps({"records": [valid_row(carrier="ZZ")]}).encode(), JSON),
    ("a CSV body", PREDICT, b"dep_hour,distance\n9,500\n", {"Content-Type": "text/csv"}),
    ("binary tensors without their header", INFER, b"\x00\x00\x10A" * 64, {"Content-Type": "application/octet-stream"}),
    ("corrupt gzip", PREDICT, b"\x1f\x8b\x08\x00" + b"not gzip at all" * 8, {**JSON, "Content-Encoding": "gzip"}),
    ("large body within the limit", INFER,
     _infer_body(_replace(_ROW, "distance", data=[500.0] * 120_000)), JSON),
    ("large gzip body within the limit", PREDICT,
     gzip.compress(json.dumps({"records": [{"dep_hour": "nine"}] * 20_000}).encode()),
     {**JSON, "Content-Encoding": "gzip"}),
]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    """A real server over TLS, started as an inference node starts it, behind a bearer token."""
    work = tmp_path_factory.mktemp("malformed-load")
    folder = build_model_folder(work / "model", MODEL, 1, seed=0)
    (work / "token").write_text(TOKEN + "\n")
    server = RunningServer([sys.executable, "-m", "orchestrator.serving", str(folder), "--token-file",
                            str(work / "token")], free_port(), work / "server.log", tls=loopback_tls(work / "tls"))
    try:
        yield server.wait_ready()
    finally:
        server.stop()


async def _load(endpoint: RunningServer, duration_s: float) -> tuple[Counter, Counter, list[str]]:
    import aiohttp

    answers: Counter = Counter()  # (kind of request, good or malformed, status)
    wrong: Counter = Counter()
    errors: list[str] = []
    counter = iter(range(10**9))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + duration_s
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, ssl=endpoint.context)
    async with aiohttp.ClientSession(connector=connector, base_url=endpoint.base_url,
                                     timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False) as session:

        async def connection() -> None:
            while time.monotonic() < deadline:
                n = next(counter)
                malformed = n % MALFORMED_EVERY == 0
                kinds = MALFORMED if malformed else GOOD
                name, path, body, headers = kinds[(n // MALFORMED_EVERY) % len(kinds)]
                try:
                    async with session.post(path, data=body, headers={**headers, **auth}) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    errors.append(f"{name}: {exc!r}")
                    continue
                answers[(name, "malformed" if malformed else "good", status)] += 1
                if (400 <= status < 500) if malformed else status == 200:
                    continue
                wrong[(name, status)] += 1

        await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return answers, wrong, errors


def test_under_16_connections_every_malformed_request_is_a_4xx_and_every_good_one_a_200(endpoint):
    started = time.monotonic()
    answers, wrong, errors = asyncio.run(_load(endpoint, DURATION_S))
    seconds = time.monotonic() - started
    malformed = sum(n for (_, kind, _), n in answers.items() if kind == "malformed")
    good = sum(n for (_, kind, _), n in answers.items() if kind == "good")
    total = malformed + good + len(errors)
    statuses = Counter()
    for (_, kind, status), n in answers.items():
        statuses[f"{kind} -> {status}"] += n
    print(f"\n{total} requests in {seconds:.1f} s ({total / seconds:.0f}/s) over {CONNECTIONS} TLS connections: "
          f"{dict(statuses)}, {len(errors)} connection errors")
    held = total - sum(wrong.values()) - len(errors)
    record_case(
        "endpoint-malformed-load-16-connections", component="inference endpoint",
        fault=f"{CONNECTIONS} keep-alive TLS connections for {DURATION_S:.0f} s, one request in {MALFORMED_EVERY} "
              f"malformed ({len(MALFORMED)} kinds: bad JSON, wrong shapes/datatypes/element types, unknown and missing "
              "inputs or fields, values outside the card, other body types, corrupt gzip, large bodies)",
        must_hold="every malformed request answered 4xx, every good one 200, no connection error",
        tries=total, held=held,
        outcomes={"malformed -> 4xx": malformed - sum(n for (k, _), n in wrong.items()
                                                      if k in {m[0] for m in MALFORMED}),
                  "good -> 200": good - sum(n for (k, _), n in wrong.items() if k in {g[0] for g in GOOD}),
                  "wrong status": sum(wrong.values()), "connection errors": len(errors)},
        notes=f"{total / seconds:.0f} requests/s on the 2-core machine, client and server sharing it",
    )
    assert errors == [], f"{len(errors)} requests failed to connect or answer, e.g. {errors[:3]}"
    assert wrong == Counter(), f"answered with the wrong status: {dict(wrong)}"
    sent = {name for name, _, _ in answers}
    assert sent == {m[0] for m in MALFORMED} | {g[0] for g in GOOD}, "every kind of request was sent"
    assert endpoint.request("GET", "/v2/health/ready")[0] == 200 and endpoint.process.poll() is None
    log = endpoint.log_text()
    assert "unexpected failure" not in log and "Traceback" not in log
