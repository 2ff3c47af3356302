//! The JSON Schemas (draft 2020-12) of the files the program writes — `report.json`,
//! `summary.json`, `series.json` — made from the very types that are written, their doc comments
//! (with the units) as the fields' descriptions. docs/schema/ holds them; a test checks that
//! they are current and that real outputs validate against them.
//!
//! A float is a number or null: an undefined figure (the mean of an empty side), and a value
//! that is not finite (reported with `allow_non_finite`), are written as null.

use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};

use super::series::Series;
use super::summary::Summary;
use super::Report;

/// Lets every number also be null (see the module documentation).
fn numbers_may_be_null(schema: &mut Schema) {
    if schema.get("type").and_then(|t| t.as_str()) == Some("number") {
        schema.insert("type".into(), serde_json::json!(["number", "null"]));
    }
}

/// The schema of `T`, titled `title`.
fn schema_of<T: JsonSchema>(title: &str) -> Schema {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(numbers_may_be_null))
        .into_generator();
    let mut s = generator.into_root_schema_for::<T>();
    s.insert("title".into(), title.into());
    s
}

/// The files described, with their schemas: (file name in docs/schema/, schema).
pub fn schemas() -> Vec<(&'static str, Schema)> {
    vec![
        ("report.schema.json", schema_of::<Report>("dicegrad report.json")),
        ("summary.schema.json", schema_of::<Summary>("dicegrad summary.json")),
        ("series.schema.json", schema_of::<Series>("dicegrad series.json")),
    ]
}

/// A schema as the file in docs/schema/ holds it: pretty-printed, newline-terminated.
pub fn to_json(schema: &Schema) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(schema).expect("a schema is JSON");
    out.push(b'\n');
    out
}
