-- The read model: what the workflows have decided, for lists, reports and the league table.
-- Workflows stay the source of truth; every row here is written by an idempotent activity.

CREATE TABLE units (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    name_en     text NOT NULL,
    level       text NOT NULL CHECK (level IN ('district', 'street', 'area', 'community', 'grid', 'department')),
    parent_id   text REFERENCES units (id),
    households  integer,
    lat         double precision,
    long        double precision
);

CREATE TABLE categories (
    id                       text PRIMARY KEY,
    name                     text NOT NULL,
    name_en                  text NOT NULL,
    owning_level             text NOT NULL,
    lead_department          text NOT NULL REFERENCES units (id),
    cooperating_departments  text[] NOT NULL DEFAULT '{}',
    urgent                   boolean NOT NULL DEFAULT false
);

-- Current snapshot of each issue; `seq` is the last event applied, so an older write loses.
CREATE TABLE issues (
    issue_id      text PRIMARY KEY,
    workflow_id   text NOT NULL UNIQUE,
    channel       text NOT NULL,
    reference     text NOT NULL,
    category      text NOT NULL,
    grid_id       text NOT NULL,
    community_id  text,
    area_id       text,
    street_id     text,
    stage         text NOT NULL,
    owner_unit    text,
    overdue       boolean NOT NULL DEFAULT false,
    due_at        timestamptz,
    outcome       text,
    reopens       integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    seq           integer NOT NULL,
    snapshot      jsonb NOT NULL,
    UNIQUE (channel, reference)
);
CREATE INDEX issues_stage ON issues (stage);
CREATE INDEX issues_owner ON issues (owner_unit);
CREATE INDEX issues_street ON issues (street_id);
CREATE INDEX issues_created ON issues (created_at);

-- Append-only transition log; (issue_id, seq) unique so a retried write is a no-op.
CREATE TABLE issue_events (
    issue_id    text NOT NULL,
    seq         integer NOT NULL,
    at          timestamptz NOT NULL,
    kind        text NOT NULL,
    stage_from  text,
    stage_to    text,
    unit_id     text,
    actor_id    text,
    actor_role  text,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (issue_id, seq)
);
CREATE INDEX issue_events_kind_at ON issue_events (kind, at);
CREATE INDEX issue_events_unit ON issue_events (unit_id);

-- One row per department assignment (lead or cooperating), for on-time rates.
CREATE TABLE assignments (
    issue_id      text NOT NULL,
    department_id text NOT NULL,
    round         integer NOT NULL DEFAULT 1,
    role          text NOT NULL CHECK (role IN ('lead', 'cooperating')),
    status        text NOT NULL,
    street_id     text,
    assigned_at   timestamptz NOT NULL,
    accept_due    timestamptz,
    accepted_at   timestamptz,
    resolve_due   timestamptz,
    resolved_at   timestamptz,
    PRIMARY KEY (issue_id, department_id, round)
);
CREATE INDEX assignments_dept ON assignments (department_id, assigned_at);

-- 罚单: one per missed deadline; (issue_id, deadline_key) unique so retries write it once.
CREATE TABLE penalties (
    issue_id      text NOT NULL,
    deadline_key  text NOT NULL,
    unit_id       text NOT NULL,
    kind          text NOT NULL,
    due_at        timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (issue_id, deadline_key)
);
CREATE INDEX penalties_unit ON penalties (unit_id, recorded_at);

-- Reverse evaluation (逆向考评): one rating per (quarter, community, target), revisable until close.
CREATE TABLE ratings (
    quarter         text NOT NULL,
    community_id    text NOT NULL,
    target_id       text NOT NULL,
    responsiveness  smallint NOT NULL CHECK (responsiveness BETWEEN 1 AND 5),
    quality         smallint NOT NULL CHECK (quality BETWEEN 1 AND 5),
    attitude        smallint NOT NULL CHECK (attitude BETWEEN 1 AND 5),
    pushed_down     boolean NOT NULL DEFAULT false,
    evidence        text,
    rated_at        timestamptz NOT NULL,
    PRIMARY KEY (quarter, community_id, target_id)
);

-- 红黑榜: one row per (period, unit) of a published or draft league table.
CREATE TABLE league_tables (
    period        text NOT NULL,
    unit_id       text NOT NULL,
    unit_kind     text NOT NULL CHECK (unit_kind IN ('department', 'street')),
    status        text NOT NULL CHECK (status IN ('draft', 'published')),
    rank          integer NOT NULL,
    list          text CHECK (list IN ('red', 'black')),
    score         double precision NOT NULL,
    metrics       jsonb NOT NULL,
    computed_at   timestamptz NOT NULL,
    PRIMARY KEY (period, unit_id)
);
