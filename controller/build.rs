// `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know to
// rebuild when one is added or edited: without this, an incremental build keeps the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
