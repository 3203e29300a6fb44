-- Suppliers (issue 15): a supplier-built call carries its supplier (the tenant its reads filter
-- on; NULL: the plant's own call) and when the supplier acknowledged receiving it and building
-- its part.
ALTER TABLE calls ADD COLUMN supplier TEXT;
ALTER TABLE calls ADD COLUMN received_at TEXT;
ALTER TABLE calls ADD COLUMN built_at TEXT;
CREATE INDEX calls_supplier ON calls (supplier, id) WHERE supplier IS NOT NULL;

-- Shipments from suppliers' ASNs: one row each, kept after delivery for the KPIs.
CREATE TABLE shipments (
    id INTEGER PRIMARY KEY,
    supplier TEXT NOT NULL,
    number TEXT NOT NULL,
    carrier TEXT NOT NULL,
    trailer TEXT NOT NULL,
    eta TEXT NOT NULL,
    racks TEXT NOT NULL,
    skipped TEXT NOT NULL,
    status TEXT NOT NULL,
    at_risk TEXT,
    arrived_at TEXT,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX shipments_supplier ON shipments (supplier, id);
