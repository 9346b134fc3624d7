//! The command line's documentation agrees with the code: the man pages in
//! `man/` are exactly what `stanctl::cli::man::man_pages()` renders from the
//! clap definitions (`STANCTL_UPDATE_MAN=1` rewrites them), and `--help` and
//! the README list exactly the exit codes of `stanctl::cli::exit::ExitCode`.

use std::collections::BTreeSet;
use std::path::PathBuf;

const REGENERATE: &str = "regenerate with: STANCTL_UPDATE_MAN=1 cargo test --test cli";

fn man_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man")
}

fn updating() -> bool {
    std::env::var_os("STANCTL_UPDATE_MAN").is_some_and(|v| v == "1")
}

/// The `*.1` files currently in man/.
fn pages_on_disk() -> BTreeSet<String> {
    match std::fs::read_dir(man_dir()) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

#[test]
fn man_pages_are_up_to_date() {
    let pages = stanctl::cli::man::man_pages();
    let names: BTreeSet<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), pages.len(), "duplicate page names");
    assert!(names.contains("stanctl.1"));
    for sub in ["inspect", "verify", "encrypt", "decrypt", "rekey"] {
        assert!(
            names.contains(&format!("stanctl-store-{sub}.1")),
            "no page for store {sub}: {names:?}"
        );
    }
    for (name, bytes) in &pages {
        assert!(!bytes.is_empty(), "{name} renders empty");
        assert!(
            bytes.starts_with(b".ie ") || bytes.starts_with(b".TH") || bytes.starts_with(b".\\\""),
            "{name} is not roff"
        );
    }

    if updating() {
        std::fs::create_dir_all(man_dir()).unwrap();
        for stale in pages_on_disk().difference(&names) {
            std::fs::remove_file(man_dir().join(stale)).unwrap();
        }
        for (name, bytes) in &pages {
            std::fs::write(man_dir().join(name), bytes).unwrap();
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, bytes) in &pages {
        match std::fs::read(man_dir().join(name)) {
            Ok(on_disk) if on_disk == *bytes => {}
            Ok(_) => problems.push(format!("man/{name} differs from what the CLI renders")),
            Err(e) => problems.push(format!("man/{name} cannot be read: {e}")),
        }
    }
    for stale in pages_on_disk().difference(&names) {
        problems.push(format!(
            "man/{stale} is not rendered by the CLI any more (stale page)"
        ));
    }
    assert!(
        problems.is_empty(),
        "man pages out of date:\n  {}\n{REGENERATE}",
        problems.join("\n  ")
    );
}

#[test]
fn man_pages_describe_the_options() {
    // The rendered pages carry the CLI's own text: options and exit codes.
    let pages = stanctl::cli::man::man_pages();
    let page = |n: &str| {
        String::from_utf8(
            pages
                .iter()
                .find(|(name, _)| name == n)
                .unwrap_or_else(|| panic!("no {n}"))
                .1
                .clone(),
        )
        .unwrap()
    };
    let inspect = page("stanctl-store-inspect.1");
    for opt in ["key\\-file", "crc\\-poly", "records", "by\\-slice", "json"] {
        assert!(inspect.contains(opt), "inspect page lacks --{opt}");
    }
    assert!(
        inspect.contains("stanctl store inspect") || inspect.contains("stanctl\\-store\\-inspect")
    );
    // Every page documents the exit codes its command can return, the key
    // variable, and the others.
    for (name, _) in &pages {
        let text = page(name);
        assert!(
            text.contains(".SH \"EXIT STATUS\""),
            "{name} lacks EXIT STATUS"
        );
        let command = name
            .trim_end_matches(".1")
            .rsplit('-')
            .next()
            .unwrap_or("stanctl");
        for code in stanctl::cli::exit::codes_of(command)
            .iter()
            .map(|c| c.code())
        {
            assert!(
                text.contains(&format!("\\fB{code}\\fR")),
                "{name} lacks exit code {code}"
            );
        }
        assert!(
            text.contains("NATS_STREAMING_ENCRYPTION_KEY"),
            "{name} lacks ENVIRONMENT"
        );
        assert!(text.contains(".SH \"SEE ALSO\""), "{name} lacks SEE ALSO");
    }
}

#[test]
fn help_lists_every_exit_code_with_its_meaning() {
    let out = assert_cmd::Command::cargo_bin("stanctl")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    // clap wraps long lines: compare the words.
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = words(&String::from_utf8(out.stdout).unwrap());
    assert!(
        help.contains(&words(&stanctl::cli::exit::help_text("stanctl"))),
        "--help lacks the exit codes:\n{help}"
    );
}

/// Each command's --help and man page list only the codes it can return.
#[test]
fn each_command_lists_its_own_exit_codes() {
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    for (cmd, has, lacks) in [
        ("inspect", vec![0, 74], vec![1, 2, 4, 130]),
        ("verify", vec![0, 1, 2, 3], vec![4, 130]),
        ("decrypt", vec![0, 3, 4, 130], vec![1, 2]),
    ] {
        let out = assert_cmd::Command::cargo_bin("stanctl")
            .unwrap()
            .args(["store", cmd, "--help"])
            .output()
            .unwrap();
        let help = words(&String::from_utf8(out.stdout).unwrap());
        assert!(
            help.contains(&words(&stanctl::cli::exit::help_text(cmd))),
            "{help}"
        );
        let page =
            std::fs::read_to_string(man_dir().join(format!("stanctl-store-{cmd}.1"))).unwrap();
        let codes = page.split(".SH \"EXIT STATUS\"").nth(1).unwrap();
        let codes = codes.split(".SH").next().unwrap();
        for c in has {
            assert!(codes.contains(&format!("\\fB{c}\\fR")), "{cmd} lacks {c}");
        }
        for c in lacks {
            assert!(!codes.contains(&format!("\\fB{c}\\fR")), "{cmd} lists {c}");
        }
    }
}

/// The man pages: option values in the SYNOPSIS, EXAMPLES, and no page or
/// file an installed binary does not have.
#[test]
fn man_pages_are_self_contained() {
    for (name, bytes) in stanctl::cli::man::man_pages() {
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(".SH EXAMPLES"), "{name} lacks EXAMPLES");
        for bad in [
            "README",
            "FORMAT.md",
            "stanctl\\-store(1)",
            "stanctl\\-help(1)",
        ] {
            assert!(!text.contains(bad), "{name} refers to {bad}");
        }
        if name != "stanctl.1" {
            assert!(
                text.contains("\\fB\\-k\\fR|\\fB\\-\\-key\\-file\\fR \\fIFILE\\fR"),
                "{name}: SYNOPSIS without values"
            );
        }
    }
}

/// Completion scripts for bash, zsh and fish, generated and checked.
#[test]
fn completions_for_three_shells() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef stanctl"),
        ("fish", "complete -c stanctl"),
    ] {
        let out = assert_cmd::Command::cargo_bin("stanctl")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {text}");
        assert!(
            text.contains("key-file") && text.contains("rekey"),
            "{shell}"
        );
    }
    // bash parses it.
    let out = assert_cmd::Command::cargo_bin("stanctl")
        .unwrap()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &String::from_utf8(out.stdout).unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The README's exit-code table has one row per code, in order, with the
/// enum's meaning (backticks aside).
#[test]
fn readme_exit_codes_are_the_enum() {
    use stanctl::cli::exit::ExitCode;
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    let rows: Vec<(i32, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].replace('`', ""))
        })
        .collect();
    let want: Vec<(i32, String)> = ExitCode::ALL
        .iter()
        .map(|c| (c.code(), c.meaning().to_string()))
        .collect();
    assert_eq!(rows, want);
}
