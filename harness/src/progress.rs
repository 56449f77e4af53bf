//! The progress bar of `kaos run`: elapsed of total time, sends acknowledged, faults in force.
//! Drawn on standard error only when it is a terminal (indicatif hides it otherwise).

use crate::history::Live;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the bar is redrawn.
const REDRAW_MS: u64 = 250;

/// Draws until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: ProgressBar,
}

impl Progress {
    pub fn start(live: Arc<Live>, duration_s: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(duration_s), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}",
        ) {
            bar.set_style(style);
        }
        let shown = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(REDRAW_MS));
            loop {
                tick.tick().await;
                shown.set_position(started.elapsed().as_secs().min(duration_s));
                let faults = live.faults_text();
                let faults = if faults.is_empty() {
                    "none".to_string()
                } else {
                    faults
                };
                shown.set_message(format!(
                    "acked {} · faults: {faults}",
                    live.acked.load(Ordering::Relaxed)
                ));
            }
        });
        Progress { task, bar }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
