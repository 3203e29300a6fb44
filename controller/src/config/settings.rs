//! The controller's own settings: the optional `[controller]` table of the plant file.
//!
//! They live in the same file as the plant so a site has one thing to version and review; the
//! core never sees them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use takt_core::ConfigIssue;

/// Runtime settings of the controller process. Every field has a default, so the whole table
/// may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSettings {
    /// Where the SQLite database and other local state live. A relative path is taken from the
    /// controller's working directory.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…` / `postgresql://…`. Absent: SQLite file `<data_dir>/takt.db`.
    pub database_url: Option<String>,
    /// Journal inputs between two state snapshots; bounds how much a restart has to replay.
    pub snapshot_every: u64,
    /// Most inputs committed in one group commit; bounds the latency a burst can add.
    pub batch_max: usize,
    /// Address the HTTP API, streams and HMI listen on, `host:port`.
    pub http_addr: String,
    /// How long the event outbox keeps events: how long a stream client, a supplier's system
    /// say, may be away and still resume from its cursor. Older events are deleted; a cursor
    /// below what is kept is answered `410 Gone`.
    pub outbox_keep_hours: u64,
    /// A folder to drop each supplier's DELJIT interchanges in, one subfolder per supplier
    /// (`<dir>/<tenant>/`), for partners that take EDI as files. Absent: the API only.
    pub deljit_dir: Option<PathBuf>,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: None,
            snapshot_every: 10_000,
            batch_max: 2048,
            http_addr: "127.0.0.1:8080".to_owned(),
            // A long weekend with the supplier's link down, and a day to notice.
            outbox_keep_hours: 96,
            deljit_dir: None,
        }
    }
}

/// The database the store connects to, resolved from [`ControllerSettings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An sqlx SQLite URL (`sqlite://data/takt.db`).
    Sqlite(String),
    /// A PostgreSQL URL, as written in the file.
    Postgres(String),
}

impl Database {
    /// The URL to open, whichever the backend.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => url,
        }
    }
}

impl ControllerSettings {
    /// The database to use: `database_url` if given, else the SQLite file in `data_dir`.
    pub fn database(&self) -> Database {
        match &self.database_url {
            Some(url) if is_postgres(url) => Database::Postgres(url.clone()),
            Some(url) => Database::Sqlite(url.clone()),
            None => Database::Sqlite(format!(
                "sqlite://{}",
                self.data_dir.join("takt.db").display()
            )),
        }
    }

    /// Range and format checks, with paths in the file (`controller.batch_max`).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut push = |field: &str, message: &str| {
            issues.push(ConfigIssue {
                path: format!("controller.{field}"),
                message: message.to_owned(),
            });
        };
        if self.data_dir.as_os_str().is_empty() {
            push("data_dir", "must not be empty");
        }
        if let Some(url) = &self.database_url
            && !is_postgres(url)
            && !url.starts_with("sqlite:")
        {
            push(
                "database_url",
                "must start with `sqlite:`, `postgres://` or `postgresql://`",
            );
        }
        if self.snapshot_every == 0 {
            push("snapshot_every", "must be greater than 0");
        }
        if self.batch_max == 0 {
            push("batch_max", "must be greater than 0");
        }
        if self.outbox_keep_hours == 0 {
            push(
                "outbox_keep_hours",
                "must be greater than 0: streams resume from what the outbox keeps",
            );
        }
        let port = self.http_addr.rsplit_once(':').map(|(_, port)| port);
        if port.is_none_or(|port| port.parse::<u16>().is_err()) {
            push("http_addr", "must be `host:port`, e.g. `0.0.0.0:8080`");
        }
        issues
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
