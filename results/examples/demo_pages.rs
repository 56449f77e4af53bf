//! Writes a demo store (reports, a comparison, an index) from synthetic runs, to look at:
//! `cargo run -p results --example demo_pages -- /tmp/kaos-demo`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kaos-demo"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the demo directory");
    let pages = common::demo_store(&dir);
    println!("report:     {}", pages.report.display());
    println!("comparison: {}", pages.comparison.display());
    println!("index:      {}", pages.index.display());
}
