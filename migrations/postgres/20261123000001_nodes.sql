-- Every server process that has run against this store: its version and when it last started
-- and stopped cleanly. A start without a matching stop means the previous run crashed.
CREATE TABLE nodes (
    node_id             TEXT    PRIMARY KEY NOT NULL,
    version             TEXT    NOT NULL,
    first_started_at_ms BIGINT  NOT NULL,
    last_started_at_ms  BIGINT  NOT NULL,
    last_stopped_at_ms  BIGINT
);
