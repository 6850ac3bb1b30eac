//! `funclatency`: see [`examples::tools::funclatency`].

fn main() -> std::process::ExitCode {
    examples::tools::run("funclatency", examples::tools::funclatency::main)
}
