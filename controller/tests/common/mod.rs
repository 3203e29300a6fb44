//! Where a store test runs: a fresh SQLite file, and a fresh PostgreSQL database when one is
//! reachable. Under `CI=true` an unreachable PostgreSQL fails the test instead of skipping it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use takt::store::Store;

/// A database a test may open (and reopen) as often as it likes.
#[derive(Debug, Clone)]
pub struct TestDb {
    url: String,
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open the test store")
    }
}

pub async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store").join("takt.db");
    let db = TestDb {
        url: format!("sqlite://{}", path.display()),
    };
    body(db).await;
}

fn postgres_admin_url() -> String {
    std::env::var("TAKT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A connection to the admin database, or `None` (after saying why) when PostgreSQL is not
/// there and this is not CI.
async fn postgres_admin() -> Option<PgConnection> {
    let url = postgres_admin_url();
    let options = PgConnectOptions::from_str(&url).expect("valid TAKT_TEST_POSTGRES_URL");
    let connected = tokio::time::timeout(Duration::from_secs(5), options.connect()).await;
    let error = match connected {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out after 5 s".to_owned(),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL at {url} is unreachable ({error}) and CI=true: failing, not skipping");
    }
    eprintln!("note: skipping the PostgreSQL variant, {url} is unreachable: {error}");
    None
}

pub async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(mut admin) = postgres_admin().await else {
        return;
    };
    let name = format!(
        "takt_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // A database left over by a killed run of an earlier process with the same pid.
    let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(AssertSqlSafe(drop_sql.clone()))
        .execute(&mut admin)
        .await
        .expect("drop a stale test database");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let admin_url = postgres_admin_url();
    let (server, _) = admin_url
        .rsplit_once('/')
        .expect("the admin URL names a database");
    let db = TestDb {
        url: format!("{server}/{name}"),
    };
    // Spawned so that a failing body still lets us drop its database before failing the test;
    // it also proves the store's futures are `Send`, which the runtime needs.
    let outcome = tokio::spawn(body(db)).await;
    sqlx::query(AssertSqlSafe(drop_sql))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    admin.close().await.expect("close the admin connection");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs each body in `bodies` as a test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::on_sqlite(super::bodies::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::on_postgres(super::bodies::$name).await;
                }
            )*
        }
    };
}

pub(crate) use on_both_backends;
