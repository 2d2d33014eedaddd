"""Request bodies of the update routes: each update's input model without `actor` (it comes
from the API key), so /docs shows every action's own fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, create_model, model_validator

from schemas.text import RefusesControls


class _Strict(RefusesControls):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_actor(cls, data: object) -> object:
        if isinstance(data, dict) and "actor" in data:
            raise ValueError("the actor comes from your API key; leave it out")
        return data


def without_actor(model: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items() if n != "actor"}
    return create_model(
        name or f"{model.__name__}Body",
        __base__=_Strict,
        __doc__=model.__doc__,
        **fields,
    )


def with_actor(model: type[BaseModel], body: BaseModel, actor: dict[str, Any]) -> BaseModel:
    """The update's input: what was sent (only that: defaults stay the model's) and the actor."""
    return model.model_validate(body.model_dump(exclude_unset=True) | {"actor": actor})


