//! Request bodies: JSON decoded so that a mistake names its field.
//!
//! axum's own `Json` answers a bad body in plain text without saying which field was wrong; this
//! one answers problem+json: 400 for what is not JSON at all (or not an object), 422 naming the
//! field (as a dotted path) for a missing field, a wrong type or an unknown field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::Malformed {
                detail: "the body must be JSON (Content-Type: application/json)".to_owned(),
            });
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::Malformed {
                detail: e.body_text(),
            })?;
        decode(&bytes).map(JsonBody)
    }
}

/// `bytes` as a `T`, or the problem naming where it is not one.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so that "not JSON" is a 400 and only a JSON value of the wrong shape a 422.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::Malformed {
            detail: format!("the body is not JSON: {e}"),
        })?;
    if !value.is_object() {
        return Err(ApiError::Malformed {
            detail: "the body must be a JSON object".to_owned(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A missing field is reported at the object that lacks it; name the field itself.
        let message = inner.to_string();
        let field = match missing_field(&message) {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        ApiError::Invalid {
            field,
            detail: message,
        }
    })
}

/// The name in serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shelve {
        until: chrono::DateTime<chrono::Utc>,
        reason: String,
    }

    fn field_of(body: &str) -> Option<String> {
        match decode::<Shelve>(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => Some(field),
            Err(ApiError::Malformed { .. }) => Some("<malformed>".into()),
            _ => None,
        }
    }

    #[test]
    fn each_mistake_names_its_field() {
        let table = [
            (
                r#"{"until":"2026-12-07T10:00:00Z","reason":"maintenance"}"#,
                None,
            ),
            (r#"{"reason":"x"}"#, Some("until")),
            (r#"{"until":"tomorrow","reason":"x"}"#, Some("until")),
            (
                r#"{"until":"2026-12-07T10:00:00Z","reason":7}"#,
                Some("reason"),
            ),
            (
                r#"{"until":"2026-12-07T10:00:00Z","reason":"x","extra":1}"#,
                Some("extra"),
            ),
            ("not json", Some("<malformed>")),
            ("[1]", Some("<malformed>")),
        ];
        for (body, expected) in table {
            assert_eq!(field_of(body).as_deref(), expected, "{body}");
        }
    }
}
