//! Renders a stored run's report again, with plot series computed from its history, to a file
//! of your choice (the run directory is left as it is):
//! `cargo run -p results --example rerender -- store/demo/<start> /tmp/report.html`.

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(run), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: rerender RUN_DIR OUT.html");
        std::process::exit(2);
    };
    let dir = results::RunDir::open(std::path::Path::new(&run)).expect("a run directory");
    let mut summary = results::read_results(&dir).expect("a readable results.json");
    if summary.plots.is_empty() {
        summary.plots =
            results::plots_from_history_file(&dir.history_path()).expect("a readable history");
    }
    std::fs::write(&out, results::render_report(&summary)).expect("writing the report");
    println!("{}", std::path::Path::new(&out).display());
}
