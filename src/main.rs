use clap::Parser;

fn main() {
    let cli = match stanctl::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                stanctl::app::EXIT_USAGE
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(stanctl::app::run(cli));
}
