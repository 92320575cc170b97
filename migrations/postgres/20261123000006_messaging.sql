-- End-to-end encrypted messaging (docs/MESSAGING.md). The server is the MLS Delivery and
-- Authentication Service: it stores public keys, KeyPackages (public), each conversation's
-- public group state, and ciphertext. It never holds a key that opens a message.

-- A device of an account: its MLS credential is the identity `confidant/<user_id>/<device_id>`
-- with this signature key, and nothing else is accepted for that device.
CREATE TABLE devices (
    device_id       TEXT    PRIMARY KEY NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (user_id),
    signature_key   BYTEA    NOT NULL UNIQUE,
    registered_at_ms BIGINT NOT NULL,
    removed_at_ms   BIGINT
);
CREATE INDEX devices_by_user ON devices (user_id);

-- KeyPackages waiting to be claimed: one-time ones are deleted when claimed; the last-resort
-- one stays (it is replaced by the next upload of one).
CREATE TABLE key_packages (
    hash_ref        BYTEA    PRIMARY KEY NOT NULL,
    device_id       TEXT    NOT NULL REFERENCES devices (device_id),
    last_resort     BIGINT  NOT NULL CHECK (last_resort IN (0, 1)),
    key_package     BYTEA    NOT NULL,
    uploaded_at_ms  BIGINT  NOT NULL
);
CREATE INDEX key_packages_by_device ON key_packages (device_id, last_resort);

-- One MLS group per conversation. `public_group` is the server's copy of the group's public
-- state (tree, context, transcript hashes) that every commit is validated against; `epoch`
-- moves only by a conditional update, so the first valid commit of an epoch wins.
CREATE TABLE conversations (
    conversation_id TEXT    PRIMARY KEY NOT NULL,
    patient_id      TEXT    NOT NULL REFERENCES patients (patient_id),
    created_by      TEXT    NOT NULL REFERENCES users (user_id),
    created_at_ms   BIGINT  NOT NULL,
    epoch           BIGINT  NOT NULL,
    last_seq        BIGINT  NOT NULL,
    public_group    BYTEA    NOT NULL
);
CREATE INDEX conversations_by_patient ON conversations (patient_id);

-- Which devices are members now, as the public group says after the last accepted commit:
-- fan-out and fetch rights come from here, never from a list a sender supplies.
CREATE TABLE conversation_devices (
    conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
    device_id       TEXT    NOT NULL REFERENCES devices (device_id),
    joined_seq      BIGINT  NOT NULL,
    acked_seq       BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, device_id)
);
CREATE INDEX conversation_devices_by_device ON conversation_devices (device_id);

-- Each conversation's ordered stream: commits (MLS PublicMessages) and application messages
-- (MLS PrivateMessages, ciphertext only).
CREATE TABLE conversation_messages (
    conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
    seq             BIGINT  NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('commit', 'application')),
    epoch           BIGINT  NOT NULL,
    sender_device   TEXT    NOT NULL REFERENCES devices (device_id),
    message         BYTEA    NOT NULL,
    at_ms           BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- Welcomes, released only with the commit that adds the device (RFC 9420 section 14), kept
-- until the device joined (acknowledged the commit's seq).
CREATE TABLE welcomes (
    conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
    device_id       TEXT    NOT NULL REFERENCES devices (device_id),
    seq             BIGINT  NOT NULL,
    welcome         BYTEA    NOT NULL,
    ratchet_tree    BYTEA    NOT NULL,
    PRIMARY KEY (conversation_id, device_id, seq)
);
CREATE INDEX welcomes_by_device ON welcomes (device_id);
