//! Bearer tokens: how they are made, and who a request's token says it is.
//!
//! A token reads `takt_<id>_<secret>`: `id` (8 hex digits) is the lookup key the store keeps in
//! the clear, `secret` 256 random bits. The store keeps only the SHA-256 of the whole token:
//! tokens are random, not chosen by people, so a fast hash is enough (no dictionary to try), and
//! the comparison runs in constant time. The token is printed once, when it is made.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use takt_core::identity::{ApiToken, Role, Scope, TokenGrant};

use super::ApiState;
use super::problem::ApiError;

const PREFIX: &str = "takt_";
const ID_BYTES: usize = 4;
const SECRET_BYTES: usize = 32;

/// A token just made: the grant to journal, and the token to show its holder once.
#[derive(Debug)]
pub struct NewToken {
    pub grant: TokenGrant,
    pub token: String,
}

/// Makes a token for `scope`, held by `label`.
///
/// # Errors
/// If the operating system has no randomness to give.
pub fn new_token(scope: Scope, label: &str) -> Result<NewToken, getrandom::Error> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id = hex(&id);
    let token = format!("{PREFIX}{id}_{}", hex(&secret));
    Ok(NewToken {
        grant: TokenGrant {
            id,
            hash: hash(&token),
            scope,
            label: label.to_owned(),
        },
        token,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Lower-case hex SHA-256 of `token`.
fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The lookup id of a well-formed token.
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

/// `token` is the one `stored` was made from, and it is not revoked.
fn verifies(token: &str, stored: &ApiToken) -> bool {
    let matches: bool = hash(token).as_bytes().ct_eq(stored.hash.as_bytes()).into();
    matches && stored.revoked_at.is_none()
}

/// Who is asking: the token that authenticated the request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub label: String,
    pub scope: Scope,
}

impl Caller {
    /// How the journal names this caller.
    pub fn actor(&self) -> String {
        format!("{} (token {})", self.label, self.token_id)
    }

    /// The tenant this caller is limited to; a plant token gets a 403 naming `what` (plant users
    /// read the plant's own lists instead).
    pub fn tenant(&self, what: &'static str) -> Result<&str, ApiError> {
        self.scope.tenant().ok_or(ApiError::Forbidden(what))
    }

    /// Go on only if the scope carries `role`; `what` names the action for the 403.
    pub fn require(&self, role: Role, what: &'static str) -> Result<(), ApiError> {
        if self.scope.has_role(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(what))
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated)?;
        let id = token_id(token).ok_or(ApiError::Unauthenticated)?;
        let identities = state.writer.identities();
        let stored = identities
            .token(id)
            .cloned()
            .ok_or(ApiError::Unauthenticated)?;
        if !verifies(token, &stored) {
            return Err(ApiError::Unauthenticated);
        }
        state.limits.admit(&stored.id)?;
        Ok(Caller {
            token_id: stored.id,
            label: stored.label,
            scope: stored.scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn a_token_verifies_against_its_own_hash_only_until_revoked() {
        let scope = Scope::Role {
            role: Role::Operator,
        };
        let made = new_token(scope.clone(), "HMI").expect("randomness");
        assert_eq!(token_id(&made.token), Some(made.grant.id.as_str()));
        let mut stored = ApiToken {
            id: made.grant.id.clone(),
            hash: made.grant.hash.clone(),
            scope,
            label: "HMI".into(),
            created_at: Utc::now(),
            revoked_at: None,
        };
        assert!(verifies(&made.token, &stored));
        let other = new_token(stored.scope.clone(), "other").expect("randomness");
        assert!(!verifies(&other.token, &stored));
        stored.revoked_at = Some(Utc::now());
        assert!(!verifies(&made.token, &stored));
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        let made = new_token(Scope::Tenant { tenant: "t".into() }, "x").expect("randomness");
        let cut = &made.token[..made.token.len() - 1];
        for bad in [
            "",
            "takt_",
            "takt_abcd_ef",
            cut,
            "bearer",
            "takt_zzzzzzzz_00",
        ] {
            assert_eq!(token_id(bad), None, "{bad:?}");
        }
        // 32 bits of id and 256 of secret.
        assert_eq!(made.token.len(), PREFIX.len() + 8 + 1 + 64);
    }
}
