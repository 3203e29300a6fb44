//! Who may use the plant API: API tokens, their scopes, and the journaled grants and revocations
//! that make them. A context of its own: it reads no other state and no other reads it.
//!
//! The core never sees a token, only its lookup id and a hash of it (hashing is IO-free but it
//! is the controller's job: the core must not know how tokens are made). A token is never
//! deleted: a revoked one keeps its row, so an audit can say who held what and when it ended.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::io::Outcome;

/// A plant role. Each includes what the ones before it may do, except `yard`, which stands beside
/// `operator` (gate and dock, not the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Line-side: acknowledge alarms, close a rack, reset a station, report racks moved.
    Operator,
    /// Gate and dock: report racks shipped and delivered.
    Yard,
    /// Shift lead: overrides (shelve, resolve a call, resequence, cancel a vehicle) besides
    /// everything an operator and the yard may do.
    Supervisor,
    /// Everything, and tokens.
    Admin,
}

/// What a token may reach: the plant, under a role, or one tenant's own data only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Scope {
    Role {
        role: Role,
    },
    /// A supplier or carrier: reads and commands on its own data, nothing of the plant's.
    Tenant {
        tenant: String,
    },
}

impl Scope {
    /// `true` if this scope carries `role` or a role that includes it.
    pub fn has_role(&self, role: Role) -> bool {
        match self {
            Scope::Tenant { .. } => false,
            Scope::Role { role: held } => match (held, role) {
                (Role::Admin, _) => true,
                (Role::Supervisor, r) => r != Role::Admin,
                (held, r) => *held == r,
            },
        }
    }

    /// The tenant this scope is limited to, if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Scope::Tenant { tenant } => Some(tenant),
            Scope::Role { .. } => None,
        }
    }
}

/// A new token, as journaled: its public lookup id and the hash of the whole token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    /// The lookup prefix printed in the token itself; unique.
    pub id: String,
    /// Lower-case hex SHA-256 of the whole token.
    pub hash: String,
    pub scope: Scope,
    /// Who or what holds it ("HMI line A1", "supplier Seats GmbH planner").
    pub label: String,
}

/// A token as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub hash: String,
    pub scope: Scope,
    pub label: String,
    pub created_at: DateTime<Utc>,
    /// Set once; a revoked token authenticates nobody.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The identity context's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum IdentityInput {
    IssueToken(TokenGrant),
    RevokeToken { id: String },
}

/// Reads the journal's token entries in both shapes: `{"kind":"issue_token",…}` and, as
/// journaled before inputs were grouped by context, `{"kind":"identity","op":"issue_token",…}`,
/// so a journal written then still replays.
impl<'de> Deserialize<'de> for IdentityInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case", tag = "kind")]
        enum Current {
            IssueToken(TokenGrant),
            RevokeToken { id: String },
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case", tag = "op")]
        enum Op {
            IssueToken(TokenGrant),
            RevokeToken { id: String },
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case", tag = "kind")]
        enum Before {
            Identity(Op),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Current(Current),
            Before(Before),
        }
        Ok(match Either::deserialize(d)? {
            Either::Current(Current::IssueToken(g))
            | Either::Before(Before::Identity(Op::IssueToken(g))) => IdentityInput::IssueToken(g),
            Either::Current(Current::RevokeToken { id })
            | Either::Before(Before::Identity(Op::RevokeToken { id })) => {
                IdentityInput::RevokeToken { id }
            }
        })
    }
}

impl IdentityInput {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IssueToken(_) => "issue_token",
            Self::RevokeToken { .. } => "revoke_token",
        }
    }
}

/// Every token ever issued, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identities {
    tokens: BTreeMap<String, ApiToken>,
}

impl Identities {
    /// Apply `input`; the token it changed, if it changed one.
    pub fn handle(
        &mut self,
        now: DateTime<Utc>,
        input: &IdentityInput,
    ) -> (Outcome, Option<ApiToken>) {
        match input {
            IdentityInput::IssueToken(grant) => {
                if let Some(reason) = invalid(grant) {
                    return (Outcome::Rejected(reason), None);
                }
                if self.tokens.contains_key(&grant.id) {
                    return (
                        Outcome::Rejected(format!("token id {} is already taken", grant.id)),
                        None,
                    );
                }
                let token = ApiToken {
                    id: grant.id.clone(),
                    hash: grant.hash.clone(),
                    scope: grant.scope.clone(),
                    label: grant.label.clone(),
                    created_at: now,
                    revoked_at: None,
                };
                self.tokens.insert(token.id.clone(), token.clone());
                (Outcome::Applied, Some(token))
            }
            IdentityInput::RevokeToken { id } => match self.tokens.get_mut(id) {
                None => (Outcome::Rejected(format!("no token {id}")), None),
                Some(token) if token.revoked_at.is_some() => (
                    Outcome::Ignored(format!("token {id} was already revoked")),
                    None,
                ),
                Some(token) => {
                    token.revoked_at = Some(now);
                    (Outcome::Applied, Some(token.clone()))
                }
            },
        }
    }

    pub fn token(&self, id: &str) -> Option<&ApiToken> {
        self.tokens.get(id)
    }
}

/// Why a grant cannot be a token, if it cannot.
fn invalid(grant: &TokenGrant) -> Option<String> {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if grant.id.is_empty() || !grant.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some(format!("token id {:?} is not alphanumeric", grant.id));
    }
    if grant.hash.len() != 64 || !hex(&grant.hash) {
        return Some("token hash is not a lower-case hex SHA-256".to_owned());
    }
    if let Scope::Tenant { tenant } = &grant.scope
        && tenant.trim().is_empty()
    {
        return Some("a tenant token needs a tenant".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> IdentityInput {
        IdentityInput::IssueToken(TokenGrant {
            id: id.into(),
            hash: "ab".repeat(32),
            scope: Scope::Role {
                role: Role::Operator,
            },
            label: "HMI".into(),
        })
    }

    #[test]
    fn roles_include_what_they_should_and_tenants_hold_none() {
        use Role::{Admin, Operator, Supervisor, Yard};
        let table = [
            (Operator, [true, false, false, false]),
            (Yard, [false, true, false, false]),
            (Supervisor, [true, true, true, false]),
            (Admin, [true, true, true, true]),
        ];
        for (held, expected) in table {
            let scope = Scope::Role { role: held };
            let got = [Operator, Yard, Supervisor, Admin].map(|r| scope.has_role(r));
            assert_eq!(got, expected, "{held:?}");
        }
        let tenant = Scope::Tenant {
            tenant: "seats".into(),
        };
        assert!(
            [Operator, Yard, Supervisor, Admin]
                .iter()
                .all(|r| !tenant.has_role(*r))
        );
        assert_eq!(tenant.tenant(), Some("seats"));
    }

    #[test]
    fn issue_revoke_and_the_refusals() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut ids = Identities::default();
        let (outcome, token) = ids.handle(now, &grant("k1"));
        assert_eq!(outcome, Outcome::Applied);
        assert_eq!(token.map(|t| t.revoked_at), Some(None));
        assert!(ids.handle(now, &grant("k1")).0.is_rejected());
        assert!(ids.handle(now, &grant("k-1")).0.is_rejected());
        let revoke = IdentityInput::RevokeToken { id: "k1".into() };
        let (outcome, token) = ids.handle(now, &revoke);
        assert_eq!(outcome, Outcome::Applied);
        assert_eq!(token.and_then(|t| t.revoked_at), Some(now));
        assert!(matches!(ids.handle(now, &revoke).0, Outcome::Ignored(_)));
        let unknown = IdentityInput::RevokeToken { id: "k2".into() };
        assert!(ids.handle(now, &unknown).0.is_rejected());
    }
}
