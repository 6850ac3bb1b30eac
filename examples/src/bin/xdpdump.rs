//! `xdpdump`: see [`examples::tools::xdpdump`].

fn main() -> std::process::ExitCode {
    examples::tools::run("xdpdump", examples::tools::xdpdump::main)
}
