//! `opensnoop`: see [`examples::tools::opensnoop`].

fn main() -> std::process::ExitCode {
    examples::tools::run("opensnoop", examples::tools::opensnoop::main)
}
