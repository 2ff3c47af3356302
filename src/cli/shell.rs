//! `dicegrad completions SHELL` and `dicegrad man`: the shell's completion script and the manual
//! page, both made from the clap definitions of the command line, written to stdout.

use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

use dicegrad::{Error, Result};

use super::{print_out, Cli};

/// A shell that completions are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {}

/// Writes the completion script of `a.shell` to stdout.
pub fn completions(a: CompletionsArgs) -> Result<ExitCode> {
    use clap_complete::Shell as S;
    let shell = match a.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dicegrad", &mut out);
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the manual page (roff, section 1) of the program and its subcommands to stdout.
pub fn man(_: ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    let mut out = Vec::new();
    let page = |e: std::io::Error| Error::Write { path: "<manual page>".into(), source: e };
    // the program's sections, but not the list of subcommands: that names a page per subcommand,
    // and here they are sections of this one
    let top = clap_mangen::Man::new(command.clone());
    top.render_title(&mut out).map_err(page)?;
    top.render_name_section(&mut out).map_err(page)?;
    top.render_synopsis_section(&mut out).map_err(page)?;
    top.render_description_section(&mut out).map_err(page)?;
    top.render_options_section(&mut out).map_err(page)?;
    // each subcommand as a section of the one page, with its options
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dicegrad {}", sub.get_name());
        let sub_name = name.clone();
        let sub = sub.clone().name(name.clone()).bin_name(name);
        let mut part = Vec::new();
        let man = clap_mangen::Man::new(sub);
        man.render_name_section(&mut part).map_err(page)?;
        man.render_synopsis_section(&mut part).map_err(page)?;
        man.render_description_section(&mut part).map_err(page)?;
        man.render_options_section(&mut part).map_err(page)?;
        out.extend(format!(".SH \"{}\"\n", sub_title(&sub_name)).bytes());
        out.extend(subsection(&part));
    }
    top.render_version_section(&mut out).map_err(page)?;
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The heading of a subcommand's section.
fn sub_title(name: &str) -> String {
    name.to_uppercase()
}

/// A subcommand's sections as subsections of its section: `.SH X` becomes `.SS X`, the heading
/// of the name section is dropped (its line stays).
fn subsection(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(".SH ") {
            if rest == "NAME" {
                continue;
            }
            out.push_str(".SS ");
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out.into_bytes()
}
