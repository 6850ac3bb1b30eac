//! `syscount`: see [`examples::tools::syscount`].

fn main() -> std::process::ExitCode {
    examples::tools::run("syscount", examples::tools::syscount::main)
}
