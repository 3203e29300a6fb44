-- Suppliers (issue 15): a supplier-built call carries its supplier (the tenant its reads filter
-- on; NULL: the plant's own call) and when the supplier acknowledged receiving it and building
-- its part.
ALTER TABLE calls ADD COLUMN supplier TEXT;
ALTER TABLE calls ADD COLUMN received_at TIMESTAMPTZ;
ALTER TABLE calls ADD COLUMN built_at TIMESTAMPTZ;
CREATE INDEX calls_supplier ON calls (supplier, id) WHERE supplier IS NOT NULL;
