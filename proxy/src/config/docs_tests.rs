//! Keeps `docs/config.md` in sync with `types.rs`: every field of every
//! struct has a row in the section for that struct, every row names a real
//! field, every enum value is mentioned, every field has a doc comment, and
//! the full example in the docs is a valid configuration.

use super::types::Config;
use super::validate;

const TYPES: &str = include_str!("types.rs");
const DOCS: &str = include_str!("../../../docs/config.md");

/// A struct of types.rs with its serde field names.
#[derive(Debug)]
struct Struct {
    name: String,
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Field {
    name: String,
    documented: bool,
}

/// Scans `pub struct X { ... }` blocks: fields are `    pub name: Type,`
/// lines; a `rename = "..."` in a preceding `#[serde(...)]` gives the name.
fn structs(source: &str) -> Vec<Struct> {
    let mut structs = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|rest| rest.strip_suffix(" {"))
        else {
            continue;
        };
        let mut fields = Vec::new();
        let (mut rename, mut documented) = (None, false);
        for line in lines.by_ref() {
            let line = line.trim();
            if line == "}" {
                break;
            }
            if line.starts_with("///") {
                documented = true;
            } else if line.starts_with("#[serde(") {
                if let Some(at) = line.find("rename = \"") {
                    let rest = &line[at + "rename = \"".len()..];
                    rename = rest.split('"').next().map(str::to_owned);
                }
            } else if let Some(rest) = line.strip_prefix("pub ") {
                let field = rest.split(':').next().unwrap_or_default().to_string();
                fields.push(Field {
                    name: rename.take().unwrap_or(field),
                    documented,
                });
                documented = false;
            }
        }
        structs.push(Struct {
            name: name.to_string(),
            fields,
        });
    }
    structs
}

/// Scans `pub enum X { ... }` blocks for their variants, in snake_case (all
/// config enums use `rename_all = "snake_case"`).
fn enum_values(source: &str) -> Vec<(String, Vec<String>)> {
    let mut enums = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("pub enum ")
            .and_then(|rest| rest.strip_suffix(" {"))
        else {
            continue;
        };
        let mut values = Vec::new();
        for line in lines.by_ref() {
            let line = line.trim();
            if line == "}" {
                break;
            }
            if let Some(variant) = line
                .strip_suffix(',')
                .filter(|v| v.chars().all(char::is_alphanumeric))
            {
                values.push(snake_case(variant));
            }
        }
        enums.push((name.to_string(), values));
    }
    enums
}

fn snake_case(camel: &str) -> String {
    let mut snake = String::new();
    for (index, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// The docs section for a struct: the `### ... (Name)` heading's first
/// backticked text (the field prefix, empty for the top level) and the
/// table rows' field names up to the next heading.
fn section(name: &str) -> Option<(String, Vec<String>)> {
    let marker = format!("({name})");
    let mut lines = DOCS
        .lines()
        .skip_while(|line| !(line.starts_with("### ") && line.ends_with(&marker)));
    let heading = lines.next()?;
    let prefix = heading.split('`').nth(1).unwrap_or_default().to_string();
    let rows = lines
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| row.split('`').next())
        .map(str::to_owned)
        .collect();
    Some((prefix, rows))
}

fn qualified(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

#[test]
fn the_scanner_sees_the_data_model() {
    let structs = structs(TYPES);
    let route = structs
        .iter()
        .find(|s| s.name == "RouteConfig")
        .expect("RouteConfig");
    let names: Vec<&str> = route.fields.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.contains(&"match"),
        "serde rename is honoured: {names:?}"
    );
    assert!(structs.len() >= 19, "found {} structs", structs.len());
    let enums = enum_values(TYPES);
    assert!(
        enums
            .iter()
            .any(|(name, values)| name == "LbPolicy" && values.contains(&"ring_hash".to_string()))
    );
}

#[test]
fn every_field_is_documented_in_docs_config_md() {
    let mut missing = Vec::new();
    for item in structs(TYPES) {
        let Some((prefix, rows)) = section(&item.name) else {
            missing.push(format!("no `### ... ({})` section", item.name));
            continue;
        };
        for field in &item.fields {
            let row = qualified(&prefix, &field.name);
            if !rows.contains(&row) {
                missing.push(format!("{}: no row | `{row}` |", item.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/config.md is missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_field_exists() {
    let mut stale = Vec::new();
    for item in structs(TYPES) {
        let Some((prefix, rows)) = section(&item.name) else {
            continue;
        };
        for row in rows {
            if !item
                .fields
                .iter()
                .any(|field| qualified(&prefix, &field.name) == row)
            {
                stale.push(format!("{}: `{row}` is not a field", item.name));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/config.md documents fields that do not exist:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_enum_value_is_documented() {
    for (name, values) in enum_values(TYPES) {
        for value in values {
            assert!(
                DOCS.contains(&format!("`{value}`")),
                "docs/config.md does not mention {name} value `{value}`"
            );
        }
    }
}

#[test]
fn every_field_has_a_doc_comment() {
    for item in structs(TYPES) {
        for field in &item.fields {
            assert!(
                field.documented,
                "{}.{} has no doc comment in types.rs",
                item.name, field.name
            );
        }
    }
}

#[test]
fn the_full_example_is_a_valid_configuration() {
    let start = DOCS
        .find("## Full example")
        .expect("a `## Full example` section");
    let block = DOCS[start..]
        .split("```yaml\n")
        .nth(1)
        .expect("a yaml block");
    let example = block.split("\n```").next().unwrap_or_default();
    let config: Config = serde_yaml_ng::from_str(example).unwrap_or_else(|error| panic!("{error}"));
    if let Err(issues) = validate(&config) {
        panic!("the example has issues: {issues:#?}");
    }
    assert!(
        config.filters.len() >= 2 && config.clusters.len() >= 2,
        "the example shows the main sections"
    );
}
