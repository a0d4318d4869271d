"""asyncua's service-fault log line cannot be multiplied by a client (issue 15, finding 7): a real twin refuses 40
Call requests of one method too many with BadTooManyOperations, and its log shows at most a handful of asyncua's
ERROR lines."""

from __future__ import annotations

import logging

import pytest
from asyncua import Client, ua

from tests.twin_server.line_fixture import live_pilot_line
from twin_server.library_log_limit import LIMITED_LOGGERS, RepeatFilter, limit_library_logs


def test_the_filter_passes_a_burst_then_counts_what_it_suppressed():
    logger = logging.getLogger("test.library_log_limit")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.addFilter(RepeatFilter(burst=3, window_s=3600.0))
    logger.propagate = False
    for _ in range(50):
        logger.error("sending service fault response: %s (%s)", "too many", "BadTooManyOperations")
    assert len(records) == 3
    limit_library_logs()
    limit_library_logs()
    assert all(sum(isinstance(f, RepeatFilter) for f in logging.getLogger(n).filters) == 1 for n in LIMITED_LOGGERS)


@pytest.mark.slow
async def test_refused_requests_do_not_flood_the_log_with_asyncua_service_faults(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="asyncua.server.uaprocessor")
    async with live_pilot_line(data_dir=tmp_path) as line:
        async with Client(line.twin.endpoint) as client:
            call = ua.CallMethodRequest(ObjectId=ua.NodeId(2253, 0), MethodId=ua.NodeId(11492, 0))  # GetMonitoredItems
            calls = [call] * 101  # one over max_nodes_per_call: a tiny request, refused with a service fault
            for _ in range(40):
                with pytest.raises(ua.UaError):
                    await client.uaclient.call(calls)
    faults = [r for r in caplog.records if r.name == "asyncua.server.uaprocessor"]
    assert len(faults) <= 6, [r.getMessage() for r in faults]
