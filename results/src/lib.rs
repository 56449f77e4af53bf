//! The run record on disk and everything drawn from it: `results.json`, `report.html` with inline
//! SVG plots. The only crate that knows HTML and plotting.
//!
//! # Layout
//! - `run_dir`: [`RunDir`], `store/<scenario>/<start time>/` and the `store/latest` link.
//! - `time`: [`format_start_time`], start times as directory names and RFC 3339.
//! - `summary`: [`RunSummary`] (`results.json`), [`write_results`], [`read_results`].
//! - `report`: [`render_report`], the self-contained HTML page; [`escape`].
//! - `plot`: per-second SVG plots with fault windows shaded (plotters' SVG backend).
//! - [`limits`]: every bound (cases per class on the page, plot size, run dir suffixes).
//! - `error`: [`ResultsError`].

mod error;
pub mod limits;
mod plot;
mod report;
mod run_dir;
mod summary;
mod time;

pub use error::ResultsError;
pub use report::{escape, render_report};
pub use run_dir::{RunDir, LATEST_LINK};
pub use summary::{read_results, write_results, RunSummary};
pub use time::format_start_time;
