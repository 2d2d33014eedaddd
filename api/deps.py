"""What the routes need, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from temporalio.client import Client

from api.guard import RateLimits
from schemas.jurisdiction import Jurisdiction
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

    def __post_init__(self) -> None:
        self.locator = Locator(self.jurisdiction)
