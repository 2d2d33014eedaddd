"""Resolve an intake's location (coordinates or an address) to a grid of the jurisdiction."""

from __future__ import annotations

import math

from schemas.jurisdiction import Jurisdiction, Level, Unit

# Farther than this from every grid's centre is outside the jurisdiction.
MAX_DISTANCE_M = 2000.0


class LocationError(ValueError):
    """Its message never repeats the input: an address may hold a name or a phone number."""


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


class Locator:
    def __init__(self, j: Jurisdiction):
        self.j = j
        self.grids = [u for u in j.units if u.level == Level.grid]
        self._placed = [g for g in self.grids if g.lat is not None and g.long is not None]

    def nearest_grid(self, lat: float, long: float) -> Unit:
        if not self._placed:
            raise LocationError("the jurisdiction has no grid coordinates; give grid_id")
        best = min(self._placed, key=lambda g: _distance_m(lat, long, g.lat, g.long))
        if _distance_m(lat, long, best.lat, best.long) > MAX_DISTANCE_M:
            raise LocationError(f"these coordinates are outside the jurisdiction {self.j.name_en}")
        return best

    def grid_by_address(self, address: str) -> Unit:
        """The grid or community whose name the address names (longest name wins)."""
        text = address.casefold()
        candidates = [u for u in self.j.units if u.level in (Level.grid, Level.community)]
        named = [
            (len(name), u)
            for u in candidates
            for name in (u.name, u.name_en)
            if name and name.casefold() in text
        ]
        if not named:
            raise LocationError(f"the address names no community or grid of {self.j.name_en}; give lat/long or grid_id")
        unit = max(named, key=lambda t: t[0])[1]
        if unit.level == Level.grid:
            return unit
        return next(g for g in self.grids if g.parent == unit.id)

    def grid_for(self, grid_id: str | None, lat: float | None, long: float | None, address: str | None) -> str:
        if grid_id:
            try:
                unit = self.j.unit(grid_id)
            except KeyError:
                unit = None
            if unit is None or unit.level != Level.grid:
                raise LocationError("unknown grid_id: see GET /v1/units for the grids")
            return grid_id
        if lat is not None and long is not None:
            return self.nearest_grid(lat, long).id
        if address:
            return self.grid_by_address(address).id
        raise LocationError("give a location: grid_id, lat and long, or an address")
