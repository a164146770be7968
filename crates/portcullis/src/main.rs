//! The `portcullis` binary.

fn main() -> std::process::ExitCode {
    portcullis::main_with_args(std::env::args_os())
}
