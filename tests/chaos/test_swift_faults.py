"""Swift misbehaving on purpose: a fault-injecting proxy (``support.faulty_swift``) between the store and the real
Swift of the control plane answers 503s, resets connections mid-body, truncates bodies (under the true length, and
under a length that makes them look whole), stalls past the client's timeout, and drops object and manifest PUTs
before or after Swift stored them.

What must hold, after every try: each store operation either succeeds with the right sha256 (after retries) or fails
with a clear DataopsError naming the object and the kind of fault; no artifact is visible half-written; every
artifact committed before is still listed and reads back with its sha256; a truncated download is caught by a
checksum every time. Last, a tiny pipeline run by the CLI through the proxy, with 503s sprinkled over its requests
(its workers' TempURL reads and writes included) and one reset, completes with the same fingerprints as an
undisturbed run.

One proxy, one container and one store serve the whole module; each case records its row of the chaos table.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import openstack
import pytest
import yaml

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.swift import SEGMENT_SUFFIX, SwiftStore
from orchestrator.errors import (
    ArtifactError,
    ArtifactNotFound,
    CloudError,
    DataopsError,
)
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from tests.conftest import write
from tests.integration.conftest import cloud  # noqa: F401  (the fixture, shared with the integration tests)
from tests.integration.pipeline.conftest import PIPELINE, make_shop
from tests.support.chaos_table import record
from tests.support.faulty_swift import FaultySwift, Rule
from tests.support.swift_cleanup import remove_container

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.openstack]

TRIES = 5
MIB = 1 << 20
PREFIX = "chaos"
SMALL, MEDIUM, LARGE = 48 * 1024, MIB + 4321, 3 * MIB + 777  # a blob, one streamed object, a 4-segment large object


# --- shared parts --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(cloud):  # noqa: F811
    with FaultySwift(cloud.object_store.get_endpoint()) as faulty:
        yield faulty


@pytest.fixture(scope="module")
def container(cloud):  # noqa: F811
    name = f"dataops-test-chaos-{uuid.uuid4().hex[:8]}"
    yield name
    remove_container(cloud, name)


@pytest.fixture(scope="module")
def through_proxy(cloud, proxy):  # noqa: F811
    """A connection to the same cloud whose object-store endpoint is the proxy (clouds.yaml's endpoint override)."""
    conn = openstack.connect(cloud=os.environ.get("OS_CLOUD", "dataops-ci"),
                             object_store_endpoint_override=proxy.endpoint)
    yield conn
    conn.close()


def _store(conn, container, cache: Path, read_timeout_s: float) -> SwiftStore:
    store = SwiftStore(container, PREFIX, conn=conn, cache_dir=cache, segment_size=MIB, segment_threshold=2 * MIB,
                       workers=2, read_timeout_s=read_timeout_s)
    store.client.backoff_s = 0.02  # the policy's shape, at a test's pace
    return store


@pytest.fixture(scope="module")
def store(through_proxy, container, tmp_path_factory):
    return _store(through_proxy, container, tmp_path_factory.mktemp("swift-cache"), read_timeout_s=10)


@pytest.fixture(scope="module")
def committed(store, proxy, tmp_path_factory):
    """What the store holds for sure, ``{key: sha256}``: a blob, a streamed file and a large object written before
    any fault, then every write a case saw succeed. Each try checks that exactly these are listed, and each case ends
    by reading back the first three and its own (``run_tries``)."""
    proxy.clear()
    folder = tmp_path_factory.mktemp("committed")
    ledger = {"before/blob": store.put_bytes("before/blob", os.urandom(SMALL)).sha256}
    for key, size in (("before/file", MEDIUM), ("before/large", LARGE)):
        ledger[key] = store.put_file(key, _random_file(folder / key.replace("/", "-"), size)).sha256
    return ledger


@pytest.fixture()
def files(tmp_path):
    """``files(size)``: a new file of random bytes in the test's folder."""
    counter = iter(range(10**6))
    return lambda size: _random_file(tmp_path / f"f{next(counter)}.bin", size)


def _random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def obj(key: str) -> str:
    """A rule's path pattern for one object of the store (not its segments, not other keys sharing the prefix)."""
    return re.escape(f"/{PREFIX}/{key}") + r"(\?|$)"


def segments_of(key: str) -> str:
    return re.escape(f"{SEGMENT_SUFFIX}/{PREFIX}/{key}/")


def assert_intact(store: SwiftStore, proxy: FaultySwift, ledger: dict[str, str], absent: list[str] = (),
                  read: list[str] | None = None) -> None:
    """With the faults off: exactly the committed keys are listed, those of ``read`` (all by default) read back with
    their sha256, and the keys whose writes failed show nowhere (no exists, no get)."""
    proxy.clear()
    listed = set(store.list())
    assert listed == set(ledger), f"listed {sorted(listed ^ set(ledger))} unexpectedly (half-written or lost)"
    for key in ledger if read is None else read:
        sha256 = ledger[key]
        assert hashlib.sha256(store.get_bytes(key, sha256=sha256)).hexdigest() == sha256
    for key in absent:
        assert not store.exists(key), f"{key} is visible though its write failed"
        with pytest.raises(ArtifactNotFound):
            store.get_bytes(key)


def assert_clear_error(exc: BaseException, name: str, fault: str) -> None:
    """A DataopsError on one line naming the object and the kind of fault, and no signature of a signed URL."""
    text = str(exc)
    assert isinstance(exc, DataopsError), f"{type(exc).__name__} is not a DataopsError: {text}"
    assert name in text and re.search(fault, text), f"{text!r} does not name {name!r} and {fault!r}"
    assert "\n" not in text and "temp_url_sig" not in text


def run_tries(case: str, *, fault: str, must_hold: str, attempt, checked: tuple, tries: int = TRIES,
              notes: str = "") -> None:
    """Run ``attempt(i)`` ``tries`` times (it returns its outcome in words), check the store once more (``checked``:
    store, proxy and ledger; the artifacts committed before, and those the tries committed, read back), record the
    row, and fail on the first try whose property broke."""
    store, proxy, ledger = checked
    earlier = {key for key in ledger if not key.startswith("before/")}
    outcomes: Counter = Counter()
    broken: list[BaseException] = []
    for i in range(tries):
        try:
            outcomes[attempt(i)] += 1
        except (AssertionError, pytest.fail.Exception) as exc:
            outcomes["property broken"] += 1
            broken.append(exc)
        except Exception as exc:  # noqa: BLE001  (an unexpected error breaks the property too, and is in the table)
            outcomes[f"unexpected {type(exc).__name__}"] += 1
            broken.append(exc)
    held = tries - len(broken)
    try:
        assert_intact(store, proxy, ledger, read=[key for key in ledger if key not in earlier])
    except AssertionError as exc:
        outcomes["committed artifacts damaged at the end"] += 1
        held = max(held - 1, 0)
        broken.append(exc)
    record(case, component="Swift", fault=fault, must_hold=must_hold, tries=tries, held=held,
           outcomes=dict(outcomes), data_lost="none" if not broken else "see the failing test", notes=notes)
    if broken:
        raise broken[0]


# --- 503 -----------------------------------------------------------------------------------------------------------


def test_503s_are_retried_and_every_operation_ends_with_the_right_sha256(store, proxy, committed, files):
    def attempt(i):
        key, path = f"s503/{i}", files(MEDIUM if i % 2 else SMALL)
        retry_after = 0.2 if i % 2 else None
        # Two 503s in a row for each operation, on the object itself.
        proxy.inject(*(Rule("status", method, obj(key), times=2, retry_after=retry_after, name=f"503 {method}")
                       for method in ("PUT", "GET", "HEAD")),
                     Rule("status", "GET", r"format=json", times=2, retry_after=retry_after, name="503 listing"))
        started = time.monotonic()
        info = store.put_file(key, path)
        assert info.sha256 == sha256_of(path)
        assert store.exists(key) and key in list(store.list("s503"))
        got = store.get_file(key, path.with_suffix(".back"), sha256=info.sha256)
        assert sha256_of(got) == info.sha256
        assert proxy.fired() == 8, proxy.log
        if retry_after:
            assert time.monotonic() - started >= 8 * retry_after, "Retry-After was not waited for"
        committed[key] = info.sha256
        assert_intact(store, proxy, committed, read=[])
        return "retried, right sha256"

    run_tries("swift-503-transient", fault="503 Service Unavailable twice per request (with and without Retry-After)",
              must_hold="put, exists, list and get succeed with the right sha256; Retry-After is waited for",
              attempt=attempt, checked=(store, proxy, committed))


def test_swift_answering_503_for_good_fails_with_a_clear_error_and_shows_nothing(store, proxy, committed, files):
    def attempt(i):
        key = f"s503-down/{i}"
        proxy.inject(Rule("status", None, obj(key), times=None))
        with pytest.raises(CloudError) as failure:
            store.put_file(key, files(SMALL))
        assert_clear_error(failure.value, f"{PREFIX}/{key}", r"failed 5 times, last: HTTP 503")
        assert_intact(store, proxy, committed, absent=[key], read=[])
        return "clear error, nothing visible"

    run_tries("swift-503-persistent", fault="503 Service Unavailable on every request for an object",
              must_hold="the put fails with an error naming the object and HTTP 503; nothing visible; nothing lost",
              attempt=attempt, checked=(store, proxy, committed))


# --- resets and truncations ----------------------------------------------------------------------------------------


def test_connections_reset_mid_body_are_fetched_again(store, proxy, committed, tmp_path):
    targets = [("before/blob", SMALL), ("before/file", MEDIUM), ("before/large", LARGE)]

    def attempt(i):
        key, size = targets[i % len(targets)]
        cut = random.Random(i).randrange(1, min(size, MIB))  # somewhere in the body, the same each run
        rules = [Rule("reset", "GET", obj(key), after_bytes=cut if key != "before/large" else 10, name="object"),
                 Rule("reset", "GET", r"format=json", after_bytes=20, name="listing")]
        if key == "before/large":
            rules.append(Rule("reset", "GET", segments_of(key), nth=2, after_bytes=cut, name="segment"))
        proxy.inject(*rules)
        got = store.get_file(key, tmp_path / f"reset-{i}", sha256=committed[key])
        assert sha256_of(got) == committed[key]
        assert "before/blob" in list(store.list("before"))
        assert proxy.fired() == len(rules), proxy.log
        assert_intact(store, proxy, committed, read=[])
        return "fetched again, right sha256"

    run_tries("swift-reset-mid-body", fault="connection reset (RST) after part of a download's body, of a listing's, "
              "of a large object's segment list and of one of its segments",
              must_hold="the download starts again and ends with the right sha256; the listing is complete",
              attempt=attempt, checked=(store, proxy, committed))


def test_a_download_that_keeps_breaking_off_fails_clearly_and_leaves_no_file(store, proxy, committed, tmp_path):
    def attempt(i):
        proxy.inject(Rule("reset", "GET", obj("before/file"), after_bytes=1000 + i, times=None))
        dest = tmp_path / f"never-{i}"
        with pytest.raises(CloudError) as failure:
            store.get_file("before/file", dest, sha256=committed["before/file"])
        assert_clear_error(failure.value, "before/file", r"failed 5 times, last: connection dropped")
        assert not dest.exists() and not list(tmp_path.glob(f"*never-{i}*"))
        assert_intact(store, proxy, committed, read=[])
        return "clear error, no partial file"

    run_tries("swift-reset-persistent", fault="every download of an object reset mid-body",
              must_hold="get fails with an error naming the object and the dropped connection; no partial file",
              attempt=attempt, checked=(store, proxy, committed))


def test_every_truncated_download_is_caught(store, proxy, committed, tmp_path):
    """A body cut short under its true Content-Length ends early; under a Content-Length of the short body it looks
    whole, and only the MD5 (against the ETag) or the length in the segment list can tell. Either way no short
    download is ever taken for the object: transient truncations are fetched again, lasting ones are errors."""
    caught = Counter()

    def attempt(i):
        key = ["before/blob", "before/file", "before/large"][i % 3]
        honest = i % 2 == 0
        where = obj(key) if key != "before/large" else SEGMENT_SUFFIX + "/"
        # Transient: the first answer is short, the next is whole.
        proxy.inject(Rule("truncate", "GET", where, keep_bytes=777, honest_length=honest))
        assert sha256_of(store.get_file(key, tmp_path / f"t-{i}")) == committed[key]
        assert proxy.fired() == 1
        caught["transient"] += 1
        # Lasting: every answer is short.
        proxy.inject(Rule("truncate", "GET", where, keep_bytes=777, honest_length=honest, times=None))
        dest = tmp_path / f"short-{i}"
        with pytest.raises((ArtifactError, CloudError)) as failure:
            store.get_file(key, dest)
        expected = r"corrupted in transfer|connection dropped" if honest else r"corrupted in transfer"
        assert_clear_error(failure.value, key, expected)
        assert not dest.exists()
        caught["lasting"] += 1
        assert_intact(store, proxy, committed, read=[])
        return ("true length" if honest else "length of the short body") + ": caught both times"

    run_tries("swift-truncated-body", fault="a download's body truncated (once, then on every try), under its true "
              "Content-Length or under one matching the short body; objects, streamed files and large-object segments",
              must_hold="no truncated download is accepted: once is fetched again (right sha256), always is an "
              "ArtifactError naming the object; no partial file", attempt=attempt,
              checked=(store, proxy, committed),
              notes="A body shortened under a matching Content-Length looks whole to HTTP: the MD5 of the bytes "
              "against Swift's ETag (the segment's length for large objects, the sha256 end to end) catches it.")
    assert caught == {"transient": TRIES, "lasting": TRIES}


# --- stalls --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def impatient(through_proxy, container, tmp_path_factory, committed):
    """The same container with a 1 s read timeout, so a stall costs a test little."""
    return _store(through_proxy, container, tmp_path_factory.mktemp("impatient-cache"), read_timeout_s=1.0)


def test_a_request_stalled_past_the_timeout_is_tried_again(impatient, proxy, committed, files, tmp_path):
    operations = ["HEAD", "GET", "PUT", "listing", "manifest"]

    def attempt(i):
        kind = operations[i % len(operations)]
        key = f"stall/{i}"
        path = files(LARGE if kind == "manifest" else SMALL)
        if kind == "listing":
            rule = Rule("delay", "GET", r"format=json", seconds=2.5)
        elif kind == "manifest":
            rule = Rule("delay", "PUT", r"multipart-manifest=put", seconds=2.5)
        else:
            rule = Rule("delay", kind, obj(key), seconds=2.5)
        proxy.clear()
        if kind in ("HEAD", "GET", "listing"):
            impatient.put_file(key, path)
        proxy.inject(rule)
        sha256 = impatient.put_file(key, path).sha256 if kind in ("PUT", "manifest") else sha256_of(path)
        assert impatient.exists(key) and key in list(impatient.list("stall"))
        assert sha256_of(impatient.get_file(key, tmp_path / f"stall-{i}")) == sha256 == sha256_of(path)
        assert proxy.fired() == 1, proxy.log
        committed[key] = sha256
        assert_intact(impatient, proxy, committed, read=[])
        return "timed out, tried again, right sha256"

    run_tries("swift-stall-transient", fault="one request held 2.5 s, past the client's 1 s read timeout (a HEAD, a "
              "GET, a PUT, a listing, a large object's manifest PUT)", must_hold="the request is given up and tried "
              "again; the operation ends with the right sha256", attempt=attempt,
              checked=(impatient, proxy, committed))


def test_a_swift_that_never_answers_fails_with_a_timeout_naming_the_object(impatient, proxy, committed):
    def attempt(i):
        proxy.inject(Rule("delay", "GET", obj("before/blob"), seconds=2.0, times=None))
        started = time.monotonic()
        with pytest.raises(CloudError) as failure:
            impatient.get_bytes("before/blob")
        assert_clear_error(failure.value, "before/blob", r"failed 5 times, last: timed out")
        assert time.monotonic() - started < 5 * 1.0 + 10, "the timeout did not bound the wait"
        assert_intact(impatient, proxy, committed, read=[])
        return "clear timeout error"

    run_tries("swift-stall-persistent", fault="every answer for an object held past the client's 1 s read timeout",
              must_hold="get fails within the policy's bound with an error naming the object and the timeout",
              attempt=attempt, tries=2, checked=(impatient, proxy, committed))


# --- dropped PUTs --------------------------------------------------------------------------------------------------


def test_a_dropped_manifest_put_never_publishes_a_half_written_large_object(
        store, proxy, committed, files, cloud):  # noqa: F811
    segments_container = store.container + SEGMENT_SUFFIX

    def attempt(i):
        key, path = f"slo/{i}", files(LARGE)
        lost = i % 2  # odd tries: Swift stored the manifest and only its answer was lost
        proxy.inject(Rule("drop", "PUT", r"multipart-manifest=put", times=None, forward=bool(lost)))
        if lost:
            info = store.put_file(key, path)
            assert info.sha256 == sha256_of(path)
            committed[key] = info.sha256
            outcome = "answer lost: taken as stored, readable"
        else:
            with pytest.raises(CloudError) as failure:
                store.put_file(key, path)
            assert_clear_error(failure.value, f"{PREFIX}/{key}", r"failed 5 times, last: connection dropped")
            outcome = "request lost: clear error, nothing visible"
        assert proxy.fired() == 5
        assert_intact(store, proxy, committed, absent=[] if lost else [key], read=[key] if lost else [])
        # The segments of a large object that does not exist were removed; those of one that does are all there.
        kept = [o.name for o in cloud.object_store.objects(segments_container, prefix=f"{PREFIX}/{key}/")]
        assert len(kept) == (4 if lost else 0), kept
        return outcome

    run_tries("swift-manifest-put-dropped", fault="every manifest PUT of a large-object upload reset, before Swift "
              "got it or after Swift stored it (the answer lost)", must_hold="no large object visible without all its "
              "segments: a stored manifest is recognised as the upload's, a lost one fails clearly and its segments "
              "go", attempt=attempt, checked=(store, proxy, committed),
              notes="Before the fix, a manifest stored with its answer lost had its segments deleted by the failed "
              "upload: the object was listed, and every read of it failed (segment missing).")


def test_a_dropped_object_put_keeps_the_version_committed_before(store, proxy, committed, files, tmp_path):
    def attempt(i):
        key = "overwritten" if i < 3 else "dataset"
        lost = i % 2
        if key == "dataset":
            folder = tmp_path / f"ds-{i}"
            folder.mkdir()
            _random_file(folder / "part.0.parquet", SMALL)
            proxy.inject(Rule("drop", "PUT", obj(f"dataset-{i}/_manifest.json"), times=None, forward=bool(lost)))
            ds = f"dataset-{i}"
            if lost:
                store.put_dataset(ds, folder)
                committed[f"{ds}/_manifest.json"] = hashlib.sha256(store.get_bytes(f"{ds}/_manifest.json")).hexdigest()
                committed[f"{ds}/part.0.parquet"] = sha256_of(folder / "part.0.parquet")
                assert store.exists(ds)
                assert_intact(store, proxy, committed, read=[f"{ds}/_manifest.json", f"{ds}/part.0.parquet"])
                return "dataset manifest answer lost: published"
            with pytest.raises(CloudError) as failure:
                store.put_dataset(ds, folder)
            assert_clear_error(failure.value, f"{ds}/_manifest.json", r"connection dropped")
            assert not store.exists(ds)
            with pytest.raises(ArtifactNotFound):
                store.dataset_path(ds)
            # Its files without a manifest are no dataset; they stay listed as the blobs they are.
            committed[f"{ds}/part.0.parquet"] = sha256_of(folder / "part.0.parquet")
            assert_intact(store, proxy, committed, read=[])
            return "dataset manifest lost: not published"
        old = files(SMALL)
        proxy.clear()
        committed[key] = store.put_file(key, old).sha256
        new = files(SMALL)
        proxy.inject(Rule("drop", "PUT", obj(key), times=None, forward=bool(lost)))
        if lost:
            assert store.put_file(key, new).sha256 == sha256_of(new)
            committed[key] = sha256_of(new)
            outcome = "answer lost: new version, readable"
        else:
            with pytest.raises(CloudError) as failure:
                store.put_file(key, new)
            assert_clear_error(failure.value, f"{PREFIX}/{key}", r"failed 5 times, last: connection dropped")
            outcome = "request lost: clear error, old version intact"
        assert proxy.fired() == 5
        assert_intact(store, proxy, committed, read=[key])
        return outcome

    run_tries("swift-object-put-dropped", fault="every PUT of an object (an overwrite, a dataset's _manifest.json) "
              "reset, before Swift got it or after Swift stored it", must_hold="lost request: a clear error, the "
              "version committed before intact, no dataset published; lost answer: the new version recognised and "
              "readable",
              attempt=attempt, checked=(store, proxy, committed))


# --- a pipeline through the faulty Swift ---------------------------------------------------------------------------


def test_a_pipeline_run_through_sprinkled_503s_and_a_reset_matches_an_undisturbed_run(
        proxy, container, cloud, tmp_path, dask_client):  # noqa: F811
    make_shop(tmp_path)
    pipeline = write(tmp_path / "pipeline.yaml", PIPELINE.format(max_bad=0.05, key="event_id"))
    baseline = run_pipeline(load_pipeline(pipeline), LocalStore(tmp_path / "local"), dask_client).record
    # The CLI finds the proxy where it finds its cloud: clouds.yaml, with the object-store endpoint overridden.
    clouds = yaml.safe_load(Path(os.environ["OS_CLIENT_CONFIG_FILE"]).read_text())
    clouds["clouds"][os.environ.get("OS_CLOUD", "dataops-ci")]["object_store_endpoint_override"] = proxy.endpoint
    config = tmp_path / "clouds.yaml"
    config.touch(mode=0o600)
    config.write_text(yaml.safe_dump(clouds))
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(config), DATAOPS_SWIFT_CACHE=str(tmp_path / "cache"))
    # Every 7th GET and PUT answered 503 (the client's and the workers' alike), one segment-list read reset.
    proxy.inject(Rule("status", "GET", "", nth=3, every=7, times=None, name="503 GET"),
                 Rule("status", "PUT", "", nth=2, every=7, times=None, name="503 PUT"),
                 Rule("reset", "GET", r"_manifest\.json\?multipart-manifest=get", nth=2, after_bytes=10, name="reset"))
    # On the session's cluster, whose workers reach the proxy as the CLI does: no second cluster to start.
    run = subprocess.run([str(Path(sys.executable).with_name("dataops")), "run", str(pipeline),
                          "--store", f"swift://{container}/cli", "--scheduler", dask_client.scheduler.address],
                         env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    faults = dict(proxy.counts)
    proxy.clear()
    outcome = "completed, same fingerprints" if run.returncode == 0 else f"exit {run.returncode}"
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr and "temp_url_sig" not in run.stderr + run.stdout
        assert faults["503 GET"] >= 3 and faults["503 PUT"] >= 3 and faults["reset"] == 1, faults
        temp_urls = [path for _m, path, fault in proxy.log if fault and "temp_url_sig" in path]
        assert temp_urls, "no fault reached the workers' TempURL requests"
        disturbed = load_record(SwiftStore(container, "cli", conn=cloud, cache_dir=tmp_path / "check"), "latest")
        assert disturbed["status"] == "succeeded"
        for name, stage in baseline["stages"].items():
            other = disturbed["stages"][name]
            assert (other["key"], other.get("rows_in"), other.get("rows_out")) == \
                (stage["key"], stage.get("rows_in"), stage.get("rows_out")), name
        assert disturbed["stages"]["split"]["partitions"] == baseline["stages"]["split"]["partitions"]
    except AssertionError:
        outcome = "property broken"
        raise
    finally:
        record("swift-pipeline-through-faults", component="Swift", tries=1, held=int(outcome.startswith("completed")),
               fault=f"a pipeline run by the CLI with every 7th GET and PUT answered 503 ({faults.get('503 GET', 0)} "
               f"GETs, {faults.get('503 PUT', 0)} PUTs, workers' TempURL reads and writes included) and one "
               "segment-list read reset", must_hold="the run completes with the stage keys, rows and partition "
               "fingerprints of an undisturbed run", outcomes={outcome: 1},
               data_lost="none" if outcome.startswith("completed") else "see the failing test")
