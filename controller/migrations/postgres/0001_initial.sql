-- Takt store, PostgreSQL dialect. Keep in step with ../sqlite/0001_initial.sql and with the column
-- lists in src/store/rows.rs: the code reads and writes both schemas through those lists.
--
-- Every integer is BIGINT because the code decodes all integers as i64 (PostgreSQL, unlike SQLite,
-- refuses to decode an INT4 into an i64). Times are TIMESTAMPTZ (microsecond resolution, which
-- is why the store refuses journal times with finer digits). Nested projection values are JSONB.
-- The journal payload and snapshot state are JSON, not JSONB: JSON keeps the exact text and
-- accepts `\u0000`, which JSONB (and TEXT) refuse, and a NUL-padded PLC string must never stop an
-- input from being journaled.

-- Every input, in the order it was applied. Ids come from the runtime (strictly increasing), so
-- readers can page and resume by id.
CREATE TABLE journal (
    id BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    payload JSON NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'rejected')),
    reason TEXT
);
-- "every input of the shift". Few indexes on purpose: every one costs each write of the
-- hottest table; readers page by id. Indexes for the supplier API come with that API.
CREATE INDEX journal_at ON journal (at);

-- Projections: the latest version of each entity, upserted with the journal entry that changed
-- it. They can always be rebuilt from the journal (`takt replay`).

CREATE TABLE vehicles (
    id BIGINT PRIMARY KEY,
    line TEXT NOT NULL,
    point TEXT NOT NULL,
    pos BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    vin TEXT NOT NULL,
    body TEXT NOT NULL,
    model TEXT NOT NULL,
    options JSONB NOT NULL,
    broadcast_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    stopped_ms_at_broadcast BIGINT NOT NULL,
    calls JSONB NOT NULL
);
CREATE INDEX vehicles_line_point_pos ON vehicles (line, point, pos);
CREATE INDEX vehicles_vin ON vehicles (vin);

CREATE TABLE calls (
    id BIGINT PRIMARY KEY,
    vehicle BIGINT NOT NULL,
    line TEXT NOT NULL,
    family TEXT NOT NULL,
    seq BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    vin TEXT NOT NULL,
    part TEXT,
    status TEXT NOT NULL,
    rack TEXT,
    slot BIGINT,
    due_at TIMESTAMPTZ NOT NULL,
    corrections BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX calls_line_family_pos ON calls (line, family, pos);
CREATE INDEX calls_vin ON calls (vin);

CREATE TABLE racks (
    id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    number BIGINT NOT NULL,
    size BIGINT NOT NULL,
    filled BIGINT NOT NULL,
    slots JSONB NOT NULL,
    status TEXT NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX racks_family_number ON racks (family, number);
CREATE INDEX racks_status ON racks (status);

CREATE TABLE tasks (
    id BIGINT PRIMARY KEY,
    station TEXT NOT NULL,
    call BIGINT NOT NULL,
    kind TEXT NOT NULL,
    bin TEXT,
    rack TEXT,
    slot BIGINT,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tasks_station_status ON tasks (station, status, id);
CREATE INDEX tasks_call ON tasks (call);

CREATE TABLE alarms (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    shelved_until TIMESTAMPTZ,
    raised_at TIMESTAMPTZ NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    occurrences BIGINT NOT NULL
);
CREATE INDEX alarms_state ON alarms (state);

CREATE TABLE lines (
    line TEXT PRIMARY KEY,
    running BOOLEAN NOT NULL,
    reason TEXT,
    -- NULL until the first line-state input.
    since TIMESTAMPTZ,
    stopped_ms_total BIGINT NOT NULL,
    takt_ms BIGINT NOT NULL
);

CREATE TABLE coverage (
    line TEXT NOT NULL,
    family TEXT NOT NULL,
    vehicles BIGINT NOT NULL,
    -- NULL when the core reports a non-finite number, as on SQLite (which cannot store NaN).
    minutes DOUBLE PRECISION,
    PRIMARY KEY (line, family)
);

-- Core state at a journal id, so a restart replays only the tail of the journal.
CREATE TABLE snapshots (
    journal_id BIGINT PRIMARY KEY,
    state JSON NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL
);
