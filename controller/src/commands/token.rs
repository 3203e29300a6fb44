//! `takt token create|list|revoke`: API tokens from the command line, where the first admin
//! token comes from. Journaled like every other input, through the same runtime, so it runs
//! only while the controller is stopped (two writers on one journal would race for its ids);
//! with the controller running, an admin uses `POST /api/v1/tokens` instead.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use takt::api::auth::new_token;
use takt::config::Config;
use takt::runtime::{Journaled, Submitted};
use takt::store::{Origin, PageQuery, Store};
use takt_core::identity::{IdentityInput, Role, Scope};
use takt_core::{Input, Outcome};

/// What `takt token` was asked to do (its subcommands, as clap parses them).
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// Who will hold it ("HMI line A1", "Seats GmbH planner").
        #[arg(long)]
        label: String,
        /// A plant role: operator, yard, supervisor or admin.
        #[arg(long, value_parser = parse_role, conflicts_with = "tenant", required_unless_present = "tenant")]
        role: Option<Role>,
        /// A supplier's or carrier's id: the token reads that tenant's data only.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List every token (id, holder, scope, when made and revoked); never the tokens themselves.
    List,
    /// Revoke a token by its id (the 8 hex digits after `takt_`).
    Revoke { id: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("{text:?} is not a role: operator, yard, supervisor or admin"))
}

pub(crate) async fn token(config_path: &Path, command: TokenCommand) -> Result<(), ExitCode> {
    let cfg = super::load(config_path)?;
    run(cfg, command).await.map_err(|e| super::fail(&e))
}

async fn run(cfg: Config, command: TokenCommand) -> anyhow::Result<()> {
    let url = cfg.controller.database().url().to_owned();
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    let (input, shown) = match command {
        TokenCommand::List => return list(&store).await,
        TokenCommand::Create {
            label,
            role,
            tenant,
        } => {
            let scope = match (role, tenant) {
                (Some(role), None) => Scope::Role { role },
                (None, Some(tenant)) if cfg.plant.is_tenant(&tenant) => Scope::Tenant { tenant },
                (None, Some(tenant)) => anyhow::bail!(
                    "no supplier or carrier `{tenant}` in {}: tenants come from its \
                     [[suppliers]] and [[carriers]]",
                    cfg.path.display()
                ),
                _ => anyhow::bail!("give exactly one of --role and --tenant"),
            };
            let made = new_token(scope, &label).context("reading the system's randomness")?;
            let id = made.grant.id.clone();
            let input = Input::Identity(IdentityInput::IssueToken(made.grant));
            (input, Some((id, made.token)))
        }
        TokenCommand::Revoke { id } => (Input::Identity(IdentityInput::RevokeToken { id }), None),
    };
    refuse_if_running(&cfg).await?;
    let (mut journaled, _) = Journaled::open(Arc::new(cfg.plant.clone()), store, 0)
        .await
        .context("rebuilding the state from the journal")?;
    let origin = Origin {
        actor: Some(format!(
            "takt token (CLI, {})",
            std::env::var("USER").unwrap_or_else(|_| "unknown user".to_owned())
        )),
        ..Origin::default()
    };
    let submitted = Submitted {
        at: chrono::Utc::now(),
        input,
        origin,
    };
    let (answers, _) = journaled
        .apply_submitted(vec![submitted])
        .await
        .context("journaling")?;
    let applied = answers
        .into_iter()
        .next()
        .context("no answer from the journal")?
        .context("journaling")?;
    journaled.store().close().await;
    match (&applied.outcome, shown) {
        (Outcome::Rejected(reason), _) => anyhow::bail!("refused: {reason}"),
        (Outcome::Ignored(reason), _) => println!("nothing to do: {reason}"),
        (Outcome::Applied, Some((id, token))) => {
            println!("{token}");
            eprintln!(
                "token {id} made (journal entry {}). It is shown only now: keep it somewhere \
                 safe; the controller keeps only its hash.",
                applied.id
            );
        }
        (Outcome::Applied, None) => println!("revoked (journal entry {})", applied.id),
    }
    Ok(())
}

/// Refuses while something answers on the controller's HTTP address: a running controller
/// owns the journal.
async fn refuse_if_running(cfg: &Config) -> anyhow::Result<()> {
    let addr = cfg.controller.http_addr.clone();
    let connect = tokio::net::TcpStream::connect(addr.as_str());
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
        anyhow::bail!(
            "a controller is running at {addr}: it owns the journal. Stop it, or use \
             POST /api/v1/tokens (or /api/v1/tokens/{{id}}/revoke) with an admin token"
        );
    }
    Ok(())
}

async fn list(store: &Store) -> anyhow::Result<()> {
    let mut page = PageQuery {
        after: None,
        limit: 500,
    };
    println!(
        "{:<10} {:<24} {:<22} {:<26} revoked",
        "id", "label", "scope", "created"
    );
    loop {
        let tokens = store
            .api_tokens(&page)
            .await
            .context("reading the tokens")?;
        for t in &tokens {
            let scope = match &t.scope {
                Scope::Role { role } => format!("role {}", serde_plain(role)),
                Scope::Tenant { tenant } => format!("tenant {tenant}"),
            };
            let revoked = t.revoked_at.map(|at| at.to_rfc3339()).unwrap_or_default();
            println!(
                "{:<10} {:<24} {:<22} {:<26} {revoked}",
                t.id,
                t.label,
                scope,
                t.created_at.to_rfc3339()
            );
        }
        match tokens.last() {
            Some(last) if tokens.len() == page.limit as usize => page.after = Some(last.id.clone()),
            _ => break,
        }
    }
    store.close().await;
    Ok(())
}

/// A unit enum value's serde name.
fn serde_plain(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
