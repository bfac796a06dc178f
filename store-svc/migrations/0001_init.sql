-- Organizations, their keys, conversations and messages.

CREATE TABLE organizations (
    -- Org ids appear in event topics ("org:<id>:message:new"), so they are
    -- limited to characters that can never contain the ':' separator.
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name text NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An org may hold several keys at once, so a key can be rotated without
-- downtime: add the new one, move the clients, revoke the old one. Only the
-- SHA-256 hash of a key is stored.
CREATE TABLE org_keys (
    key_hash bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    org_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX org_keys_org_id_idx ON org_keys (org_id);

CREATE TABLE conversations (
    id uuid PRIMARY KEY,
    org_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    message_count integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    -- The target of the messages' composite foreign key.
    UNIQUE (org_id, id)
);

CREATE INDEX conversations_org_updated_idx ON conversations (org_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    org_id text NOT NULL,
    conversation_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL CHECK (content <> ''),
    created_at timestamptz NOT NULL,
    -- The database itself rejects a message filed under another org's
    -- conversation.
    FOREIGN KEY (org_id, conversation_id) REFERENCES conversations (org_id, id) ON DELETE CASCADE
);

CREATE INDEX messages_conversation_created_idx ON messages (conversation_id, created_at, id);
