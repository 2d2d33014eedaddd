"""What the routes need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from temporalio.client import Client

from activities.notifier import LogNotifier, Notifier
from api.limits import RateLimits
from schemas.jurisdiction import Jurisdiction
from whistle.config import DEFAULT_REGISTER_TIMEOUT
from whistle.locate import Locator
from whistle.principals import PrincipalStore


@dataclass
class Deps:
    client: Client
    pool: asyncpg.Pool
    jurisdiction: Jurisdiction
    principals: PrincipalStore
    limits: RateLimits
    token_secret: str
    task_queue: str
    notifier: Notifier = field(default_factory=LogNotifier)  # feedback tokens to reporters
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    register_timeout: float = DEFAULT_REGISTER_TIMEOUT  # seconds: WHISTLE_REGISTER_TIMEOUT

    def __post_init__(self) -> None:
        self.locator = Locator(self.jurisdiction)


def app_deps(request: Request) -> Deps:
    return request.app.state.deps


# What a route takes to reach the process's clients and configuration: `d: AppDeps`.
AppDeps = Annotated[Deps, Depends(app_deps)]
