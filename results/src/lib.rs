//! The run record on disk and everything drawn from it: `results.json`, `report.html` with inline
//! SVG plots, the comparison and index pages, JUnit XML. The only crate that knows HTML and
//! plotting. Every page is self-contained: inline CSS and SVG, no script, no network (a content
//! security policy in each page makes a browser refuse any request).
//!
//! # Layout
//! - `run_dir`: [`RunDir`], `store/<scenario>/<start time>/` and the `store/latest` link.
//! - `time`: [`format_start_time`], start times as directory names and RFC 3339.
//! - `summary`: [`RunSummary`] (`results.json`, fields in `results/SCHEMA.md`), [`KeyFigures`].
//! - `store`: [`write_results`] (`results.json` and `report.html`, atomically), [`read_results`].
//! - [`series`]: [`PlotData`], plot series computed from the history ops (latency percentiles
//!   and histogram, consumer throughput, process spans), bucketed and bounded.
//! - `report`: [`render_report`], the run's page.
//! - [`comparison`]: [`write_comparison`], configurations side by side, each over its seeds
//!   (median and range), led by `heatmap`s of what each setting loses.
//! - [`index`]: [`write_index`], every stored run, each scenario's trend, the comparison pages.
//! - [`junit`]: [`write_junit`], JUnit XML for CI.
//! - [`soak`]: [`SoakSummary`], one scenario run with seed after seed (`kaos soak`), and
//!   [`write_soak`], its record beside the scenario's runs.
//! - `cycle`: a dependency cycle of a case drawn as a small SVG beside its explanation.
//! - `page`: what the pages share (head, style, [`escape`], relative links); `plot`: the SVGs.
//! - [`limits`]: every bound (cases per class on the page, plot points, table rows).
//! - `error`: [`ResultsError`].

//!
//! # Use from the harness
//! ```text
//! let dir = RunDir::create(store, name, started)?;           // store/<name>/<start>/, store/latest
//! … run, writing dir.history_path() …
//! let plots = PlotData::from_history_text(&history);          // or PlotData::from_ops(ops), or
//!                                                             // PlotData::default(): write_results
//!                                                             // then reads history.jsonl itself
//! write_results(&dir, &RunSummary { …, analysis, plots })?;  // results.json + report.html
//! write_index(store)?;                                        // store/index.html
//! write_comparison(out_dir, &rows)?;                          // kaos matrix: comparison.html
//! write_junit(path, suite, &[JunitCase::from_summary(name, &summary, Some(&report))])?;
//! ```

pub mod comparison;
mod cycle;
mod error;
mod heatmap;
pub mod index;
pub mod junit;
pub mod limits;
mod page;
mod plot;
mod report;
mod run_dir;
pub mod series;
pub mod soak;
mod store;
mod summary;
mod time;

pub use comparison::{write_comparison, ComparisonRow};
pub use error::ResultsError;
pub use index::write_index;
pub use junit::{write_junit, JunitCase};
pub use page::{escape, CONTENT_SECURITY_POLICY};
pub use report::render_report;
pub use run_dir::{RunDir, LATEST_LINK};
pub use series::PlotData;
pub use soak::{write_soak, RunTiming, SoakEnd, SoakRun, SoakSummary};
pub use store::{plots_from_history_file, read_results, write_results};
pub use summary::{KeyFigures, RunSummary};
pub use time::format_start_time;
