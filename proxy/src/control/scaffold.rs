//! `weir filter new`: a ready-to-build filter crate from the embedded
//! template (`templates/filter/`): Cargo.toml, src/lib.rs with a `Filter`
//! impl and unit tests, an example config, README, .gitignore.
//!
//! `weir-sdk` is not on crates.io yet, so by default the crate depends on
//! the `sdk/` of a Weir checkout found by [`default_sdk`]; `--sdk-path`,
//! `--sdk-git` and `--sdk-version` choose explicitly.

use std::path::{Path, PathBuf};

use serde::Serialize;

const CARGO_TOML: &str = include_str!("templates/filter/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("templates/filter/lib.rs.tmpl");
const README_MD: &str = include_str!("templates/filter/README.md.tmpl");
const CONFIG_JSON: &str = include_str!("templates/filter/config.json.tmpl");
const GITIGNORE: &str = include_str!("templates/filter/gitignore.tmpl");

/// Where the new crate gets `weir-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A version from the registry, e.g. `0.1`.
    Version(String),
    /// A local checkout of the SDK crate (the `sdk/` directory of Weir).
    Path(PathBuf),
    /// A git repository holding Weir (cargo finds `weir-sdk` in it).
    Git(String),
}

impl Default for SdkSource {
    /// The registry release of the same minor version as this `weir`. Not
    /// published yet: `weir filter new` uses it only with `--sdk-version`
    /// and otherwise defaults to a checkout ([`default_sdk`]).
    fn default() -> Self {
        let version = env!("CARGO_PKG_VERSION");
        let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
        Self::Version(minor)
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewFilter {
    /// The crate (and filter) name: lower-case letters, digits, `-`, `_`.
    pub name: String,
    /// The directory to create; default `./NAME`.
    pub dir: PathBuf,
    /// Where `weir-sdk` comes from.
    pub sdk: SdkSource,
}

/// What was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scaffolded {
    /// The crate name.
    pub name: String,
    /// The crate's directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
}

/// Why nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate name.
    #[error(
        "invalid filter name {0:?}: use lower-case letters, digits, '-' and '_', starting \
         with a letter (e.g. rate-limit)"
    )]
    InvalidName(String),
    /// The directory has files in it already.
    #[error("{} already exists and is not empty; choose another --dir", .0.display())]
    NotEmpty(PathBuf),
    /// No `--sdk-*` option, and no Weir checkout to take the SDK from.
    #[error(
        "weir-sdk is not published on crates.io yet, and no Weir checkout was found \
         (looked for sdk/Cargo.toml in {}); pass --sdk-path PATH (the sdk/ directory of a \
         Weir checkout) or --sdk-git URL (a Weir git repository)",
        looked_in(.0)
    )]
    NoSdk(Vec<PathBuf>),
    /// The SDK path given does not exist.
    #[error("SDK path {}: {source}", path.display())]
    SdkPath {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used.
        source: std::io::Error,
    },
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn looked_in(starts: &[PathBuf]) -> String {
    let places: Vec<String> = starts
        .iter()
        .map(|p| format!("{} and its parents", p.display()))
        .collect();
    places.join(", ")
}

/// The `sdk/` directory of the Weir checkout at `dir`, if `dir` is one.
fn sdk_of(dir: &Path) -> Option<PathBuf> {
    let sdk = dir.join("sdk");
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).ok()?;
    manifest
        .lines()
        .any(|line| line.trim() == "name = \"weir-sdk\"")
        .then_some(sdk)
}

/// The first Weir checkout at or above one of `starts`, tried in order.
fn find_sdk(starts: &[PathBuf]) -> Option<PathBuf> {
    starts
        .iter()
        .find_map(|start| start.ancestors().find_map(sdk_of))
}

/// Where `weir filter new` takes `weir-sdk` from when no `--sdk-*` option
/// is given: the `sdk/` of the Weir checkout containing the current
/// directory, else of the one containing this `weir` binary (e.g.
/// `target/release/weir`), else of the checkout it was built from, if that
/// is still there. With none of them, [`ScaffoldError::NoSdk`] says what to
/// pass instead.
pub fn default_sdk() -> Result<SdkSource, ScaffoldError> {
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        starts.push(dir);
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    find_sdk(&starts)
        .map(SdkSource::Path)
        .ok_or(ScaffoldError::NoSdk(starts))
}

/// Rust keywords cargo refuses as package names.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Checks `name` can be a crate name (and so a filter name).
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !KEYWORDS.contains(&name.replace('-', "_").as_str());
    if valid {
        Ok(())
    } else {
        Err(ScaffoldError::InvalidName(name.to_string()))
    }
}

/// `rate-limit` → `RateLimit`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

fn sdk_dependency(sdk: &SdkSource) -> Result<String, ScaffoldError> {
    Ok(match sdk {
        SdkSource::Version(version) => format!("weir-sdk = \"{version}\""),
        SdkSource::Path(path) => {
            // Absolute, so the crate builds wherever it was created.
            let absolute = path
                .canonicalize()
                .map_err(|source| ScaffoldError::SdkPath {
                    path: path.clone(),
                    source,
                })?;
            let text = toml_string(&absolute.to_string_lossy());
            format!("weir-sdk = {{ path = \"{text}\" }}")
        }
        SdkSource::Git(url) => format!("weir-sdk = {{ git = \"{}\" }}", toml_string(url)),
    })
}

/// `text` escaped for a TOML basic string.
fn toml_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn render(template: &str, name: &str, sdk_dependency: &str) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{crate_ident}}", &name.replace('-', "_"))
        .replace("{{type_name}}", &type_name(name))
        .replace("{{sdk_dependency}}", sdk_dependency)
}

/// Creates the crate. Refuses a directory that has files in it already.
pub fn scaffold(new: &NewFilter) -> Result<Scaffolded, ScaffoldError> {
    check_name(&new.name)?;
    let sdk_dependency = sdk_dependency(&new.sdk)?;
    if let Ok(mut entries) = std::fs::read_dir(&new.dir)
        && entries.next().is_some()
    {
        return Err(ScaffoldError::NotEmpty(new.dir.clone()));
    }

    let files: [(&str, &str); 5] = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("README.md", README_MD),
        ("config.json", CONFIG_JSON),
        (".gitignore", GITIGNORE),
    ];
    let write = |path: &Path, text: &str| -> Result<(), ScaffoldError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(path, text).map_err(|source| ScaffoldError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut written = Vec::new();
    for (relative, template) in files {
        write(
            &new.dir.join(relative),
            &render(template, &new.name, &sdk_dependency),
        )?;
        written.push(PathBuf::from(relative));
    }
    Ok(Scaffolded {
        name: new.name.clone(),
        dir: new.dir.clone(),
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_names() {
        for good in ["hello", "rate-limit", "a1_b2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Hello", "1st", "-x", "a b", "a/b", "crate", "self", "über",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("rate-limit"), "RateLimit");
        assert_eq!(type_name("a1_b2"), "A1B2");
    }

    #[test]
    fn scaffolds_a_crate_named_after_the_filter() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rate-limit");
        let sdk = tmp.path().join("sdk");
        std::fs::create_dir(&sdk).unwrap();
        let done = scaffold(&NewFilter {
            name: "rate-limit".into(),
            dir: dir.clone(),
            sdk: SdkSource::Path(sdk.clone()),
        })
        .unwrap();
        assert_eq!(done.files.len(), 5);

        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"rate-limit\""), "{cargo}");
        let sdk_line = format!(
            "weir-sdk = {{ path = \"{}\" }}",
            sdk.canonicalize().unwrap().display()
        );
        assert!(cargo.contains(&sdk_line), "{cargo}");
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct RateLimit"), "{lib}");
        assert!(lib.contains("#[weir_sdk::filter]") && lib.contains("#[test]"));
        assert!(!lib.contains("{{"), "unreplaced placeholder left:\n{lib}");
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(readme.contains("release/rate_limit.wasm"), "{readme}");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["value"], "from rate-limit");
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold(&NewFilter {
            name: "x".into(),
            dir: tmp.path().to_path_buf(),
            sdk: SdkSource::default(),
        })
        .unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty(_)), "{err}");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn inside_the_repo_the_default_sdk_is_its_sdk_directory() {
        // `cargo test` runs in proxy/, inside the checkout.
        let SdkSource::Path(path) = default_sdk().unwrap() else {
            panic!("not a path")
        };
        assert!(path.join("Cargo.toml").is_file(), "{}", path.display());
        let repo_sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        assert_eq!(
            path.canonicalize().unwrap(),
            repo_sdk.canonicalize().unwrap()
        );
        let dependency = sdk_dependency(&SdkSource::Path(path)).unwrap();
        assert!(
            dependency.starts_with("weir-sdk = { path = \"/"),
            "{dependency}"
        );
    }

    #[test]
    fn a_checkout_is_found_above_any_start_and_only_there() {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("weir");
        std::fs::create_dir_all(checkout.join("sdk")).unwrap();
        std::fs::write(
            checkout.join("sdk/Cargo.toml"),
            "[package]\nname = \"weir-sdk\"\n",
        )
        .unwrap();
        let deep = checkout.join("work/my-filter/src");
        std::fs::create_dir_all(&deep).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("sdk")).unwrap();
        // An sdk/ that is not weir-sdk does not count.
        std::fs::write(
            elsewhere.join("sdk/Cargo.toml"),
            "[package]\nname = \"other\"\n",
        )
        .unwrap();

        assert_eq!(
            find_sdk(&[elsewhere.clone(), deep]),
            Some(checkout.join("sdk"))
        );
        assert_eq!(find_sdk(std::slice::from_ref(&elsewhere)), None);
        let message = ScaffoldError::NoSdk(vec![elsewhere]).to_string();
        assert!(
            message.contains("--sdk-path") && message.contains("--sdk-git"),
            "{message}"
        );
    }

    #[test]
    fn a_git_source_is_a_git_dependency() {
        let dependency = sdk_dependency(&SdkSource::Git("https://example.org/weir.git".into()));
        assert_eq!(
            dependency.unwrap(),
            "weir-sdk = { git = \"https://example.org/weir.git\" }"
        );
    }

    #[test]
    fn the_default_sdk_is_this_minor_version() {
        let SdkSource::Version(v) = SdkSource::default() else {
            panic!("not a version")
        };
        assert!(env!("CARGO_PKG_VERSION").starts_with(&v));
    }
}
