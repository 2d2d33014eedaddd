"""Text that PostgreSQL can store: NUL characters are refused at every edge (a NUL reaching the
read model would make its activity fail on every retry)."""

from __future__ import annotations

from typing import Any


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
