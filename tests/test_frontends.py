"""The stdlib handler and the structlog processor: thin front ends over one Drain."""

from __future__ import annotations

import logging
import logging.config

import pytest

import logdrain
from logdrain.testing import Collector

structlog = pytest.importorskip("structlog")


def test_dictconfig_with_plain_values(collector: Collector) -> None:
    """A dictConfig entry of plain strings and numbers builds a working handler."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "ship": {
                    "class": "logdrain.DrainHandler",
                    "url": collector.url,
                    "level": "INFO",
                    "batch_size": "200",
                    "flush_interval": 0.05,
                }
            },
            "loggers": {"test.dictconfig": {"handlers": ["ship"], "level": "DEBUG"}},
        }
    )
    log = logging.getLogger("test.dictconfig")
    handler = log.handlers[0]
    try:
        assert isinstance(handler, logdrain.DrainHandler)
        assert handler.drain.settings.batch_size == 200
        log.debug("not shipped: below the handler's level")
        log.info("shipped %s", "once", extra={"user": "u1", "n": 3})
        assert collector.wait_for_count(1)
        assert handler.drain.flush(30)
        (record,) = collector.records
        assert record["message"] == "shipped once"
        assert record["level"] == "INFO"
        assert record["logger"] == "test.dictconfig"
        assert record["user"] == "u1"
        assert record["n"] == 3
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_dictconfig_typo_names_the_setting() -> None:
    """A misspelt setting in dictConfig fails at configuration with a suggestion."""
    with pytest.raises(ValueError, match="Unable to configure handler 'ship'") as info:
        logging.config.dictConfig(
            {
                "version": 1,
                "handlers": {
                    "ship": {
                        "class": "logdrain.DrainHandler",
                        "url": "http://127.0.0.1:9/x",
                        "batchsize": 10,
                    }
                },
            }
        )
    cause = info.value.__cause__
    assert isinstance(cause, logdrain.ConfigError)
    assert "batchsize" in str(cause)
    assert "did you mean 'batch_size'" in str(cause)


def test_record_document_fields(collector: Collector, logger: logging.Logger) -> None:
    """timestamp, level, logger, message, exception and every extra field are shipped."""
    handler = logdrain.DrainHandler(collector.url, flush_interval=0.05)
    logger.addHandler(handler)
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed for %s", "alice", extra={"request_id": "r-1"})
    assert handler.drain.flush(30)
    (record,) = collector.records
    assert record["message"] == "failed for alice"
    assert record["level"] == "ERROR"
    assert record["request_id"] == "r-1"
    assert "ValueError: bad value" in record["exception"]
    assert record["timestamp"].endswith("Z")
    assert "args" not in record
    assert "msg" not in record


def test_message_is_formatted_on_the_callers_thread(
    collector: Collector, logger: logging.Logger
) -> None:
    """Mutating a logged argument afterwards does not change what ships."""
    handler = logdrain.DrainHandler(collector.url, flush_interval=5)
    logger.addHandler(handler)
    items = ["first"]
    logger.info("items: %s", items)
    items.append("second")
    assert handler.drain.flush(30)
    assert collector.records[0]["message"] == "items: ['first']"


def test_handler_formatter_shapes_the_message(collector: Collector, logger: logging.Logger) -> None:
    """A formatter set on the handler produces the shipped message."""
    handler = logdrain.DrainHandler(collector.url)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.warning("careful")
    assert handler.drain.flush(30)
    assert collector.records[0]["message"] == "[WARNING] careful"


def test_shared_drain_and_processor_share_one_queue(
    collector: Collector, logger: logging.Logger
) -> None:
    """DrainHandler(drain=d) and DrainProcessor(d) feed the same queue and counters."""
    drain = logdrain.Drain(collector.url, flush_interval=0.05)
    try:
        logger.addHandler(logdrain.DrainHandler(drain=drain))
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[
                logdrain.DrainProcessor(drain),
                structlog.processors.JSONRenderer(),
            ],
        )
        logger.info("from stdlib")
        returned = slog.info("from structlog", user="bob", attempt=2)
        assert '"user": "bob"' in returned  # the chain goes on unchanged
        assert drain.flush(30)
        assert drain.stats().submitted == 2
        assert drain.stats().delivered == 2
        by_source = {r.get("message") or r.get("event"): r for r in collector.records}
        assert set(by_source) == {"from stdlib", "from structlog"}
        event = by_source["from structlog"]
        assert event["event"] == "from structlog"  # the event dict keeps its own keys
        assert event["user"] == "bob"
        assert event["attempt"] == 2
        assert event["level"] == "INFO"
        assert event["timestamp"].endswith("Z")
    finally:
        drain.close()


def test_handler_does_not_close_a_shared_drain(collector: Collector) -> None:
    """Closing a DrainHandler(drain=...) leaves the shared drain open."""
    drain = logdrain.Drain(collector.url)
    try:
        handler = logdrain.DrainHandler(drain=drain)
        handler.close()
        assert not drain.closed
        assert drain.submit({"message": "still open"})
    finally:
        drain.close()


def test_drain_with_settings_is_an_error(collector: Collector) -> None:
    """drain= together with Drain settings fails with a message naming both."""
    drain = logdrain.Drain(collector.url)
    try:
        with pytest.raises(logdrain.ConfigError, match="drain"):
            logdrain.DrainHandler(drain=drain, batch_size=10)
    finally:
        drain.close()


def test_structlog_exc_info_becomes_exception_text(collector: Collector) -> None:
    """A structlog event with exc_info ships a formatted traceback, not an object."""
    drain = logdrain.Drain(collector.url)
    try:
        slog = structlog.wrap_logger(
            structlog.testing.ReturnLogger(),
            processors=[logdrain.DrainProcessor(drain), structlog.processors.KeyValueRenderer()],
        )
        try:
            {}["missing"]
        except KeyError:
            slog.exception("lookup failed")
        assert drain.flush(30)
        (event,) = collector.records
        assert event["level"] == "ERROR"
        assert "KeyError: 'missing'" in event["exception"]
        assert "exc_info" not in event
    finally:
        drain.close()


def test_structlog_stdlib_integration_keys_become_fields(
    collector: Collector, logger: logging.Logger
) -> None:
    """structlog -> stdlib (ProcessorFormatter.wrap_for_formatter): event keys are fields."""
    handler = logdrain.DrainHandler(collector.url)
    logger.addHandler(handler)
    slog = structlog.wrap_logger(
        logger,
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    slog.bind(order_id=42).warning("order delayed", minutes=5)
    assert handler.drain.flush(30)
    (record,) = collector.records
    assert record["message"] == "order delayed"
    assert record["order_id"] == 42
    assert record["minutes"] == 5
    assert record["logger"] == "test.frontends"
    assert "_logger" not in record
    assert "_record" not in record


def test_structlog_render_to_log_kwargs(collector: Collector, logger: logging.Logger) -> None:
    """structlog.stdlib.render_to_log_kwargs: keys arrive as extra fields."""
    handler = logdrain.DrainHandler(collector.url)
    logger.addHandler(handler)
    slog = structlog.wrap_logger(
        logger,
        processors=[structlog.stdlib.render_to_log_kwargs],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    slog.info("paid", amount=12)
    assert handler.drain.flush(30)
    (record,) = collector.records
    assert record["message"] == "paid"
    assert record["amount"] == 12


def test_filters_still_apply(collector: Collector, logger: logging.Logger) -> None:
    """Handler filters run (the handler lock is skipped, not the filters)."""
    handler = logdrain.DrainHandler(collector.url)
    handler.addFilter(lambda r: "secret" not in r.getMessage())
    logger.addHandler(handler)
    logger.info("public")
    logger.info("a secret")
    assert handler.drain.flush(30)
    assert [r["message"] for r in collector.records] == ["public"]


def test_public_names() -> None:
    """__all__ lists exactly the public API and every name resolves."""
    for name in logdrain.__all__:
        assert hasattr(logdrain, name)
    assert {"Drain", "DrainHandler", "DrainProcessor", "DrainStats", "ConfigError"} <= set(
        logdrain.__all__
    )
