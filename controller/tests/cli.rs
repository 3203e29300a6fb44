//! The `takt` binary as an operator runs it: exit codes, messages, a clean stop on SIGTERM and
//! a resume from the journal.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use takt_core::SequencingInput;

fn takt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_takt"));
    cmd.env_remove("TAKT_DATABASE_URL").env("RUST_LOG", "info");
    cmd
}

/// Standard output of a command that must have exited 0 (its standard error otherwise).
fn succeeded(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml")
}

/// The example plant without its plant I/O, written into `dir`: a controller that connects to
/// nothing (the example's sim-line endpoints may be served by a demo running on this machine).
fn unwired_example(dir: &Path) -> PathBuf {
    let mut doc: toml_edit::DocumentMut =
        std::fs::read_to_string(example()).unwrap().parse().unwrap();
    doc.remove("sources").unwrap();
    doc.remove("devices").unwrap();
    let path = dir.join("plant.toml");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[test]
fn check_config_accepts_the_example() {
    let out = takt().arg("check-config").arg(example()).output().unwrap();
    let stdout = succeeded(&out);
    assert!(stdout.contains("example.toml: ok"), "{stdout}");
}

#[test]
fn check_config_names_file_line_and_field_of_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plant.toml");
    let text = std::fs::read_to_string(example()).unwrap();
    // Two independent mistakes: a bad rack size and a family on a line that does not exist.
    let text = text.replacen("rack_size = 6", "rack_size = 0", 1).replacen(
        "line = \"A1\"",
        "line = \"A9\"",
        1,
    );
    std::fs::write(&path, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = takt().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display();
    assert!(
        stderr.contains(&format!("{file}:{}: families[", line_of("rack_size = 0"))),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:{}: families[", line_of("line = \"A9\""))),
        "{stderr}"
    );
    assert!(stderr.contains("no line `A9`"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = takt()
        .args(["run", "--config", "/nonexistent/plant.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/plant.toml"));
}

#[test]
fn help_is_everywhere() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check-config", "--help"],
        &["replay", "--help"],
        &["token", "--help"],
        &["token", "create", "--help"],
    ] {
        let out = takt().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: takt"),
            "{args:?}"
        );
    }
}

/// `GET` over a plain socket (no HTTP client crate for one request); returns the whole answer.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Start `takt run` (HTTP on a free port), wait (bounded) until it says it is running, read
/// `/status`, SIGTERM it; returns its log and the status answer.
fn run_until_ready_then_terminate(config: &Path, db_url: &str) -> (String, String) {
    let mut child = takt()
        .args(["run", "--config"])
        .arg(config)
        .env("TAKT_DATABASE_URL", db_url)
        .env("TAKT_HTTP_ADDR", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("controller running") {
                let url = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("status="))
                    .map(str::to_owned);
                let _ = tx.send(url);
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    let status = match &ready {
        Ok(Some(url)) => http_get(url),
        _ => String::new(),
    };
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let exit = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert!(matches!(ready, Ok(Some(_))), "never became ready:\n{log}");
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    (log, status)
}

#[test]
fn run_stops_cleanly_on_sigterm_and_resumes_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("takt.db").display());
    let config = unwired_example(dir.path());
    let (first, status) = run_until_ready_then_terminate(&config, &db);
    assert!(first.contains("stopped cleanly"), "{first}");
    assert!(first.contains("replayed=0"), "{first}");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        status.contains("\"plant\":\"Leipzig Assembly\""),
        "{status}"
    );
    assert!(status.contains("\"journal_id\":0"), "{status}");
    // The second start finds the snapshot the first one left.
    let (second, _) = run_until_ready_then_terminate(&config, &db);
    assert!(second.contains("snapshot=Some(0)"), "{second}");

    let out = takt()
        .args(["replay", "--config"])
        .arg(example())
        .env("TAKT_DATABASE_URL", &db)
        .output()
        .unwrap();
    let stdout = succeeded(&out);
    assert!(stdout.contains("journal: 0 entries"), "{stdout}");
    assert!(stdout.contains("projections: identical"), "{stdout}");
}

/// A journal with real traffic; then a projection row is damaged behind Takt's back.
#[test]
fn replay_finds_damaged_projections_and_rewrite_repairs_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("takt.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = takt::config::load(&example()).unwrap();
        let plant = std::sync::Arc::new(cfg.plant);
        let store = takt::store::Store::open(&db).await.unwrap();
        let (mut j, _) = takt::runtime::Journaled::open(plant.clone(), store.clone(), 0)
            .await
            .unwrap();
        let line = &plant.config.lines[0];
        let options: Vec<String> = plant
            .config
            .options
            .iter()
            .map(|(k, v)| format!("{k}={}", v[0]))
            .collect();
        for n in 0..30u32 {
            let record = takt_core::RawRecord {
                seq: n,
                vin: format!("WBA{n:014}"),
                body: String::new(),
                model: plant.config.models[0].code.clone(),
                options: options.clone(),
            };
            let input = takt_core::Input::Sequencing(SequencingInput::Broadcast {
                line: line.id.clone(),
                point: line.broadcast_points[0].id.clone(),
                record,
            });
            j.apply(vec![(chrono::Utc::now(), input)]).await.unwrap();
        }
        store.close().await;
    });
    let replay = |extra: &[&str]| {
        let out = takt()
            .args(["replay", "--config"])
            .arg(example())
            .args(extra)
            .env("TAKT_DATABASE_URL", &db)
            .output()
            .unwrap();
        succeeded(&out)
    };
    let clean = replay(&[]);
    assert!(
        clean.contains("journal: 30 entries (0 rejected, 0 ignored)"),
        "{clean}"
    );
    assert!(clean.contains("next expected 0030"), "{clean}");
    assert!(clean.contains("projections: identical"), "{clean}");

    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query("UPDATE calls SET status = 'installed' WHERE id = 1")
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let damaged = replay(&[]);
    assert!(damaged.contains("calls: stored"), "{damaged}");
    assert!(damaged.contains("--rewrite"), "{damaged}");
    replay(&["--rewrite"]);
    assert!(replay(&[]).contains("projections: identical"));
}

/// `takt token …` with the database in `dir` and the controller's HTTP address `http`.
fn token_cmd(config: &Path, dir: &Path, http: &str, args: &[&str]) -> std::process::Output {
    takt()
        .arg("token")
        .args(args)
        .arg("--config")
        .arg(config)
        .env(
            "TAKT_DATABASE_URL",
            format!("sqlite://{}", dir.join("takt.db").display()),
        )
        .env("TAKT_HTTP_ADDR", http)
        .output()
        .unwrap()
}

#[test]
fn token_create_list_revoke_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let config = unwired_example(dir.path());
    // An address nobody listens on: no controller is running.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let idle = free.local_addr().unwrap().to_string();
    drop(free);
    let run = |args: &[&str]| token_cmd(&config, dir.path(), &idle, args);

    let out = run(&["create", "--label", "first admin", "--role", "admin"]);
    let token = succeeded(&out).trim().to_owned();
    assert!(token.starts_with("takt_") && token.len() == 78, "{token}");
    let id = &token[5..13];
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shown only now"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listed = succeeded(&run(&["list"]));
    assert!(
        listed.contains(id) && listed.contains("first admin") && listed.contains("role admin"),
        "{listed}"
    );
    assert!(
        !listed.contains(&token[14..]),
        "the list shows a secret: {listed}"
    );

    succeeded(&run(&["revoke", id]));
    let listed = succeeded(&run(&["list"]));
    let row = listed.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(
        row.trim_end().ends_with('Z') || row.contains("+00:00"),
        "no revocation time: {row}"
    );

    let out = run(&["revoke", "ffffffff"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token ffffffff"));

    let out = run(&["create", "--label", "x", "--role", "boss"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a role"));

    // Something answers on the controller's address: it owns the journal, so nothing is made.
    let running = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = running.local_addr().unwrap().to_string();
    let out = token_cmd(
        &config,
        dir.path(),
        &busy,
        &["create", "--label", "y", "--role", "operator"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("POST /api/v1/tokens"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        succeeded(&run(&["list"])).lines().count(),
        2,
        "header and one token"
    );
}
