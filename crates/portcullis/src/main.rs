//! The `portcullis` binary.

/// mimalloc: the request paths allocate many small short-lived buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::main_with_args(std::env::args_os())
}
