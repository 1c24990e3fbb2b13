//! Bearer-token check for the admin API.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The expected token, kept only as its sha256: comparing digests takes the
/// same time whatever the offered token's length or first wrong byte.
#[derive(Clone)]
pub struct Token([u8; 32]);

impl Token {
    /// Tokens shorter than this are refused at start: guessable.
    pub const MIN_LEN: usize = 16;

    pub fn new(secret: &str) -> Result<Token, String> {
        let s = secret.trim();
        if s.len() < Self::MIN_LEN {
            return Err(format!(
                "the admin token must be at least {} characters",
                Self::MIN_LEN
            ));
        }
        Ok(Token(Sha256::digest(s.as_bytes()).into()))
    }

    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let offered = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(offered.trim().as_bytes()).into();
        bool::from(digest.ct_eq(&self.0)) && !offered.is_empty()
    }
}

pub async fn require(State(token): State<Token>, req: Request, next: Next) -> Response {
    if token.admits(req.headers()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({"error": "missing or wrong bearer token"})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn admits_only_the_token() {
        let t = Token::new("s3cret-token-0123456789\n").unwrap();
        assert!(t.admits(&headers("Bearer s3cret-token-0123456789")));
        assert!(!t.admits(&headers("Bearer s3cret-token-012345678")));
        assert!(!t.admits(&headers("Basic s3cret-token-0123456789")));
        assert!(!t.admits(&headers("s3cret-token-0123456789")));
        assert!(!t.admits(&HeaderMap::new()));
        assert!(Token::new("short").is_err());
    }
}
