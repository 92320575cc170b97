-- Where each account last signed in successfully, keyed by an HMAC of the account's email and
-- the address (never either in the clear). An address the account signed in from lately is not
-- held by the account-wide sign-in lock (identity/throttle.rs), so a stranger failing from many
-- addresses cannot lock the owner out of their usual place.
CREATE TABLE sign_in_sources (
    source_key      BYTEA  NOT NULL PRIMARY KEY,
    last_success_ms BIGINT NOT NULL
);
