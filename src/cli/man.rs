//! The man pages, rendered from the clap definitions and the exit codes.

use super::args::Cli;
use super::exit;

fn esc(t: &str) -> String {
    t.replace('\\', "\\\\").replace('-', "\\-")
}

/// SYNOPSIS with every option's value (clap_mangen shows only the flag).
fn synopsis(cmd: &clap::Command, bin: &str) -> String {
    let mut s = format!(".SH SYNOPSIS\n\\fB{}\\fR", esc(bin));
    let mut positionals = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let id = a.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let value = a
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.to_string());
        if a.is_positional() {
            positionals.push(format!(
                "\\fI{}\\fR",
                esc(&value.unwrap_or_else(|| id.to_uppercase()))
            ));
            continue;
        }
        let name = match (a.get_short(), a.get_long()) {
            (Some(c), Some(l)) => format!("\\fB\\-{c}\\fR|\\fB\\-\\-{}\\fR", esc(l)),
            (None, Some(l)) => format!("\\fB\\-\\-{}\\fR", esc(l)),
            (Some(c), None) => format!("\\fB\\-{c}\\fR"),
            (None, None) => continue,
        };
        let takes = a.get_action().takes_values();
        let val = match (takes, value) {
            (true, Some(v)) => format!(" \\fI{}\\fR", esc(&v)),
            (true, None) => format!(" \\fI{}\\fR", esc(&id.to_uppercase())),
            _ => String::new(),
        };
        let many = matches!(a.get_action(), clap::ArgAction::Append);
        let required = a.is_required_set();
        let item = format!("{name}{val}");
        s.push(' ');
        s.push_str(&match (required, many) {
            (true, _) => item,
            (false, true) => format!("[{item}]..."),
            (false, false) => format!("[{item}]"),
        });
    }
    for p in positionals {
        s.push(' ');
        s.push_str(&p);
    }
    s.push('\n');
    s
}

/// Examples per page: (what it does, the command line).
fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "stanctl" => &[
            ("What is in a store, with the keys you have:", "stanctl store inspect /data/stan -k /etc/stan/key"),
            ("Will the server start and deliver everything?", "stanctl store verify /data/stan -k /etc/stan/key"),
            ("Install bash completions:", "stanctl completions bash > ~/.local/share/bash-completion/completions/stanctl"),
        ],
        "stanctl-store-inspect" => &[
            ("Channels, payload classes and what each key opens:", "stanctl store inspect /data/stan -k old.key -k new.key"),
            ("One row per slice, as JSON:", "stanctl store inspect /data/stan --by-slice --json"),
        ],
        "stanctl-store-verify" => &[
            ("Before starting the server with encryption on:", "stanctl store verify /data/stan -k /etc/stan/key"),
            ("The key from a secret store, on standard input:", "vault read -field=key secret/stan | stanctl store verify /data/stan -k -"),
            ("One line per message, as the server would deliver it:", "stanctl store verify /data/stan --no-encrypt --list"),
        ],
        "stanctl-store-encrypt" => &[
            ("See what would change, then encrypt in place:", "stanctl store encrypt /data/stan -k /etc/stan/key --cipher AES -n\nstanctl store encrypt /data/stan -k /etc/stan/key --cipher AES"),
            ("Write an encrypted copy and leave the store as it is:", "stanctl store encrypt /data/stan -k /etc/stan/key --cipher AES -o /data/stan-encrypted"),
        ],
        "stanctl-store-decrypt" => &[
            ("Decrypt envelopes written under two keys:", "stanctl store decrypt /data/stan -k old.key -k new.key"),
        ],
        "stanctl-store-rekey" => &[
            ("Move every envelope from the old key to the new one:", "stanctl store rekey /data/stan -k old.key --new-key-file new.key"),
            ("And to ChaCha20-Poly1305 on the way:", "stanctl store rekey /data/stan -k old.key --new-key-file new.key --cipher CHACHA"),
            ("Change only the cipher (the same key as old and new key):", "stanctl store rekey /data/stan -k /etc/stan/key --new-key-file /etc/stan/key --cipher AES"),
            ("Read the store once (needs free space for the new files of every slice at once; see what it needs first):", "stanctl store rekey /data/stan -k old.key --new-key-file new.key --one-pass -n\nstanctl store rekey /data/stan -k old.key --new-key-file new.key --one-pass"),
        ],
        "stanctl-raft-verify" => &[
            ("What the node's log store returns for every entry:", "stanctl raft verify /data/node/test-cluster/raft.log -k /etc/stan/key"),
            ("The same with the server's configuration file (its key, encryption on or off):", "stanctl raft verify /data/node/test-cluster/raft.log --config /etc/nats-streaming/nats-streaming.conf"),
        ],
        "stanctl-raft-encrypt" => &[
            ("Encrypt a stand-alone log's command entries:", "stanctl raft encrypt raft.log -k /etc/stan/key --cipher AES"),
            ("With the key and cipher of the server's configuration file:", "stanctl raft encrypt raft.log --config /etc/nats-streaming/nats-streaming.conf"),
        ],
        "stanctl-raft-decrypt" => &[
            ("Decrypt a stand-alone log into a new file:", "stanctl raft decrypt raft.log -k old.key --output raft.plain.log"),
        ],
        "stanctl-raft-rekey" => &[
            ("Move a stand-alone log to a new key:", "stanctl raft rekey raft.log -k old.key --new-key-file new.key"),
            ("Change only the cipher of its envelopes:", "stanctl raft rekey raft.log -k /etc/stan/key --new-key-file /etc/stan/key --cipher AES"),
        ],
        _ => &[],
    }
}

/// Sections clap_mangen does not write: examples, exit status,
/// environment, see also.
fn man_extra(pages: &[String], this: &str, command: &str) -> String {
    let mut r = String::new();
    let ex = examples(this);
    if !ex.is_empty() {
        r.push_str(".SH EXAMPLES\n");
        for (what, cmd) in ex {
            r.push_str(&format!(
                ".PP\n{}\n.PP\n.nf\n.RS 4\n{}\n.RE\n.fi\n",
                esc(what),
                esc(cmd)
            ));
        }
    }
    r.push_str(".SH \"EXIT STATUS\"\n");
    for c in exit::codes_of(command) {
        r.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            c.code(),
            esc(c.meaning())
        ));
    }
    r.push_str(".SH ENVIRONMENT\n.TP\n\\fBNATS_STREAMING_ENCRYPTION_KEY\\fR\n");
    r.push_str(&esc("A key, as the server reads it: when set and non-empty. inspect, decrypt and rekey (as an old key) add it to the keys given; encrypt counts it as its one key (it replaces the --config file's encryption_key); verify uses it instead of the configured key (--key-file, --key or the --config file's encryption_key) when encryption is on (it does not turn encryption on by itself)."));
    r.push_str("\n.TP\n\\fBCOLUMNS\\fR\n");
    r.push_str(&esc(
        "The width tables and text are fitted to when stdout is not a terminal.",
    ));
    r.push_str("\n.SH \"SEE ALSO\"\n");
    let refs: Vec<String> = pages
        .iter()
        .filter(|p| p.as_str() != this)
        .map(|p| format!("\\fB{}\\fR(1)", esc(p)))
        .collect();
    r.push_str(&refs.join(", "));
    r.push('\n');
    r
}

/// The COMMANDS section of stanctl(1): the pages that exist.
fn commands_section(cmd: &clap::Command) -> String {
    let mut r = String::from(".SH COMMANDS\n");
    for group in cmd.get_subcommands() {
        let subs: Vec<&clap::Command> = group.get_subcommands().collect();
        if subs.is_empty() {
            r.push_str(&format!(
                ".TP\n\\fBstanctl {}\\fR\n{}\n",
                esc(group.get_name()),
                esc(&group.get_about().map(|a| a.to_string()).unwrap_or_default())
            ));
        }
        for sub in subs {
            r.push_str(&format!(
                ".TP\n\\fBstanctl {} {}\\fR\n{} See \\fBstanctl\\-{}\\-{}\\fR(1).\n",
                esc(group.get_name()),
                esc(sub.get_name()),
                esc(&sub.get_about().map(|a| a.to_string()).unwrap_or_default()),
                esc(group.get_name()),
                esc(sub.get_name())
            ));
        }
    }
    r
}

fn render(c: clap::Command, bin: &str, top: bool) -> Vec<u8> {
    let man = clap_mangen::Man::new(c.clone());
    let mut m = Vec::new();
    man.render_title(&mut m).expect("render to memory");
    man.render_name_section(&mut m).expect("render to memory");
    m.extend_from_slice(synopsis(&c, bin).as_bytes());
    man.render_description_section(&mut m)
        .expect("render to memory");
    man.render_options_section(&mut m)
        .expect("render to memory");
    if top {
        m.extend_from_slice(commands_section(&c).as_bytes());
    }
    man.render_version_section(&mut m)
        .expect("render to memory");
    m
}

/// The man pages, rendered from the clap definitions: `stanctl.1` and one
/// page per store subcommand (`stanctl-store-verify.1`, ...), as (file
/// name, bytes).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    // The exit codes get their own section; no "EXTRA" copy of --help's.
    let cmd = Cli::command().after_help(None::<&'static str>);
    let mut pages = vec![(
        "stanctl".to_string(),
        "stanctl".to_string(),
        "stanctl".to_string(),
        cmd.clone(),
    )];
    for group in cmd.get_subcommands() {
        for sub in group.get_subcommands() {
            let name = format!("stanctl-{}-{}", group.get_name(), sub.get_name());
            let bin = format!("stanctl {} {}", group.get_name(), sub.get_name());
            let sub = sub
                .clone()
                .name(name.clone())
                .bin_name(bin.clone())
                .version(env!("CARGO_PKG_VERSION"))
                .after_help(None::<&'static str>);
            pages.push((name, bin, sub.get_name().to_string(), sub));
        }
    }
    let names: Vec<String> = pages.iter().map(|p| p.0.clone()).collect();
    pages
        .into_iter()
        .map(|(name, bin, _, c)| {
            let command = name.rsplit('-').next().unwrap_or("stanctl").to_string();
            let command = if name == "stanctl" {
                "stanctl".into()
            } else {
                command
            };
            let mut m = render(c, &bin, name == "stanctl");
            m.extend_from_slice(man_extra(&names, &name, &command).as_bytes());
            (format!("{name}.1"), m)
        })
        .collect()
}
