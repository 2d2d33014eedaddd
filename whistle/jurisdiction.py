"""Load, validate and publish the jurisdiction (unit tree, duty lists, categories, policies)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import yaml
from pydantic import ValidationError

from domain.ladder import TREE_ORDER
from schemas.jurisdiction import Jurisdiction
from whistle.db import queries


class JurisdictionError(Exception):
    """The jurisdiction file is missing or malformed; the message names the bad entries."""


def _describe(err: ValidationError, data: dict) -> str:
    lines = []
    for e in err.errors():
        loc = e["loc"]
        where = ".".join(str(p) for p in loc)
        # Name the entry by its id where the location points into a list of entries.
        if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data.get(loc[0]), list):
            entry = data[loc[0]][loc[1]]
            if isinstance(entry, dict) and "id" in entry:
                where += f" (id {entry['id']!r})"
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "\n  ".join(lines)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the parser found and where, without its excerpt of the file."""
    mark = getattr(exc, "problem_mark", None)
    problem = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def load_jurisdiction(path: Path) -> Jurisdiction:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise JurisdictionError(f"cannot read jurisdiction file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise JurisdictionError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise JurisdictionError(f"{path}: expected a mapping at the top level")
    try:
        return Jurisdiction.model_validate(data)
    except ValidationError as exc:
        raise JurisdictionError(f"{path}: invalid jurisdiction:\n  {_describe(exc, data)}") from None


async def publish_jurisdiction(pool: asyncpg.Pool, j: Jurisdiction) -> None:
    """Write units, departments and categories to the read model (idempotent upserts)."""
    units = sorted(j.units, key=lambda u: TREE_ORDER.index(u.level))  # parents first
    rows = [(u.id, u.name, u.name_en, u.level.value, u.parent, u.households, u.lat, u.long) for u in units]
    rows += [(d.id, d.name, d.name_en, "department", None, None, None, None) for d in j.departments]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(queries.UPSERT_UNIT, rows)
        await conn.executemany(
            queries.UPSERT_CATEGORY,
            [
                (c.id, c.name, c.name_en, c.owning_level.value, c.lead_department, c.cooperating_departments, c.urgent)
                for c in j.categories
            ],
        )
