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
            let _ = e.print();
            std::process::exit(code.code());
        }
    };
    std::process::exit(stanctl::cli::run(cli).code());
}
