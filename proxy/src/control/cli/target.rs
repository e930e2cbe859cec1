//! Where the commands go ([`ControlTarget`]), the local config check, and
//! how failures map to exit codes.

use std::path::Path;
use std::process::ExitCode;

use super::args::ControlArgs;
use crate::control::address::ControlAddress;
use crate::control::auth::{BearerToken, TOKEN_ENV};
use crate::control::client::ClientError;
use crate::control::output::OutputFormat;
use crate::control::plane::ConfigFormat;

/// Checks a configuration text before it is sent: `Err` holds the reason,
/// naming the file and field. The seam for `crate::config`'s full validation.
pub type ConfigCheck = fn(text: &str, format: ConfigFormat, origin: &Path) -> Result<(), String>;

/// The default [`ConfigCheck`]: the text must deserialize into the config
/// model (so unknown fields, missing fields and wrong types are caught here,
/// with the field's path); the proxy validates fully when applying.
pub fn check_config_model(text: &str, format: ConfigFormat, origin: &Path) -> Result<(), String> {
    let result: Result<crate::config::Config, String> = match format {
        ConfigFormat::Json => {
            let de = &mut serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        }
        ConfigFormat::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        }
    };
    result
        .map(drop)
        .map_err(|reason| format!("{}: {reason}", origin.display()))
}

/// Where the commands go and how they print.
#[derive(Debug, Clone)]
pub struct ControlTarget {
    /// The control API.
    pub address: ControlAddress,
    /// Sent with every call when set.
    pub token: Option<BearerToken>,
    /// How results are printed.
    pub output: OutputFormat,
    /// Run on a configuration before `config apply` sends it.
    pub config_check: ConfigCheck,
}

impl ControlTarget {
    /// `address`, no token, tables, the default config check.
    pub fn new(address: ControlAddress) -> Self {
        Self {
            address,
            token: None,
            output: OutputFormat::Table,
            config_check: check_config_model,
        }
    }

    /// From the command line: the token from `--token-file`, else from
    /// `$WEIR_CONTROL_TOKEN`, else none.
    pub fn from_args(args: &ControlArgs) -> Result<Self, CliError> {
        let token = match &args.token_file {
            Some(path) => Some(BearerToken::from_file(path)),
            None => BearerToken::from_env(TOKEN_ENV).transpose(),
        };
        let token = token
            .transpose()
            .map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Self {
            token,
            output: args.output,
            ..Self::new(args.control.clone())
        })
    }
}

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Success = 0,
    /// 1: the operation was refused or failed.
    Failed = 1,
    /// 2: bad arguments or unreadable input.
    Usage = 2,
    /// 3: the control API cannot be reached.
    Unreachable = 3,
    /// 4: the control API refused our credentials.
    Unauthenticated = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or unreadable input; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// Refused here, before anything was sent (e.g. the config is invalid).
    #[error("{0}")]
    Refused(String),
    /// The call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Printing the result failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        use tonic::Code;
        match self {
            Self::Usage(_) => Exit::Usage,
            Self::Refused(_) | Self::Output(_) => Exit::Failed,
            Self::Client(ClientError::Unreachable { .. }) => Exit::Unreachable,
            Self::Client(ClientError::Status(status)) => match status.code() {
                Code::Unauthenticated | Code::PermissionDenied => Exit::Unauthenticated,
                Code::Unavailable => Exit::Unreachable,
                _ => Exit::Failed,
            },
        }
    }
}
