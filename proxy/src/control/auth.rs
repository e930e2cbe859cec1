//! Bearer-token authentication of the control API.
//!
//! When a token is configured, every call (control, health, reflection) must
//! carry `authorization: Bearer <token>`. The comparison is constant-time:
//! both sides are hashed to SHA-256 first, so neither the content nor the
//! length of the token leaks through timing.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataValue;

/// Environment variable the `weir` command reads a control token from.
pub const TOKEN_ENV: &str = "WEIR_CONTROL_TOKEN";

/// A shared secret that authorizes control API calls.
#[derive(Clone)]
pub struct BearerToken {
    secret: Arc<str>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read control token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The token is empty.
    #[error("control token from {origin} is empty")]
    Empty {
        /// Where it came from (a file or an environment variable).
        origin: String,
    },
    /// The token has characters a header cannot carry.
    #[error(
        "control token from {origin} must be printable ASCII without spaces \
         (e.g. the output of `openssl rand -hex 32`)"
    )]
    Invalid {
        /// Where it came from.
        origin: String,
    },
}

impl BearerToken {
    /// A token from its text; `origin` names where it came from in errors.
    /// Surrounding whitespace (such as a file's final newline) is ignored.
    pub fn new(text: &str, origin: &str) -> Result<Self, TokenError> {
        let secret = text.trim();
        if secret.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_string(),
            });
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid {
                origin: origin.to_string(),
            });
        }
        Ok(Self {
            secret: Arc::from(secret),
        })
    }

    /// The token stored in `path` (its whole content, trimmed).
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&text, &path.display().to_string())
    }

    /// The token in environment variable `var`, if it is set.
    pub fn from_env(var: &str) -> Result<Option<Self>, TokenError> {
        match std::env::var(var) {
            Ok(text) => Self::new(&text, &format!("${var}")).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::Invalid {
                origin: format!("${var}"),
            }),
        }
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }

    /// The `authorization` header value that carries this token.
    pub(crate) fn header_value(&self) -> MetadataValue<tonic::metadata::Ascii> {
        // `new` only admits printable ASCII, which is always a valid value.
        MetadataValue::try_from(format!("Bearer {}", self.secret))
            .expect("printable ASCII is a valid metadata value")
    }
}

/// Server side: when a token is configured, rejects calls without it with
/// UNAUTHENTICATED; without one, lets every call through.
#[derive(Clone)]
pub(crate) struct RequireToken {
    expected: Option<[u8; 32]>,
}

impl RequireToken {
    pub(crate) fn new(token: Option<&BearerToken>) -> Self {
        Self {
            expected: token.map(BearerToken::digest),
        }
    }
}

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let Some(value) = request.metadata().get("authorization") else {
            return Err(tonic::Status::unauthenticated(
                "missing bearer token: this control API requires `authorization: Bearer <token>` \
                 (weir: --token-file or $WEIR_CONTROL_TOKEN)",
            ));
        };
        let given = value.to_str().ok().and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        let Some(given) = given else {
            return Err(tonic::Status::unauthenticated(
                "malformed authorization header: expected `Bearer <token>`",
            ));
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(request)
        } else {
            Err(tonic::Status::unauthenticated("invalid bearer token"))
        }
    }
}

/// Client side: attaches the token (if any) to every call.
#[derive(Clone, Debug, Default)]
pub(crate) struct AttachToken {
    token: Option<BearerToken>,
}

impl AttachToken {
    pub(crate) fn new(token: Option<BearerToken>) -> Self {
        Self { token }
    }
}

impl tonic::service::Interceptor for AttachToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.header_value());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn request_with(header: Option<&str>) -> tonic::Request<()> {
        let mut request = tonic::Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        request
    }

    #[test]
    fn only_the_right_token_passes() {
        let token = BearerToken::new("s3cret-token\n", "test").unwrap();
        let mut check = RequireToken::new(Some(&token));
        assert!(
            check
                .call(request_with(Some("Bearer s3cret-token")))
                .is_ok()
        );
        assert!(
            check
                .call(request_with(Some("bearer s3cret-token")))
                .is_ok()
        );
        for bad in [
            None,
            Some("Bearer wrong"),
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
        ] {
            let status = check.call(request_with(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn without_a_token_every_call_passes() {
        let mut check = RequireToken::new(None);
        assert!(check.call(request_with(None)).is_ok());
        assert!(check.call(request_with(Some("Bearer anything"))).is_ok());
    }

    #[test]
    fn tokens_must_be_non_empty_printable_ascii() {
        assert!(matches!(
            BearerToken::new(" \n", "f"),
            Err(TokenError::Empty { .. })
        ));
        assert!(matches!(
            BearerToken::new("a b", "f"),
            Err(TokenError::Invalid { .. })
        ));
        assert!(matches!(
            BearerToken::new("é", "f"),
            Err(TokenError::Invalid { .. })
        ));
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let token = BearerToken::new("hunter2", "test").unwrap();
        assert!(!format!("{token:?}").contains("hunter2"));
    }

    #[test]
    fn a_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let token = BearerToken::from_file(&path).unwrap();
        assert_eq!(token.header_value(), "Bearer abc123");
        let missing = BearerToken::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
