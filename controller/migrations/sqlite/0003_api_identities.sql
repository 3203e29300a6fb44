-- API tokens (issue 14): the projection of the identity context's grants and revocations. Only a
-- hash of each token is kept; `id` is the lookup prefix printed in the token itself. Rows are
-- never deleted: a revoked token keeps its row for the audit.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT;

-- Who gave an input through the API (the token's label and id), the reason they gave for an
-- override, and the client's Idempotency-Key: a retried request answers from the entry it
-- already made instead of journaling twice. NULL for inputs from the plant.
ALTER TABLE journal ADD COLUMN actor TEXT;
ALTER TABLE journal ADD COLUMN note TEXT;
ALTER TABLE journal ADD COLUMN idempotency_key TEXT;
CREATE INDEX journal_idempotency ON journal (idempotency_key) WHERE idempotency_key IS NOT NULL;
