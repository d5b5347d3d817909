import asyncio
import io
import json

from orchestrator.serving.accesslog import AccessLog


def test_lines_are_buffered_on_the_loop_and_written_together():
    stream = io.StringIO()
    log = AccessLog(stream, interval=0.05)

    async def scenario():
        log.write(json.dumps({"path": "/a"}))
        log.write(json.dumps({"path": "/b"}))
        written_at_once = stream.getvalue()
        await asyncio.sleep(0.15)
        return written_at_once

    assert asyncio.run(scenario()) == ""
    assert [json.loads(line)["path"] for line in stream.getvalue().splitlines()] == ["/a", "/b"]


def test_a_full_buffer_is_written_without_waiting():
    stream = io.StringIO()
    log = AccessLog(stream, interval=60, max_buffered=3)

    async def scenario():
        for index in range(3):
            log.write(f'{{"n": {index}}}')
        return stream.getvalue()

    assert len(asyncio.run(scenario()).splitlines()) == 3


def test_without_a_running_loop_lines_are_written_at_once():
    stream = io.StringIO()
    AccessLog(stream).write('{"n": 1}')
    assert stream.getvalue() == '{"n": 1}\n'
