-- Reverse evaluation rounds and league-table publication.

CREATE TABLE evaluation_rounds (
    quarter     text PRIMARY KEY,
    opened_at   timestamptz NOT NULL,
    closes_at   timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at   timestamptz
);

-- Who rates whom in a round: the streets and departments that handled a community's issues.
CREATE TABLE evaluation_targets (
    quarter       text NOT NULL REFERENCES evaluation_rounds (quarter),
    community_id  text NOT NULL,
    target_id     text NOT NULL,
    PRIMARY KEY (quarter, community_id, target_id)
);

ALTER TABLE league_tables RENAME COLUMN list TO listed;
ALTER TABLE league_tables ADD COLUMN name text NOT NULL DEFAULT '';

-- One row per period: the draft or published table's header.
CREATE TABLE league_publications (
    period        text PRIMARY KEY,
    status        text NOT NULL CHECK (status IN ('draft', 'published')),
    weights       jsonb NOT NULL,
    comments      jsonb NOT NULL DEFAULT '[]',
    computed_at   timestamptz NOT NULL,
    published_at  timestamptz,
    announced_at  timestamptz
);
