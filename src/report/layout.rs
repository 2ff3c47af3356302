//! Text laid out for a reader: lines and tables, rendered for a terminal of a given width (tables
//! drop their least needed columns, lines wrap at spaces), with colour on the lines that carry a
//! verdict or a warning, or as Markdown. The terminal report ([`super::table`]) is made of these
//! blocks, so that every rendering shows the same cells.

use std::fmt::Write;

/// What a line says, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// A verdict that holds.
    Good,
    /// A verdict that does not hold, or a warning.
    Warn,
}

/// How a column's cells are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its heading, alignment, and how much it is needed — 0: always shown; on a narrow
/// terminal the columns with the largest number go first.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub align: Align,
    pub drop_rank: u8,
}

impl Column {
    /// A right-aligned column.
    pub fn right(name: &str, drop_rank: u8) -> Column {
        Column { name: name.to_string(), align: Align::Right, drop_rank }
    }

    /// A left-aligned column.
    pub fn left(name: &str, drop_rank: u8) -> Column {
        Column { name: name.to_string(), align: Align::Left, drop_rank }
    }
}

/// Rows of cells under columns.
#[derive(Clone, Debug)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

/// A part of a text report.
#[derive(Clone, Debug)]
pub enum Block {
    Line(String, Tone),
    Blank,
    Table(Table),
}

/// How a text report is rendered.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The width to fit (characters); None: every column, lines unbroken.
    pub width: Option<usize>,
    /// ANSI colour on verdicts and warnings.
    pub colour: bool,
    /// Said after a table that left columns out, e.g. how to see them all.
    pub hint: Option<String>,
}

/// Spaces between two columns.
const GAP: &str = "  ";

/// Width of `s` on a terminal, in characters.
fn chars(s: &str) -> usize {
    s.chars().count()
}

impl Table {
    /// The width of each column: its widest cell or heading.
    fn widths(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows.iter().map(|r| r.get(i).map_or(0, |s| chars(s))).max().unwrap_or(0).max(chars(&c.name))
            })
            .collect()
    }

    /// The columns shown within `width` (all without one): the least needed go first, until the
    /// table fits or only the columns always shown are left.
    fn shown(&self, width: Option<usize>) -> Vec<usize> {
        let widths = self.widths();
        let mut shown: Vec<usize> = (0..self.columns.len()).collect();
        let Some(width) = width else { return shown };
        let total = |s: &[usize]| s.iter().map(|&i| widths[i]).sum::<usize>() + GAP.len() * s.len().saturating_sub(1);
        while total(&shown) > width {
            let worst = shown.iter().copied().filter(|&i| self.columns[i].drop_rank > 0).max_by_key(|&i| {
                // the largest rank; among equals, the rightmost
                (self.columns[i].drop_rank, i)
            });
            match worst {
                Some(i) => shown.retain(|&j| j != i),
                None => break,
            }
        }
        shown
    }

    fn render(&self, layout: &Layout, o: &mut String) {
        let widths = self.widths();
        let shown = self.shown(layout.width);
        let cell = |i: usize, s: &str| match self.columns[i].align {
            Align::Right => format!("{s:>w$}", w = widths[i]),
            Align::Left => format!("{s:<w$}", w = widths[i]),
        };
        let line = |cells: Vec<String>| cells.join(GAP).trim_end().to_string();
        let _ = writeln!(o, "{}", line(shown.iter().map(|&i| cell(i, &self.columns[i].name)).collect()));
        for r in &self.rows {
            let _ = writeln!(o, "{}", line(shown.iter().map(|&i| cell(i, r.get(i).map_or("", |s| s))).collect()));
        }
        if shown.len() < self.columns.len() {
            let left: Vec<&str> =
                (0..self.columns.len()).filter(|i| !shown.contains(i)).map(|i| self.columns[i].name.as_str()).collect();
            let mut note = format!(
                "({} left out to fit {} characters: {}",
                if left.len() == 1 { "1 column".to_string() } else { format!("{} columns", left.len()) },
                layout.width.unwrap_or(0),
                left.join(", ")
            );
            if let Some(h) = &layout.hint {
                note += "; ";
                note += h;
            }
            note.push(')');
            wrap(&note, layout.width, o);
        }
    }

    /// The table in Markdown (GitHub's pipe tables): every column, `|` in cells escaped.
    fn markdown(&self, o: &mut String) {
        let esc = |s: &str| s.replace('|', "\\|");
        let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
        let _ = writeln!(o, "{}", row(self.columns.iter().map(|c| esc(&c.name)).collect()));
        let rule: Vec<String> =
            self.columns.iter().map(|c| if c.align == Align::Right { "---:" } else { ":---" }.to_string()).collect();
        let _ = writeln!(o, "{}", row(rule));
        for r in &self.rows {
            let _ = writeln!(o, "{}", row(r.iter().map(|s| esc(s)).collect()));
        }
    }
}

/// Appends `text` broken at spaces into lines of at most `width` characters (a word longer than
/// the width stays whole); continuation lines are indented as far as the text after a leading
/// `key  ` (a word and two spaces or more), else by two spaces.
fn wrap(text: &str, width: Option<usize>, o: &mut String) {
    let Some(width) = width.filter(|&w| chars(text) > w) else {
        let _ = writeln!(o, "{text}");
        return;
    };
    let indent = hanging_indent(text);
    let mut line = String::new();
    let mut len = 0;
    for (gap, word) in gapped_words(text) {
        let wl = chars(word);
        // a break right after the key, or the indent, would gain nothing
        if len > indent && len + gap + wl > width {
            let _ = writeln!(o, "{}", line.trim_end());
            line = " ".repeat(indent);
            len = indent;
        } else {
            line.push_str(&" ".repeat(gap));
            len += gap;
        }
        line.push_str(word);
        len += wl;
    }
    let _ = writeln!(o, "{}", line.trim_end());
}

/// The words of `text`, each with the number of spaces before it.
fn gapped_words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let gap = rest.len() - rest.trim_start_matches(' ').len();
        rest = &rest[gap..];
        let end = rest.find(' ').unwrap_or(rest.len());
        if end > 0 || gap > 0 {
            out.push((gap, &rest[..end]));
        }
        rest = &rest[end..];
    }
    out
}

/// The indent of a wrapped line's continuation (see [`wrap`]).
fn hanging_indent(text: &str) -> usize {
    let key = text.chars().take_while(|c| !c.is_whitespace()).count();
    let gap = text.chars().skip(key).take_while(|&c| c == ' ').count();
    if key > 0 && gap >= 2 && key + gap <= 16 {
        key + gap
    } else {
        2
    }
}

/// The ANSI style of a tone.
fn paint(tone: Tone, text: &str) -> String {
    match tone {
        Tone::Plain => text.to_string(),
        Tone::Good => format!("\x1b[1;32m{text}\x1b[0m"),
        Tone::Warn => format!("\x1b[1;33m{text}\x1b[0m"),
    }
}

/// The blocks as text for a terminal.
pub fn render(blocks: &[Block], layout: &Layout) -> String {
    let mut o = String::new();
    for b in blocks {
        match b {
            Block::Line(text, tone) => {
                let mut part = String::new();
                wrap(text, layout.width, &mut part);
                if layout.colour && *tone != Tone::Plain {
                    for l in part.lines() {
                        let _ = writeln!(o, "{}", paint(*tone, l));
                    }
                } else {
                    o.push_str(&part);
                }
            }
            Block::Blank => o.push('\n'),
            Block::Table(t) => t.render(layout, &mut o),
        }
    }
    o
}

/// The blocks as Markdown: lines as paragraphs, tables as pipe tables with every column.
pub fn markdown(blocks: &[Block]) -> String {
    let mut o = String::new();
    let mut last_blank = true;
    for b in blocks {
        match b {
            Block::Line(text, _) => {
                // consecutive lines stay one paragraph, each on a line of its own
                let _ = writeln!(o, "{}  ", text.replace('|', "\\|"));
                last_blank = false;
            }
            Block::Blank => {
                if !last_blank {
                    o.push('\n');
                }
                last_blank = true;
            }
            Block::Table(t) => {
                if !last_blank {
                    o.push('\n');
                }
                t.markdown(&mut o);
                o.push('\n');
                last_blank = true;
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec![Column::right("ch", 0), Column::right("wide column", 2), Column::right("value", 1)],
            rows: vec![
                vec!["0".into(), "aaaaaaaaaaaaaaaa".into(), "1.5".into()],
                vec!["1".into(), "b".into(), "22.25".into()],
            ],
        }
    }

    #[test]
    fn a_table_drops_its_least_needed_columns_to_fit_and_says_which() {
        let t = vec![Block::Table(table())];
        let full = render(&t, &Layout::default());
        assert_eq!(full.lines().next().unwrap(), "ch       wide column  value");
        assert_eq!(full.lines().count(), 3);
        // "ch" 2 + 2 + "value" 5 = 9 fits in 10; with the wide column 27 does not
        let narrow = render(&t, &Layout { width: Some(10), colour: false, hint: Some("all: wide".into()) });
        let lines: Vec<&str> = narrow.lines().collect();
        assert_eq!(lines[..3], ["ch  value", " 0    1.5", " 1  22.25"]);
        let note = lines[3..].join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(note, "(1 column left out to fit 10 characters: wide column; all: wide)");
        for l in &lines[..3] {
            assert!(l.chars().count() <= 10, "{l}");
        }
        // the columns always shown stay even when nothing else fits
        let tiny = render(&t, &Layout { width: Some(3), ..Layout::default() });
        assert!(tiny.starts_with("ch\n 0\n 1\n"), "{tiny}");
    }

    #[test]
    fn lines_wrap_at_spaces_with_a_hanging_indent_and_words_stay_whole() {
        let mut o = String::new();
        wrap("labels      /a/very/long/path/name.nii.gz  (32×32×20, uint8)", Some(30), &mut o);
        assert_eq!(o, "labels      /a/very/long/path/name.nii.gz\n            (32×32×20, uint8)\n");
        let mut o = String::new();
        wrap("note: one two three four five", Some(12), &mut o);
        assert_eq!(o, "note: one\n  two three\n  four five\n");
        for l in o.lines() {
            assert!(l.chars().count() <= 12);
        }
    }

    #[test]
    fn colour_marks_verdicts_and_warnings_only_when_asked() {
        let b = vec![Block::Line("holds".into(), Tone::Good), Block::Line("plain".into(), Tone::Plain)];
        assert_eq!(render(&b, &Layout::default()), "holds\nplain\n");
        let c = render(&b, &Layout { colour: true, ..Layout::default() });
        assert_eq!(c, "\x1b[1;32mholds\x1b[0m\nplain\n");
    }

    #[test]
    fn markdown_holds_every_column_and_escapes_pipes() {
        let mut t = table();
        t.rows[1][1] = "a|b".into();
        let md = markdown(&[Block::Line("title".into(), Tone::Plain), Block::Table(t)]);
        assert_eq!(
            md,
            "title  \n\n| ch | wide column | value |\n| ---: | ---: | ---: |\n| 0 | aaaaaaaaaaaaaaaa | 1.5 |\n| 1 | a\\|b | 22.25 |\n\n"
        );
    }
}
