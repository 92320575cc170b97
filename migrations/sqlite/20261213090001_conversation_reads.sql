-- How far each person has read each conversation (their messages were on the person's screen):
-- the other members see their messages as read. How far an account's devices took messages in
-- is already each device's `acked_seq` in conversation_devices.
CREATE TABLE conversation_reads (
    conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
    user_id         TEXT    NOT NULL REFERENCES users (user_id),
    read_seq        BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
