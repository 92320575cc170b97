-- A witness of the audit trail outside the audit store: the newest signed checkpoint of each
-- node's chain, written by the node beside every checkpoint it seals. Someone who deletes the
-- newest audit entries together with the checkpoints that cover them (in the audit database and
-- the checkpoint files) still has this store to change; `confidant audit verify` checks the
-- chains against it and names the first missing seq (docs/AUDIT.md, "Witnesses").
CREATE TABLE audit_witness (
    node_id   TEXT   NOT NULL PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      BYTEA  NOT NULL,
    at_ms     BIGINT NOT NULL,
    signature BYTEA  NOT NULL
);
