//! `report.html`: one case on one page — its inputs and geometry, the loss as resolved, the
//! per-channel table, the reading in sentences (the same words as the terminal table's, from
//! [`crate::report::reading`]), every picture, the comparison and training figures when there are,
//! the warnings, and the command that reproduces it.

use std::fmt::Write;

use super::{escape, figure, opt, page, Cell, Figure, Row, Table};
use crate::report::comparison::Comparison;
use crate::report::reading::{self, PRECISION_COLUMNS};
use crate::report::table::{self, Numbers};
use crate::report::{InputInfo, Report};

/// How a report came to be: the command line (ready to paste) and, when it is not an `analyze`
/// run of its own, a sentence saying what wrote it.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub command: String,
    pub note: Option<String>,
    /// The data set's page, relative to this one, for a case report of a batch.
    pub index: Option<String>,
}

/// The inputs and their geometry, a row per file.
fn inputs(r: &Report) -> String {
    let row = |what: &str, i: &InputInfo, extra: String| {
        Row::new(vec![
            Cell::text(what),
            Cell::text(i.name()),
            Cell::text(i.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")),
            Cell::text(i.datatype),
            Cell::text(format!("{}×{}×{} {}", i.voxel_size[0], i.voxel_size[1], i.voxel_size[2], i.spatial_unit)),
            Cell::text(format!("{} / {}", i.scaling[0], i.scaling[1])),
            Cell::text(if i.gzip { "yes" } else { "no" }),
            Cell::text(extra),
        ])
    };
    let p = &r.inputs.prediction;
    let table = Table {
        caption: "Inputs and geometry",
        headers: ["input", "path", "dims", "datatype", "voxel size", "scl slope / inter", "gzip", "channels"]
            .map(String::from)
            .to_vec(),
        rows: vec![
            row("labels", &r.inputs.labels, String::new()),
            row("prediction", &p.file, format!("{} ({})", p.channels, p.layout)),
        ],
        sortable: false,
    };
    let mut o = table.html();
    let matrix = |i: &InputInfo| -> Vec<String> {
        i.affine.iter().map(|r| r.iter().map(|v| format!("{v:>10.4}")).collect::<Vec<_>>().join(" ")).collect()
    };
    let (l, q) = (matrix(&r.inputs.labels), matrix(&p.file));
    let mut lines = vec![format!("{:<48}{}", "labels", "prediction")];
    lines.extend(l.iter().zip(&q).map(|(a, b)| format!("{a:<48}{b}")));
    let unit = escape(r.inputs.labels.spatial_unit);
    let _ = writeln!(o, "<p>Affines (voxel to world, {unit}):</p>\n<pre>{}</pre>", lines.join("\n"));
    o
}

/// The loss: family, preset, resolved parameters, value and parts.
fn loss(r: &Report) -> String {
    let p = &r.parameters;
    let mut o = String::from("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    fact("loss", format!("{}{}", p.spec.loss, p.spec.preset.map_or(String::new(), |x| format!(" (preset {x})"))));
    fact("gradient with respect to", p.gradient_wrt.to_string());
    fact("parameters", reading::parameters_line(p));
    fact("channels in the loss", format!("{:?}", p.channels_in_loss));
    if let Some(k) = p.label {
        fact("label", k.to_string());
    }
    if let Some(k) = p.ignore_label {
        fact("ignore label", format!("{k} ({} voxels, left out of the loss and the figures)", p.ignored_voxels));
    }
    if let Some(r) = &p.regions {
        fact("regions", reading::regions_line(r, &p.channel_names));
    }
    if let Some(ce) = &p.cross_entropy {
        fact("cross-entropy", ce.to_string());
    }
    let mut value = format!("{:.6}", r.loss.value);
    if let (Some(d), Some(c)) = (r.loss.dice_part, r.loss.ce_part) {
        value += &format!(" (Dice part {d:.6}, cross-entropy part {c:.6})");
    }
    fact("loss value", value);
    o.push_str("</dl>\n");
    o
}

/// The per-channel table: the terminal table's columns and numbers ([`table::channel_table`]).
fn channels(r: &Report) -> String {
    let t = table::channel_table(r, Numbers::Rounded);
    Table {
        caption: "Per channel",
        headers: t.columns.iter().map(|c| c.name.clone()).collect(),
        rows: t.rows.into_iter().map(|row| Row::new(row.into_iter().map(Cell::text).collect())).collect(),
        sortable: false,
    }
    .html()
}

/// The reading: the two-level verdict, the level ratios, the mixed-precision figures.
fn reading(r: &Report) -> String {
    let mut o = format!("<p><strong>{}</strong></p>\n<ul>\n", escape(&reading::two_level(r)));
    for s in reading::level_ratios(r) {
        let _ = writeln!(o, "<li>{}</li>", escape(&s));
    }
    o.push_str("</ul>\n");
    let _ = writeln!(o, "<p>{}</p>", escape(&reading::mimic_weights(r)));
    let heading = reading::mixed_precision_heading(r);
    let rows = reading::mixed_precision_rows(r)
        .into_iter()
        .map(|row| Row::new(row.into_iter().map(Cell::text).collect()))
        .collect();
    o += &Table { caption: &heading, headers: PRECISION_COLUMNS.map(String::from).to_vec(), rows, sortable: false }
        .html();
    o
}

/// The compared losses and the pairwise figures.
fn comparison(r: &Report, cmp: &Comparison) -> String {
    let mut o = String::from("<h2 id=\"comparison\">Compared losses</h2>\n<ul>\n");
    for l in &cmp.losses {
        let two = if l.two_level_holds { "two-level structure holds" } else { "two-level structure does not hold" };
        let _ = writeln!(o, "<li>{}: loss {:.6}; {two}</li>", escape(&l.name.to_string()), l.value);
    }
    o.push_str("</ul>\n");
    let wrt = if r.parameters.spec.activation == crate::loss::Activation::None { "s" } else { "z" };
    let rows = cmp
        .pairs
        .iter()
        .flat_map(|p| {
            p.channels.iter().map(move |c| {
                Row::new(vec![
                    Cell::text(format!("{} vs {}", p.a, p.b)),
                    Cell::text(c.channel.to_string()),
                    Cell::text(opt(c.cosine, |v| format!("{v:.6}"))),
                    Cell::text(opt(c.scale, |v| format!("{v:.4e}"))),
                    Cell::text(format!("{:.2}%", 100.0 * c.sign_agreement)),
                ])
            })
        })
        .collect();
    let caption = format!("Gradient pairs (with respect to {wrt}): cosine, least-squares scale, sign agreement");
    o += &Table {
        caption: &caption,
        headers: ["pair", "channel", "cosine", "LS scale", "sign agree"].map(String::from).to_vec(),
        rows,
        sortable: false,
    }
    .html();
    for p in &cmp.pairs {
        let Some(eq) = &p.mimic_equivalence else { continue };
        let other = if p.a == crate::loss::LossKind::Mimic { p.b } else { p.a };
        let caption = format!(
            "{other} gradient = scale × mimic gradient + offset, exactly (w.r.t. probabilities); the offset is what \
             the mimic loss leaves out"
        );
        let rows = eq
            .iter()
            .map(|e| {
                Row::new(vec![
                    Cell::text(e.channel.to_string()),
                    Cell::text(format!("{:.4e}", e.scale)),
                    Cell::text(format!("{:.4e}", e.offset)),
                    Cell::text(format!("{:.2}%", 100.0 * e.offset_share)),
                ])
            })
            .collect();
        o += &Table {
            caption: &caption,
            headers: ["channel", "scale", "offset", "offset share"].map(String::from).to_vec(),
            rows,
            sortable: false,
        }
        .html();
    }
    o
}

/// The whole page of one case.
pub fn case_report(r: &Report, figures: &[Figure], how: &Provenance) -> String {
    let mut b = String::new();
    let title = format!("{} loss gradient: {}", r.parameters.spec.loss, r.inputs.prediction.file.name());
    let _ = writeln!(b, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        b,
        "<p>{} {}: loss {:.6}, gradient with respect to {}.</p>",
        escape(r.tool.name),
        escape(r.tool.version),
        r.loss.value,
        escape(r.parameters.gradient_wrt)
    );
    if let Some(index) = &how.index {
        let _ = writeln!(b, "<p><a href=\"{}\">← the data set's report</a></p>", escape(index));
    }
    b += "<h2 id=\"inputs\">Inputs</h2>\n";
    b += &inputs(r);
    b += "<h2 id=\"loss\">Loss</h2>\n";
    b += &loss(r);
    b += "<h2 id=\"channels\">Channels</h2>\n";
    b += &channels(r);
    b += "<h2 id=\"reading\">Reading</h2>\n";
    b += &reading(r);
    if !r.warnings.is_empty() {
        b += "<h2 id=\"warnings\">Warnings</h2>\n<ul class=\"warnings\">\n";
        for w in &r.warnings {
            let _ = writeln!(b, "<li><span class=\"badge\">Note:</span> {}</li>", escape(w));
        }
        b += "</ul>\n";
    }
    b += "<h2 id=\"pictures\">Pictures</h2>\n";
    for f in figures {
        b += &figure(f);
    }
    if let Some(cmp) = r.comparison.as_ref().filter(|c| !c.losses.is_empty()) {
        b += &comparison(r, cmp);
    }
    if let Some(t) = &r.training {
        b += "<h2 id=\"training\">Training regime</h2>\n";
        let _ = writeln!(b, "<pre>{}</pre>", escape(&crate::report::table::training_text(r, t)));
    }
    b += "<h2 id=\"reproduce\">Reproduce</h2>\n";
    if let Some(n) = &how.note {
        let _ = writeln!(b, "<p>{}</p>", escape(n));
    }
    let _ = writeln!(b, "<pre class=\"wrap\"><code>{}</code></pre>", escape(&how.command));
    b += "<footer>A self-contained page: pictures are embedded, nothing is loaded from elsewhere.</footer>\n";
    page(&title, &b, false)
}
