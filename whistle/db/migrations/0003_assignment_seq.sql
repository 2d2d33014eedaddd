-- The event sequence number that last wrote each assignment row: an older write never wins.
ALTER TABLE assignments ADD COLUMN seq integer NOT NULL DEFAULT 0;
