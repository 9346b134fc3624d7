//! The man pages, rendered from the clap definitions and the exit codes.

use super::args::Cli;
use super::exit::ExitCode;

/// Sections clap_mangen does not write: exit status, environment, see also.
fn man_extra(pages: &[String], this: &str) -> String {
    let esc = |t: &str| t.replace('\\', "\\\\").replace('-', "\\-");
    let mut r = String::from(".SH \"EXIT STATUS\"\n");
    for c in ExitCode::ALL {
        r.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            c.code(),
            esc(c.meaning())
        ));
    }
    r.push_str(".SH ENVIRONMENT\n.TP\n\\fBNATS_STREAMING_ENCRYPTION_KEY\\fR\n");
    r.push_str(&esc("A key, as the server reads it: when set and non-empty. inspect, decrypt and rekey (as an old key) add it to the keys given; encrypt counts it as its one key; verify uses it instead of the configured key when encryption is on (it does not turn encryption on by itself)."));
    r.push_str("\n.SH \"SEE ALSO\"\n");
    let refs: Vec<String> = pages
        .iter()
        .filter(|p| p.as_str() != this)
        .map(|p| format!("\\fB{}\\fR(1)", esc(p)))
        .collect();
    r.push_str(&refs.join(", "));
    r.push_str("\n.PP\nREADME.md (column meanings, JSON schemas, failure modes), docs/FORMAT.md (the on-disk format).\n");
    r
}

/// The man pages, rendered from the clap definitions: `stanctl.1` and one
/// page per subcommand (`stanctl-store-verify.1`, ...), as (file name, bytes).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    // The exit codes get their own section; no "EXTRA" copy of --help's.
    let cmd = Cli::command().after_help(None::<&'static str>);
    let mut commands = vec![("stanctl".to_string(), cmd.clone())];
    for group in cmd.get_subcommands() {
        for sub in group.get_subcommands() {
            let name = format!("stanctl-{}-{}", group.get_name(), sub.get_name());
            let bin = format!("stanctl {} {}", group.get_name(), sub.get_name());
            let sub = sub
                .clone()
                .name(name.clone())
                .bin_name(bin)
                .after_help(None::<&'static str>);
            commands.push((name, sub));
        }
    }
    let names: Vec<String> = commands.iter().map(|(n, _)| n.clone()).collect();
    commands
        .into_iter()
        .map(|(name, c)| {
            let mut m = Vec::new();
            clap_mangen::Man::new(c)
                .render(&mut m)
                .expect("render to memory");
            m.extend_from_slice(man_extra(&names, &name).as_bytes());
            (format!("{name}.1"), m)
        })
        .collect()
}
