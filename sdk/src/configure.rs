//! `configure`: from the proxy's JSON to a ready filter. Shared by the Wasm
//! exports and the native test harness, so tests see exactly what the proxy
//! sees.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};

use crate::{Error, Filter, FilterInfo, Result};

/// Parse `config_json`, build the filter and describe it.
pub(crate) fn configure<F: Filter>(config_json: &str) -> Result<(F, FilterInfo)> {
    let phases = F::__PHASES.ok_or_else(|| {
        Error::config(format!(
            "`{}` implements Filter without #[weir_sdk::filter] on the impl block",
            std::any::type_name::<F>()
        ))
    })?;
    let config = parse_config::<F::Config>(config_json)?;
    let filter = F::new(config)?;
    let info = FilterInfo {
        phases,
        request_body: filter.request_body_mode(),
        response_body: filter.response_body_mode(),
    };
    Ok((filter, info))
}

/// Deserialize the whole of `json`, naming the field that failed.
pub(crate) fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::config(inner)
        } else {
            Error::config(format!("`{path}`: {inner}"))
        }
    })?;
    de.end().map_err(Error::config)?;
    Ok(value)
}

/// The `Config` of a filter that takes no configuration: accepts `{}` and
/// `null`, and rejects anything else (so a misplaced setting is noticed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoConfig;

impl<'de> Deserialize<'de> for NoConfig {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NoConfigVisitor;

        impl<'de> Visitor<'de> for NoConfigVisitor {
            type Value = NoConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("no configuration (`{}` or null)")
            }

            fn visit_unit<E: de::Error>(self) -> Result<NoConfig, E> {
                Ok(NoConfig)
            }

            fn visit_none<E: de::Error>(self) -> Result<NoConfig, E> {
                Ok(NoConfig)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoConfig, A::Error> {
                match map.next_key::<String>()? {
                    None => Ok(NoConfig),
                    Some(key) => Err(de::Error::custom(format!(
                        "unknown field `{key}`: this filter takes no configuration"
                    ))),
                }
            }
        }

        deserializer.deserialize_any(NoConfigVisitor)
    }
}
