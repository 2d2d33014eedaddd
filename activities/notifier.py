"""Where notifications to units and supervisors go, and residents' feedback tokens: pluggable,
chosen by configuration (WHISTLE_NOTIFIER)."""

from __future__ import annotations

from typing import Protocol

import httpx
import structlog

from schemas.intake import Reporter
from schemas.issue import Notification

log = structlog.get_logger("whistle.notify")


class Notifier(Protocol):
    async def send(self, notification: Notification) -> None: ...

    async def send_feedback_token(self, issue_id: str, reporter: Reporter, token: str) -> None:
        """To the reporter's own phone or e-mail: the token that lets them rate the result.
        Handlers who enter an issue for a resident never see it (they could rate for them)."""


class LogNotifier:
    async def send(self, notification: Notification) -> None:
        log.info("notification", **notification.model_dump(mode="json"))

    async def send_feedback_token(self, issue_id: str, reporter: Reporter, token: str) -> None:
        # Neither the contact nor the token goes to the log: configure a webhook to deliver them.
        log.warning("feedback_token.not_delivered", issue_id=issue_id, reason="the log notifier reaches no resident")


class WebhookNotifier:
    """POSTs the notification as JSON. The `Idempotency-Key` header lets the receiver drop the
    duplicates an activity retry may send."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout

    async def send(self, notification: Notification) -> None:
        # Unique per notification (the 50% and 80% reminders of one deadline differ by seq and
        # time), the same on every retry of it: the seq when there is one, since a retried
        # workflow task sends it again at another time.
        n = notification
        stamp = n.at.isoformat() if n.seq is None else f"seq{n.seq}"
        key = f"{n.subject}:{n.kind}:{n.unit_id}:{stamp}"
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(
                self.url, json=notification.model_dump(mode="json"), headers={"Idempotency-Key": key}
            )
            response.raise_for_status()

    async def send_feedback_token(self, issue_id: str, reporter: Reporter, token: str) -> None:
        """The receiver (an SMS or e-mail gateway) gets the reporter's contact and the token."""
        message = {"kind": "feedback_token", "issue_id": issue_id, "reporter": reporter.model_dump(), "token": token}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, json=message, headers={"Idempotency-Key": f"{issue_id}:feedback_token"})
            response.raise_for_status()


class MemoryNotifier:
    """Keeps what it was sent; for `whistle simulate` and tests that read notifications back."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.tokens: list[tuple[str, Reporter, str]] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)

    async def send_feedback_token(self, issue_id: str, reporter: Reporter, token: str) -> None:
        self.tokens.append((issue_id, reporter, token))


def notifier_from(setting: str) -> Notifier:
    if setting == "log":
        return LogNotifier()
    if setting.startswith(("http://", "https://")):
        return WebhookNotifier(setting)
    raise ValueError(f"notifier must be 'log' or an http(s) URL, not {setting!r}")
