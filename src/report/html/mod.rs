//! The reports as single, self-contained HTML pages: `report.html` of one case ([`case`]) and
//! `index.html` of a data set ([`dataset`]). Pure functions from the report model to a string;
//! the caller draws the pictures (SVG, handed in as [`Figure`]s) and writes the file.
//!
//! A page needs nothing but itself: the style sheet is inline, the pictures are `data:` URIs of
//! their SVG (base64), there is no font, script or image from elsewhere, so that it opens from a
//! mail attachment or offline. Every string that comes from the inputs (paths, case ids, error
//! messages) goes through [`escape`]. Tables scroll sideways on a narrow screen; print drops the
//! scroll boxes and keeps figures on one page each.

pub mod case;
pub mod dataset;
pub mod over_cases;
pub mod track;

use std::fmt::Write;

/// A picture handed to a page: its file stem, its alternative text and its SVG document.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub alt: String,
    pub svg: String,
}

/// `s` with the characters that mean something in HTML (text or a quoted attribute) replaced.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                o.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// A figure: the picture as an `<img>` of a `data:` URI, its alternative text as the caption.
pub fn figure(f: &Figure) -> String {
    format!(
        "<figure id=\"fig-{}\"><img alt=\"{}\" src=\"data:image/svg+xml;base64,{}\"><figcaption>{}</figcaption></figure>\n",
        escape(&f.name),
        escape(&f.alt),
        base64(f.svg.as_bytes()),
        escape(&f.alt)
    )
}

/// One argument quoted for a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes (a single quote written `'\''`).
pub fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// A command line that can be pasted into a shell: `cd DIR && ARGS…`, each quoted.
pub fn command_line(cwd: Option<&str>, args: &[String]) -> String {
    let cmd: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    match cwd {
        Some(d) => format!("cd {} && {}", shell_quote(d), cmd.join(" ")),
        None => cmd.join(" "),
    }
}

/// A table cell: its text (escaped when written) and, for a sortable column, the number it sorts by.
pub struct Cell {
    pub text: String,
    pub sort: Option<f64>,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell { text: s.into(), sort: None }
    }
    /// A number shown as `text`, sorted by `v` (missing values sort last).
    pub fn num(v: Option<f64>, text: impl Into<String>) -> Cell {
        Cell { text: text.into(), sort: Some(v.filter(|v| v.is_finite()).unwrap_or(f64::NAN)) }
    }
}

/// A table in a sideways-scrolling box: `caption`, column headers, rows whose first cell is the
/// row's header. Cell texts are escaped; `raw_first` leaves the first cell as given (a link).
pub struct Table<'a> {
    pub caption: &'a str,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
    /// Column headers become buttons that sort the rows (with the page's script).
    pub sortable: bool,
}

/// A table row: cells, a class (`flag` for a flagged row) and raw HTML for the first cell.
pub struct Row {
    pub cells: Vec<Cell>,
    pub class: Option<&'static str>,
    pub first_html: Option<String>,
}

impl Row {
    pub fn new(cells: Vec<Cell>) -> Row {
        Row { cells, class: None, first_html: None }
    }
}

impl Table<'_> {
    pub fn html(&self) -> String {
        let mut o = String::new();
        let class = if self.sortable { " class=\"sortable\"" } else { "" };
        let _ = write!(o, "<div class=\"scroll\"><table{class}><caption>{}</caption><thead><tr>", escape(self.caption));
        for h in &self.headers {
            if self.sortable {
                let _ = write!(o, "<th scope=\"col\"><button type=\"button\">{}</button></th>", escape(h));
            } else {
                let _ = write!(o, "<th scope=\"col\">{}</th>", escape(h));
            }
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            let class = row.class.map_or(String::new(), |c| format!(" class=\"{c}\""));
            let _ = write!(o, "<tr{class}>");
            for (i, c) in row.cells.iter().enumerate() {
                let (tag, scope) = if i == 0 { ("th", " scope=\"row\"") } else { ("td", "") };
                let sort = c.sort.map_or(String::new(), |v| format!(" data-v=\"{v:e}\""));
                let text = match (&row.first_html, i) {
                    (Some(h), 0) => h.clone(),
                    _ => escape(&c.text),
                };
                let _ = write!(o, "<{tag}{scope}{sort}>{text}</{tag}>");
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody></table></div>\n");
        o
    }
}

/// The facts a page gives of a run's losses, (name, value): the loss and its preset, the compared
/// losses, each loss as resolved for each count of prediction channels, the loss scale.
pub fn loss_facts(
    p: &crate::report::summary::RunParameters,
    resolved: &[crate::report::summary::ResolvedLosses],
) -> Vec<(String, String)> {
    use crate::report::reading::{significant, spec_line};
    let mut v = Vec::new();
    let preset = p.loss.preset.map_or(String::new(), |x| format!(" (preset {x})"));
    v.push(("loss".to_string(), format!("{}{preset}", p.loss.kind())));
    if !p.compare.is_empty() {
        v.push(("compared with".to_string(), p.compare.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")));
    }
    for r in resolved {
        let c = r.prediction_channels;
        for spec in &r.losses {
            let n = if spec.include_background || c == 1 { c } else { c - 1 };
            let reduction = spec.loss.family().reduction().describe(n);
            let name = format!("{} with {c} channel{}", spec.loss, if c == 1 { "" } else { "s" });
            v.push((name, spec_line(spec, reduction)));
        }
    }
    v.push(("loss scale S".to_string(), significant(f64::from(p.loss_scale))));
    let classes = &p.classes;
    match (&classes.regions, &classes.names) {
        (Some(r), names) => v.push(("regions".to_string(), crate::report::reading::regions_line(r, names))),
        (None, Some(names)) => v.push(("class names".to_string(), names.join(", "))),
        (None, None) => {}
    }
    if let Some(k) = classes.ignore_label {
        v.push(("ignore label".to_string(), format!("{k} (its voxels left out of the loss and every figure)")));
    }
    v
}

/// An optional number as text, `–` when missing.
pub fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

/// A number in scientific notation with 4 decimals.
pub fn sci(v: f64) -> String {
    format!("{v:.4e}")
}

/// The style sheet of every page: readable on a phone (the tables scroll, the pictures shrink to
/// the width), dark text on white (contrast above 7:1), and printable.
const STYLE: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1a1a1a; background: #fff;
  margin: 0 auto; padding: 0.8rem; max-width: 84rem; line-height: 1.45; }
h1 { font-size: 1.5rem; margin: 0.4rem 0; overflow-wrap: anywhere; } h2 { font-size: 1.2rem; margin-top: 1.6rem; border-bottom: 1px solid #ccc; }
code, pre, .mono { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f4f4f4; border: 1px solid #ddd; padding: 0.5rem; overflow-x: auto; white-space: pre; }
pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; margin: 0.6rem 0; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 0.2rem 0; caption-side: top; position: sticky; left: 0;
  max-width: calc(100vw - 2rem); white-space: normal; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.45rem; text-align: right; white-space: nowrap; }
th[scope=row], td.text { text-align: left; }
thead th { background: #e8edf3; }
th button { font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort=ascending] button::after { content: ' ▲'; } th[aria-sort=descending] button::after { content: ' ▼'; }
tr.flag th, tr.flag td { background: #fff0c2; }
table.sortable td:nth-child(3) { white-space: normal; min-width: 18rem; text-align: left; }
tr.failed th, tr.failed td { background: #f3f3f3; color: #444; }
.badge { font-weight: 700; }
a { color: #0645ad; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9rem; color: #333; }
ul.warnings li { margin: 0.2rem 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 0.8rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 2rem; font-size: 0.85rem; color: #444; }
@media (max-width: 40rem) { dl.facts { grid-template-columns: 1fr; } dl.facts dd { margin-left: 0.8rem; } }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  .scroll { overflow: visible; } th, td { white-space: normal; }
  figure { break-inside: avoid; } h2 { break-after: avoid; }
  th button { pointer-events: none; } a { color: inherit; }
}
";

/// A few lines that sort a table of class `sortable` when a column header is clicked: by the
/// cells' `data-v` numbers when they have them (missing values last), else by their text.
const SORT_SCRIPT: &str = "
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    th.querySelector('button').addEventListener('click', function () {
      var up = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (r) {
        var c = r.cells[col], v = c.getAttribute('data-v');
        return v === null ? c.textContent : parseFloat(v);
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x === 'number' && typeof y === 'number') {
          if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
          return up ? x - y : y - x;
        }
        return up ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
";

/// A whole page: `title` (escaped) and `body` (HTML), with the sort script when `sortable`.
pub fn page(title: &str, body: &str, sortable: bool) -> String {
    let script = if sortable { format!("<script>{SORT_SCRIPT}</script>\n") } else { String::new() };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n{script}</body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        // RFC 4648, section 10
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn shell_quote_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("samples/x.nii.gz"), "samples/x.nii.gz");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(command_line(Some("/w d"), &["dicegrad".into(), "x;y".into()]), "cd '/w d' && dicegrad 'x;y'");
    }
}
