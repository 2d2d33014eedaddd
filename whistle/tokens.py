"""Residents' feedback tokens: HMAC of the issue id, so the same intake returns the same token
and nothing needs storing."""

from __future__ import annotations

import base64
import hashlib
import hmac


def feedback_token(secret: str, issue_id: str) -> str:
    digest = hmac.new(secret.encode(), f"feedback:{issue_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def check_feedback_token(secret: str, issue_id: str, token: str | None) -> bool:
    if not token or not token.isascii():
        return False
    return hmac.compare_digest(feedback_token(secret, issue_id).encode(), token.encode())
