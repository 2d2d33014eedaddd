"""Text that PostgreSQL can store: NUL characters are refused at every edge (a NUL reaching the
read model would make its activity fail on every retry)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


def reject_nul(data: Any) -> Any:
    """For `model_validator(mode="before")`: raise if any string in the input holds NUL."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return data


class RefusesNul(BaseModel):
    """Base of every model that takes text from outside (intake, actions, ratings, reviews)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        return reject_nul(data)
