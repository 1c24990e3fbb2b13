//! Bearer-token check for the admin API. The token lives in a file that an
//! operator may replace while the gateway runs (rotate it, revoke it): the
//! file is looked at on every request and read again when it changed. A
//! replacement that is not a usable token is refused with a log line, and
//! the previous token stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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

/// The token file and the token it held when last read.
#[derive(Clone)]
pub struct TokenFile {
    path: PathBuf,
    current: Arc<Mutex<(Option<(SystemTime, u64)>, Token)>>,
}

impl TokenFile {
    /// Read the token from `path`, refusing a missing or unusable one.
    pub fn open(path: &Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let token = Token::new(&text)?;
        Ok(TokenFile {
            path: path.to_path_buf(),
            current: Arc::new(Mutex::new((stamp(path), token))),
        })
    }

    /// The token in force: the file's, read again if it changed since.
    pub fn token(&self) -> Token {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.path);
        if now != current.0 {
            current.0 = now;
            match std::fs::read_to_string(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|t| Token::new(&t))
            {
                Ok(token) => {
                    tracing::info!("admin token replaced from {}", self.path.display());
                    current.1 = token;
                }
                Err(e) => tracing::error!(
                    "{} changed but holds no usable token ({e}); the previous token stays",
                    self.path.display()
                ),
            }
        }
        current.1.clone()
    }
}

/// What tells that a file changed: its modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub async fn require(State(tokens): State<TokenFile>, req: Request, next: Next) -> Response {
    if tokens.token().admits(req.headers()) {
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

    #[test]
    fn a_replaced_token_file_takes_effect_and_a_bad_one_is_ignored() {
        let dir = std::env::temp_dir().join(format!("gatehouse-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "first-token-0123456789").unwrap();
        let tokens = TokenFile::open(&path).unwrap();
        assert!(
            tokens
                .token()
                .admits(&headers("Bearer first-token-0123456789"))
        );
        // A different length makes the change visible even within the
        // file system's timestamp granularity.
        std::fs::write(&path, "second-token-0123456789").unwrap();
        assert!(
            tokens
                .token()
                .admits(&headers("Bearer second-token-0123456789"))
        );
        assert!(
            !tokens
                .token()
                .admits(&headers("Bearer first-token-0123456789"))
        );
        std::fs::write(&path, "short").unwrap();
        assert!(
            tokens
                .token()
                .admits(&headers("Bearer second-token-0123456789"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
