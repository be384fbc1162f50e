//! Shim: see the `entrypoint` library.
fn main() {
    let code = entrypoint::main_with(std::env::args().skip(1).collect());
    std::process::exit(code);
}
