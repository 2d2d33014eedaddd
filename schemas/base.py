"""The one base of whistle's models, and the default time zone: unknown fields are refused at every edge (an input with a
misspelt field is an error, not a silently ignored value)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# A jurisdiction's time zone when its file names none; everything else takes the jurisdiction's.
DEFAULT_TIMEZONE = "Asia/Shanghai"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrozenModel(Model):
    """Configuration read once and shared (the jurisdiction): never changed in place."""

    model_config = ConfigDict(extra="forbid", frozen=True)
