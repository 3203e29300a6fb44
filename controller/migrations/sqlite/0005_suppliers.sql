-- Suppliers (issue 15): a supplier-built call carries its supplier (the tenant its reads filter
-- on; NULL: the plant's own call) and when the supplier acknowledged receiving it and building
-- its part.
ALTER TABLE calls ADD COLUMN supplier TEXT;
ALTER TABLE calls ADD COLUMN received_at TEXT;
ALTER TABLE calls ADD COLUMN built_at TEXT;
ALTER TABLE calls ADD COLUMN shipped_at TEXT;
ALTER TABLE calls ADD COLUMN delivered_at TEXT;
ALTER TABLE calls ADD COLUMN short_shipped TEXT;
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

-- Forecast sharing: the current plan's demand per supplier family, part and hour (UTC) of need
-- at the install station; a bucket a newer plan no longer needs stays with quantity 0.
CREATE TABLE forecast_demand (
    line TEXT NOT NULL,
    family TEXT NOT NULL,
    part TEXT NOT NULL,
    hour TEXT NOT NULL,
    supplier TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    planned_at TEXT NOT NULL,
    PRIMARY KEY (line, family, part, hour)
) STRICT;
CREATE INDEX forecast_demand_supplier ON forecast_demand (supplier, hour);
CREATE INDEX calls_supplier_due ON calls (supplier, due_at) WHERE supplier IS NOT NULL;
