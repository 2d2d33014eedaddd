-- The league draft's review: which draft, the minimum volume, the supervisor's adjustments (who,
-- why) and what changed against the previous draft. And the monthly briefings (月度通报).
ALTER TABLE league_publications ADD COLUMN draft integer NOT NULL DEFAULT 1;
ALTER TABLE league_publications ADD COLUMN min_volume integer;
ALTER TABLE league_publications ADD COLUMN adjustments jsonb NOT NULL DEFAULT '[]';
ALTER TABLE league_publications ADD COLUMN changes jsonb NOT NULL DEFAULT '[]';

CREATE TABLE briefings (
    month         text PRIMARY KEY,  -- YYYY-MM
    body          jsonb NOT NULL,
    computed_at   timestamptz NOT NULL,
    announced_at  timestamptz
);
