//! The `cairn` command: parses arguments, runs one command through the
//! library, prints, and maps the outcome to an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
