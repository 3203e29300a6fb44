-- Secondary indexes go until a reader needs them. Nothing reads the projections or the journal
-- by anything but their primary keys yet (readers page the journal by id; dumps and status read
-- whole tables), while each of these indexes was written with every commit: on the journal
-- benchmark they took about half of SQLite's time per row. An index comes back in the migration
-- of the feature whose query uses it (the supplier API, the HMI), with that query beside it.
DROP INDEX journal_at;
DROP INDEX vehicles_line_point_pos;
DROP INDEX vehicles_vin;
DROP INDEX calls_line_family_pos;
DROP INDEX calls_vin;
DROP INDEX racks_family_number;
DROP INDEX racks_status;
DROP INDEX tasks_station_status;
DROP INDEX tasks_call;
DROP INDEX alarms_state;
