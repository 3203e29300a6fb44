-- The event outbox (issue 14): every stream event, numbered by the core in the order it emitted
-- them and written in the same commit as the input that caused it. Streams and (later) webhooks
-- and DELJIT files read it by id; `tenant` is whom an event concerns (NULL: the plant's own),
-- indexed for the tenant's reads that page by it.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    tenant TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
) STRICT;
CREATE INDEX events_tenant ON events (tenant, id) WHERE tenant IS NOT NULL;
