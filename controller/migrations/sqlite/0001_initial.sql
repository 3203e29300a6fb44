-- Takt store, SQLite dialect. Keep in step with ../postgres/0001_initial.sql and with the column
-- lists in src/store/rows.rs: the code reads and writes both schemas through those lists.
--
-- STRICT tables make SQLite refuse a value of the wrong type instead of silently storing it,
-- which keeps the two backends honest about the same data. Integer keys are `INTEGER PRIMARY KEY`
-- (a rowid alias; `BIGINT PRIMARY KEY` would decode as nullable). Times are RFC 3339 text in UTC;
-- JSON is text. Projection text has U+0000 replaced (PostgreSQL cannot store it; both backends
-- must hold the same projections); the journal payload keeps it, escaped in the JSON.

-- Every input, in the order it was applied. Ids come from the runtime (strictly increasing), so
-- readers can page and resume by id.
CREATE TABLE journal (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'rejected')),
    reason TEXT
) STRICT;
-- "every input of the shift". Few indexes on purpose: every one costs each write of the
-- hottest table; readers page by id. Indexes for the supplier API come with that API.
CREATE INDEX journal_at ON journal (at);

-- Projections: the latest version of each entity, upserted with the journal entry that changed
-- it. They can always be rebuilt from the journal (`takt replay`).

CREATE TABLE vehicles (
    id INTEGER PRIMARY KEY,
    line TEXT NOT NULL,
    point TEXT NOT NULL,
    pos INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    vin TEXT NOT NULL,
    body TEXT NOT NULL,
    model TEXT NOT NULL,
    options TEXT NOT NULL,
    broadcast_at TEXT NOT NULL,
    status TEXT NOT NULL,
    stopped_ms_at_broadcast INTEGER NOT NULL,
    calls TEXT NOT NULL
) STRICT;
CREATE INDEX vehicles_line_point_pos ON vehicles (line, point, pos);
CREATE INDEX vehicles_vin ON vehicles (vin);

CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    vehicle INTEGER NOT NULL,
    line TEXT NOT NULL,
    family TEXT NOT NULL,
    seq INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    vin TEXT NOT NULL,
    part TEXT,
    status TEXT NOT NULL,
    rack TEXT,
    slot INTEGER,
    due_at TEXT NOT NULL,
    corrections INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX calls_line_family_pos ON calls (line, family, pos);
CREATE INDEX calls_vin ON calls (vin);

CREATE TABLE racks (
    id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    filled INTEGER NOT NULL,
    slots TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX racks_family_number ON racks (family, number);
CREATE INDEX racks_status ON racks (status);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    station TEXT NOT NULL,
    call INTEGER NOT NULL,
    kind TEXT NOT NULL,
    bin TEXT,
    rack TEXT,
    slot INTEGER,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX tasks_station_status ON tasks (station, status, id);
CREATE INDEX tasks_call ON tasks (call);

CREATE TABLE alarms (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    shelved_until TEXT,
    raised_at TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    occurrences INTEGER NOT NULL
) STRICT;
CREATE INDEX alarms_state ON alarms (state);

CREATE TABLE lines (
    line TEXT PRIMARY KEY,
    running INTEGER NOT NULL,
    reason TEXT,
    -- NULL until the first line-state input.
    since TEXT,
    stopped_ms_total INTEGER NOT NULL,
    takt_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE coverage (
    line TEXT NOT NULL,
    family TEXT NOT NULL,
    vehicles INTEGER NOT NULL,
    -- NULL when the core reports a non-finite number (SQLite cannot store NaN).
    minutes REAL,
    PRIMARY KEY (line, family)
) STRICT;

-- Core state at a journal id, so a restart replays only the tail of the journal.
CREATE TABLE snapshots (
    journal_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    taken_at TEXT NOT NULL
) STRICT;
