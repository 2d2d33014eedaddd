"""Deadline specifications: working days on China's official calendar, or exact durations."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

_WORKING_DAYS = re.compile(r"^\s*(\d+)\s*(WD|wd|working[ _]days?)\s*$")
_ISO = re.compile(
    r"^P(?!$)(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


# A deadline is at most a year away: anything longer is a typo, and unbounded values overflow.
MAX_DURATION = timedelta(days=366)


class DeadlineSpec(BaseModel):
    """Either `working_days` (end of the N-th working day after the start, in the jurisdiction's time zone)
    or an exact `duration` (ISO-8601, e.g. PT30M). In YAML/JSON a plain string works too:
    "3WD" or "PT30M"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    working_days: int | None = Field(default=None, ge=1, le=365)
    duration: timedelta | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if m := _WORKING_DAYS.match(text):
            return {"working_days": int(m.group(1))}
        if m := _ISO.match(text.upper()):
            parts = {k: float(v) for k, v in m.groupdict().items() if v}
            try:
                duration = timedelta(
                    days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0)
                )
            except OverflowError:
                raise ValueError(f"deadline {value!r} is too long; at most {MAX_DURATION.days} days") from None
            return {"duration": duration}
        raise ValueError(
            f"deadline {value!r} is neither working days (e.g. '3WD') nor an ISO-8601 duration (e.g. 'PT30M')"
        )

    @model_validator(mode="after")
    def _exactly_one(self) -> "DeadlineSpec":
        if (self.working_days is None) == (self.duration is None):
            raise ValueError("give exactly one of working_days or duration")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if self.duration is not None and self.duration > MAX_DURATION:
            raise ValueError(f"duration must be at most {MAX_DURATION.days} days")
        return self

    def __str__(self) -> str:
        if self.working_days is not None:
            return f"{self.working_days}WD"
        assert self.duration is not None
        return f"PT{self.duration.total_seconds():g}S"
