"""Who acts: roles, the actor carried by every update, and API principals."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(StrEnum):
    grid = "grid"  # grid worker (网格员)
    community = "community"
    area = "area"
    street = "street"
    department = "department"
    supervisor = "supervisor"  # 区级督导
    resident = "resident"
    ops = "ops"
    intake = "intake"  # an intake service: 12345 hotline, QR, WeChat, an Open311 client


# Roles that act for one unit and must name it.
UNIT_ROLES = frozenset({Role.grid, Role.community, Role.area, Role.street, Role.department})


class Actor(BaseModel):
    """Carried by every update input: `{"id": "...", "role": "...", "unit_id": "..."}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    role: Role
    unit_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _unit_for_handlers(self) -> "Actor":
        if self.role in UNIT_ROLES and not self.unit_id:
            raise ValueError(f"an actor with role {self.role} must give unit_id")
        return self


class Principal(BaseModel):
    """An API key's holder: a role and the unit it may act for (its scope)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    name: str = ""
    role: Role
    unit_id: str | None = None
    channel: str | None = Field(default=None, description="for intake services: the channel they submit on")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the API key")

    @model_validator(mode="after")
    def _unit_for_handlers(self) -> "Principal":
        if self.role in UNIT_ROLES and not self.unit_id:
            raise ValueError(f"a principal with role {self.role} must have a unit_id")
        if self.role == Role.intake and not self.channel:
            raise ValueError("an intake principal must have a channel")
        return self

    def actor(self) -> Actor:
        return Actor(id=self.id, role=self.role, unit_id=self.unit_id)
