//! Why a request was allowed or refused: the stable reason codes that appear
//! in error bodies, `www-authenticate` descriptions and metric labels.

use std::fmt;

/// Why credentials were rejected or a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No bearer token and no API key, and no rule let anonymous requests in.
    MissingCredentials,
    /// The `Authorization` header is not `Bearer <token>`.
    MalformedAuthorization,
    /// The token is not three base64url parts with JSON header and claims.
    MalformedToken,
    /// `alg` is `none` or an algorithm this filter does not verify.
    UnsupportedAlgorithm,
    /// The token's `kid` matches no configured or fetched key.
    UnknownKid,
    /// No configured key has a type that fits the token's `alg`.
    NoMatchingKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    TokenExpired,
    /// `nbf` is in the future (beyond the leeway).
    TokenNotYetValid,
    /// The token has no `exp` and the config requires one.
    MissingExpiry,
    /// `iss` is not one of the configured issuers.
    WrongIssuer,
    /// `aud` names none of the configured audiences.
    WrongAudience,
    /// The claim used as the principal is missing or not a string.
    MissingPrincipal,
    /// The API key's digest is not configured.
    InvalidApiKey,
    /// The JWKS could not be fetched and no keys are cached.
    JwksUnavailable,
    /// A `deny` rule matched.
    DeniedByRule,
    /// No rule matched and the default action is `deny`.
    DefaultDeny,
    /// An `allow` rule matched.
    AllowedByRule,
    /// No rule matched and the default action is `allow`.
    DefaultAllow,
    /// The external authorization service refused the request.
    ExtAuthzDenied,
    /// The external authorization service failed (fail-closed).
    ExtAuthzError,
    /// The external authorization service failed and the config fails open.
    ExtAuthzFailOpen,
}

impl Reason {
    /// The snake_case code used in bodies and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCredentials => "missing_credentials",
            Reason::MalformedAuthorization => "malformed_authorization",
            Reason::MalformedToken => "malformed_token",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::UnknownKid => "unknown_kid",
            Reason::NoMatchingKey => "no_matching_key",
            Reason::BadSignature => "bad_signature",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::MissingExpiry => "missing_expiry",
            Reason::WrongIssuer => "wrong_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingPrincipal => "missing_principal",
            Reason::InvalidApiKey => "invalid_api_key",
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::DeniedByRule => "denied_by_rule",
            Reason::DefaultDeny => "default_deny",
            Reason::AllowedByRule => "allowed_by_rule",
            Reason::DefaultAllow => "default_allow",
            Reason::ExtAuthzDenied => "ext_authz_denied",
            Reason::ExtAuthzError => "ext_authz_error",
            Reason::ExtAuthzFailOpen => "ext_authz_fail_open",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
