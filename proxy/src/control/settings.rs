//! The `control:` section of the configuration file, ready to be embedded in
//! [`crate::config::Config`] as `#[serde(default)] pub control: ControlSettings`,
//! and its translation into a [`ControlServerConfig`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::address::{AddressError, ControlAddress, DEFAULT_CONTROL_ADDRESS};
use super::auth::{BearerToken, TOKEN_ENV, TokenError};
use super::server::{ControlServerConfig, DEFAULT_MAX_UPLOAD_BYTES};

/// The control API (gRPC: filters, config apply, status, events).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControlSettings {
    /// Set to false to run without the control API. Default true.
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// `ip:port` or `unix:/path/to/socket`. Default `127.0.0.1:9902`. Any
    /// address other machines can reach requires a token.
    #[serde(default = "defaults::address")]
    pub address: String,
    /// File holding the bearer token every call must carry, relative to the
    /// config file's directory. Without it, `$WEIR_CONTROL_TOKEN` if set.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Largest module or configuration a client may upload, in bytes.
    /// Default 67108864 (64 MiB).
    #[serde(default = "defaults::max_upload_bytes")]
    pub max_upload_bytes: usize,
    /// Watch the configuration file and the filters' module files and apply
    /// a change when one happens (`weir run --no-watch` turns it off).
    /// Default true.
    #[serde(default = "defaults::enabled")]
    pub watch: bool,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            enabled: defaults::enabled(),
            address: defaults::address(),
            token_file: None,
            max_upload_bytes: defaults::max_upload_bytes(),
            watch: defaults::enabled(),
        }
    }
}

mod defaults {
    pub(super) fn enabled() -> bool {
        true
    }
    pub(super) fn address() -> String {
        super::DEFAULT_CONTROL_ADDRESS.to_string()
    }
    pub(super) fn max_upload_bytes() -> usize {
        super::DEFAULT_MAX_UPLOAD_BYTES
    }
}

/// Why the `control:` section cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `control.address` does not parse.
    #[error("control.address: {0}")]
    Address(#[from] AddressError),
    /// The token could not be read.
    #[error("control.token_file: {0}")]
    Token(#[from] TokenError),
    /// `control.max_upload_bytes` is 0.
    #[error("control.max_upload_bytes: must be at least 1")]
    ZeroUpload,
}

impl ControlSettings {
    /// The server configuration, or `None` when disabled. `base_dir` is the
    /// config file's directory (for a relative `token_file`). The
    /// token-required policy is enforced by the server itself at start.
    pub fn server_config(
        &self,
        base_dir: &Path,
    ) -> Result<Option<ControlServerConfig>, SettingsError> {
        if !self.enabled {
            return Ok(None);
        }
        let bind: ControlAddress = self.address.parse()?;
        if self.max_upload_bytes == 0 {
            return Err(SettingsError::ZeroUpload);
        }
        let token = match &self.token_file {
            Some(file) => Some(BearerToken::from_file(&base_dir.join(file))?),
            None => BearerToken::from_env(TOKEN_ENV)?,
        };
        Ok(Some(ControlServerConfig {
            bind,
            token,
            max_upload_bytes: self.max_upload_bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_section_means_loopback_defaults() {
        let settings: ControlSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, ControlSettings::default());
        assert_eq!(settings.address, "127.0.0.1:9902");
        assert_eq!(settings.max_upload_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = serde_json::from_str::<ControlSettings>(r#"{"adress": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `adress`"), "{err}");
    }

    #[test]
    fn a_relative_token_file_is_read_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("control.token"), "tok-123\n").unwrap();
        let settings = ControlSettings {
            address: "unix:/run/weir/control.sock".into(),
            token_file: Some("control.token".into()),
            ..ControlSettings::default()
        };
        let config = settings.server_config(dir.path()).unwrap().unwrap();
        assert_eq!(
            config.bind,
            ControlAddress::Unix("/run/weir/control.sock".into())
        );
        assert!(config.token.is_some());

        let missing = ControlSettings {
            token_file: Some("nope".into()),
            ..settings
        };
        let err = missing.server_config(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("control.token_file: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad = ControlSettings {
            address: "everywhere".into(),
            ..ControlSettings::default()
        };
        let err = bad.server_config(Path::new(".")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("control.address: invalid control address"),
            "{err}"
        );
        let zero = ControlSettings {
            max_upload_bytes: 0,
            ..ControlSettings::default()
        };
        assert!(matches!(
            zero.server_config(Path::new(".")),
            Err(SettingsError::ZeroUpload)
        ));
        let off = ControlSettings {
            enabled: false,
            ..ControlSettings::default()
        };
        assert!(off.server_config(Path::new(".")).unwrap().is_none());
    }
}
