-- Identity and access (docs/SECURITY.md, docs/API.md). Secrets are never stored as given:
-- passwords as argon2id PHC strings, tokens and codes as SHA-256 of 256 random bits, recovery
-- codes as SHA-256 bound to the account. Emails and TOTP secrets are sealed like PHI columns
-- (key_id names their data key; email_index is the blind index used to find an account).

-- One row per person. status: 'invited' until the invitation is accepted (no password yet),
-- then 'active'; 'disabled' ends every session and refuses sign-in.
CREATE TABLE users (
    user_id            TEXT    PRIMARY KEY NOT NULL,
    role               TEXT    NOT NULL CHECK (role IN ('practice_owner', 'clinician', 'front_desk', 'billing', 'patient')),
    status             TEXT    NOT NULL CHECK (status IN ('invited', 'active', 'disabled')),
    key_id             BIGINT  NOT NULL REFERENCES data_keys (key_id),
    email              BYTEA   NOT NULL,
    email_index        BYTEA   NOT NULL UNIQUE,
    patient_id         TEXT    UNIQUE REFERENCES patients (patient_id),
    password_hash      TEXT,
    totp_secret        BYTEA,
    totp_enabled_at_ms BIGINT,
    totp_last_step     BIGINT,
    created_at_ms      BIGINT  NOT NULL,
    updated_at_ms      BIGINT  NOT NULL,
    CHECK ((role = 'patient') = (patient_id IS NOT NULL)),
    CHECK (status <> 'active' OR password_hash IS NOT NULL)
);
CREATE INDEX users_by_key ON users (key_id);

-- A one-time, expiring invitation: accepting it sets the password and activates the account.
CREATE TABLE invitations (
    token_hash     BYTEA   PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    invited_by     TEXT    REFERENCES users (user_id),
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL,
    accepted_at_ms BIGINT
);
CREATE INDEX invitations_by_user ON invitations (user_id);

CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (user_id),
    code_hash  BYTEA   NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in in progress: the password was right, the second factor is still due.
CREATE TABLE sign_in_flows (
    flow_hash      BYTEA   PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL
);

-- OAuth 2.0 authorization codes (RFC 6749 4.1, PKCE S256 RFC 7636). session_id is set when the
-- code is exchanged, so a second exchange can revoke what the first one issued.
CREATE TABLE authorization_codes (
    code_hash      BYTEA   PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    mfa_at_ms      BIGINT,
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL,
    session_id     TEXT
);

-- Server-side sessions. A session is also the refresh-token family: revoking it (sign-out,
-- timeout, reuse of a rotated refresh token, disabled account) kills every token it issued.
CREATE TABLE sessions (
    session_id      TEXT    PRIMARY KEY NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (user_id),
    client_id       TEXT    NOT NULL,
    mfa_at_ms       BIGINT,
    created_at_ms   BIGINT  NOT NULL,
    last_seen_at_ms BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL,
    ended_at_ms     BIGINT,
    end_reason      TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_end ON sessions (ended_at_ms);

-- Access and refresh tokens of a session. A refresh token is used once: rotation marks it
-- used_at_ms; presenting it again revokes the session.
CREATE TABLE session_tokens (
    token_hash    BYTEA   PRIMARY KEY NOT NULL,
    session_id    TEXT    NOT NULL REFERENCES sessions (session_id),
    kind          TEXT    NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX session_tokens_by_session ON session_tokens (session_id);

-- Failed attempts per account and per source address (keys are HMACs, never the email or IP).
CREATE TABLE throttles (
    throttle_key     BYTEA   PRIMARY KEY NOT NULL,
    failures         BIGINT  NOT NULL,
    last_failure_ms  BIGINT  NOT NULL,
    locked_until_ms  BIGINT  NOT NULL
);

-- Which clinicians treat which patient.
CREATE TABLE care_team (
    patient_id     TEXT    NOT NULL REFERENCES patients (patient_id),
    clinician_id   TEXT    NOT NULL REFERENCES users (user_id),
    assigned_by    TEXT,
    assigned_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (patient_id, clinician_id)
);
CREATE INDEX care_team_by_clinician ON care_team (clinician_id);

-- Emergency access outside the care team. The stated reason is sealed (it may describe the
-- patient's condition).
CREATE TABLE break_glass_grants (
    grant_id      TEXT    PRIMARY KEY NOT NULL,
    key_id        BIGINT  NOT NULL REFERENCES data_keys (key_id),
    clinician_id  TEXT    NOT NULL REFERENCES users (user_id),
    patient_id    TEXT    NOT NULL REFERENCES patients (patient_id),
    reason        BYTEA   NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
CREATE INDEX break_glass_by_clinician ON break_glass_grants (clinician_id, patient_id);
CREATE INDEX break_glass_by_key ON break_glass_grants (key_id);
