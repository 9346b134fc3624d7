use clap::Parser;
use stanctl::cli::exit::ExitCode;

fn main() {
    let cli = match stanctl::cli::args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            // One prefix for every error: clap's own say "stanctl: error:"
            // like ours (help and version are printed as they are).
            if e.use_stderr() {
                eprint!("stanctl: {}", e.render());
            } else {
                let _ = e.print();
            }
            std::process::exit(code.code());
        }
    };
    std::process::exit(stanctl::cli::run(cli).code());
}
