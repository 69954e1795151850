//! `gen-docs DIR`: write semctl-helper's man pages and shell completions under DIR, laid
//! out as under `share/` (`man/man1/`, `bash-completion/completions/`,
//! `zsh/site-functions/`, `fish/vendor_completions.d/`), for `make install` to copy.
//!
//! It compiles the helper's own `cli.rs`, so the pages always say what the helper parses;
//! the helper, which every sem_* call starts, links none of this (see Cargo.toml).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap_complete::Shell;
use clap_mangen::Man;

// cli.rs builds the parser the helper runs; only `command()` is used here.
#[allow(dead_code)]
#[path = "../../helper/src/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "../../helper/src/exit_codes.rs"]
mod exit_codes;

const BIN: &str = "semctl-helper";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-docs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        anyhow::bail!("usage: gen-docs DIR");
    };
    let out = PathBuf::from(out);
    // Write everything beside DIR first, then swap it in: a failed run leaves DIR as it
    // was, and a subcommand removed from cli.rs leaves no stale page behind.
    let mut tmp = out.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    remove_dir(&tmp)?;
    let written = generate(&tmp);
    if written.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    written?;
    remove_dir(&out)?;
    fs::rename(&tmp, &out).with_context(|| format!("cannot rename {tmp:?} to {out:?}"))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {dir:?}"))
        }
        _ => Ok(()),
    }
}

fn generate(dir: &Path) -> Result<()> {
    let mut cmd = cli::command();
    // build() fills in what the pages show: each subcommand's display name
    // ("semctl-helper-run", the page's name), usage and the automatic --help/--version.
    cmd.build();

    let man1 = dir.join("man/man1");
    create(&man1, format!("{BIN}.1"), |w| main_page(&cmd, w))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // A subcommand has no version of its own: name the helper's in the footer.
        let man = Man::new(sub.clone())
            .source(format!("{BIN} {}", cmd.get_version().unwrap_or_default()));
        create(&man1, man.get_filename(), |w| {
            man.render(w)?;
            see_also(w)
        })?;
    }

    for (shell, to, file) in [
        (Shell::Bash, "bash-completion/completions", BIN.to_owned()),
        (Shell::Zsh, "zsh/site-functions", format!("_{BIN}")),
        (
            Shell::Fish,
            "fish/vendor_completions.d",
            format!("{BIN}.fish"),
        ),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), BIN, &mut script);
        if shell == Shell::Bash {
            script = fix_bash_labels(&script)?;
        }
        create(&dir.join(to), file, |w| w.write_all(&script))?;
    }
    Ok(())
}

/// clap_complete's bash script escapes a hyphenated program name one way in the loop that
/// finds the subcommand (`semctl__helper__subcmd__run`) and another in the case labels
/// that complete its options (`semctl__subcmd__helper__subcmd__run`), so no subcommand's
/// options ever complete (clap-rs/clap#6421, open in clap_complete 4.6.12). Spell the
/// labels as the loop does; once clap_complete is fixed, this changes nothing.
fn fix_bash_labels(script: &[u8]) -> Result<Vec<u8>> {
    let script = std::str::from_utf8(script).context("clap_complete wrote non-UTF-8 bash")?;
    let wrong = format!("{}__subcmd__", BIN.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", BIN.replace('-', "__"));
    Ok(script.replace(&wrong, &right).into_bytes())
}

fn create(
    dir: &Path,
    file: String,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
    let path = dir.join(file);
    let mut w = std::io::BufWriter::new(
        fs::File::create(&path).with_context(|| format!("cannot create {path:?}"))?,
    );
    write(&mut w)
        .and_then(|()| w.flush())
        .with_context(|| format!("cannot write {path:?}"))
}

/// The main page: clap_mangen's sections, with the exit codes as an EXIT STATUS list
/// instead of the after-help text run together into one paragraph.
fn main_page(cmd: &clap::Command, w: &mut dyn Write) -> std::io::Result<()> {
    let man = Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    exit_status(w)?;
    man.render_version_section(w)
}

/// EXIT STATUS from exit_codes::HELP: "  N  meaning" lines become tagged paragraphs
/// (with the lines indented under them, which continue the meaning), the rest plain
/// paragraphs.
fn exit_status(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    let mut items: Vec<(Option<String>, String)> = Vec::new();
    for raw in exit_codes::HELP.lines().skip(1) {
        let line = raw.trim();
        match line.split_once("  ") {
            Some((code, meaning)) if code.parse::<u8>().is_ok() => {
                items.push((Some(code.to_owned()), meaning.trim().to_owned()))
            }
            // A deeper indent than a code's continues the meaning above it.
            _ if raw.starts_with("     ") && matches!(items.last(), Some((Some(_), _))) => {
                let last = items.last_mut().expect("matched above");
                last.1.push(' ');
                last.1.push_str(line);
            }
            _ if !line.is_empty() => items.push((None, line.to_owned())),
            _ => {}
        }
    }
    for (code, text) in items {
        match code {
            Some(code) => writeln!(w, ".TP\n.B {code}\n{}", roff_text(&text))?,
            None => writeln!(w, ".PP\n{}", roff_text(&text))?,
        }
    }
    Ok(())
}

fn see_also(w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        w,
        ".SH \"SEE ALSO\"\n.BR {BIN} (1)\nfor the exit codes and the other commands."
    )
}

/// `s` as a line of roff text: backslashes escaped, and no leading dot or quote that
/// would make it a request.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e");
    if s.starts_with(['.', '\'']) {
        format!("\\&{s}")
    } else {
        s
    }
}
