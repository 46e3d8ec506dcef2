"""Log lines: the configured level, the bound context, the credential scrubber (reconciler/logs.py).

Whether a command that logs nothing imports structlog at all is checked in test_cli_imports.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading

from reconciler import logs

log = logs.get_logger("tests.logs")


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_below_the_level_are_dropped_and_the_others_carry_level_and_time() -> None:
    stream = io.StringIO()
    logs.configure("warning", "json", stream)
    log.info("below.level", n=1)
    log.warning("at.level", n=2)
    log.error("above.level", n=3)
    got = lines(stream)
    assert [(line["event"], line["level"], line["n"]) for line in got] == [("at.level", "warning", 2),
                                                                           ("above.level", "error", 3)]
    assert all(str(line["timestamp"]).endswith("Z") for line in got)


def test_bound_context_is_on_every_line_inside_the_block_and_gone_after_it() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    logs.bind_context(workspace="crm")
    with logs.bound_context(environment="staging", run_id=None):
        logs.bind_context(run_id="r1")
        log.info("inside")
    log.info("after")
    logs.unbind_context("workspace")
    log.info("unbound")
    inside, after, unbound = lines(stream)
    assert (inside["workspace"], inside["environment"], inside["run_id"]) == ("crm", "staging", "r1")
    assert after["workspace"] == "crm" and "environment" not in after and "run_id" not in after
    assert "workspace" not in unbound


def test_a_thread_does_not_see_another_threads_context() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    logs.bind_context(environment="production")
    worker = threading.Thread(target=lambda: log.info("from.thread"))
    worker.start()
    worker.join(timeout=30)
    assert "environment" not in lines(stream)[0]


def test_credentials_are_scrubbed_from_fields_and_urls() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    log.warning("connect.failed", password="hunter2", url="postgresql://app:s3cret@db:5432/crm")
    line = lines(stream)[0]
    assert line["password"] == "(redacted)"
    assert line["url"] == "postgresql://app:***@db:5432/crm"
    assert "hunter2" not in stream.getvalue() and "s3cret" not in stream.getvalue()


def test_exception_lines_carry_the_traceback() -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("it.failed")
    line = lines(stream)[0]
    assert line["level"] == "error" and "RuntimeError: boom" in str(line["exception"])


CONCURRENT_FIRST_LINES = """
import sys, threading
from reconciler import logs
logs.configure("info", "json", sys.stdout)
assert "structlog" not in sys.modules, "configure() alone must not import structlog"
start = threading.Barrier(8)
def first_line(n):
    start.wait()
    logs.get_logger("t").info("first", n=n)
threads = [threading.Thread(target=first_line, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_structlog_is_configured_by_the_first_line_whichever_thread_writes_it() -> None:
    """configure() before structlog is imported only notes the configuration; the first line written
    (here by eight threads at once) applies it: every line is configured JSON, none comes out under
    structlog's defaults (plain text)."""
    done = subprocess.run([sys.executable, "-c", CONCURRENT_FIRST_LINES], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    got = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(int(str(line["n"])) for line in got) == list(range(8))
    assert all(line["level"] == "info" and "timestamp" in line for line in got)
