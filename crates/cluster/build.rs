//! Converts the known-bad rules (`rules/known-bad.toml`, written by people) to JSON once at build
//! time, so the binaries read them with serde_json, which the entrypoint already links, instead
//! of carrying a TOML parser for one embedded file. A syntax error stops the build here; the
//! checks of `known_bad::Rules::parse` run in a unit test.

fn main() {
    let src = "rules/known-bad.toml";
    println!("cargo:rerun-if-changed={src}");
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("reading `{src}`: {e}"));
    let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("`{src}` is not valid TOML: {e}"));
    let json = serde_json::to_string(&value).expect("TOML values serialise to JSON");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("known-bad.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("writing `{}`: {e}", out.display()));
}
