//! Writes the JSON Schemas of report.json, summary.json and series.json into docs/schema/:
//! `cargo run --example json_schema`. A test fails while the files there differ from these.

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    std::fs::create_dir_all(&dir)?;
    for (name, schema) in dicegrad::report::schema::schemas() {
        std::fs::write(dir.join(name), dicegrad::report::schema::to_json(&schema))?;
        println!("wrote docs/schema/{name}");
    }
    Ok(())
}
