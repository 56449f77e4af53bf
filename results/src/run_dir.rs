//! The run directory: `store/<scenario>/<start time>/` and the `store/latest` link.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::ResultsError;
use crate::limits;
use crate::time::format_start_time;

/// One run's directory on disk (Jepsen's store layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub path: PathBuf,
}

/// Name of the link in the store that points at the newest run.
pub const LATEST_LINK: &str = "latest";

impl RunDir {
    /// Creates `store/<scenario_name>/<start time>/` (with `-2`, `-3`, … if that exists), its
    /// `nodes/` and `clients/`, and points `store/latest` at it with a relative symlink,
    /// replaced atomically.
    pub fn create(
        store: &Path,
        scenario_name: &str,
        started: SystemTime,
    ) -> Result<RunDir, ResultsError> {
        check_scenario_name(scenario_name)?;
        let scenario_dir = store.join(scenario_name);
        std::fs::create_dir_all(&scenario_dir).map_err(|e| ResultsError::io(&scenario_dir, e))?;
        let (stamp, _) = format_start_time(started);
        let mut chosen = None;
        for n in 1..=limits::RUN_DIR_SUFFIX_MAX {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let path = scenario_dir.join(&name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    chosen = Some((name, path));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ResultsError::io(&path, e)),
            }
        }
        let Some((name, path)) = chosen else {
            return Err(ResultsError::RunDirTaken {
                dir: scenario_dir.join(&stamp),
            });
        };
        let dir = RunDir { path };
        for sub in [dir.nodes_dir(), dir.clients_dir()] {
            std::fs::create_dir(&sub).map_err(|e| ResultsError::io(&sub, e))?;
        }
        point_latest(store, &Path::new(scenario_name).join(name))?;
        Ok(dir)
    }

    /// Opens an existing run directory (for example to check a stored history again).
    pub fn open(path: &Path) -> Result<RunDir, ResultsError> {
        let meta = std::fs::metadata(path).map_err(|e| ResultsError::io(path, e))?;
        if !meta.is_dir() {
            return Err(ResultsError::NotARunDir {
                path: path.to_path_buf(),
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn history_path(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }
    pub fn scenario_path(&self) -> PathBuf {
        self.path.join("scenario.toml")
    }
    pub fn nodes_dir(&self) -> PathBuf {
        self.path.join("nodes")
    }
    pub fn clients_dir(&self) -> PathBuf {
        self.path.join("clients")
    }
    pub fn results_path(&self) -> PathBuf {
        self.path.join("results.json")
    }
    pub fn report_path(&self) -> PathBuf {
        self.path.join("report.html")
    }
}

fn check_scenario_name(name: &str) -> Result<(), ResultsError> {
    let bad = |reason: &str| ResultsError::InvalidScenarioName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > limits::SCENARIO_NAME_CHARS_MAX {
        return Err(bad("it is too long for a directory name"));
    }
    if name == "." || name == ".." || name == LATEST_LINK {
        return Err(bad("it is reserved"));
    }
    if name.starts_with('.') {
        return Err(bad("it starts with a dot"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c == '\0' || c.is_control())
    {
        return Err(bad("it contains a slash or a control character"));
    }
    Ok(())
}

/// Replaces `store/latest` with a link to `relative_target`: a temporary link, then a rename over
/// the old one, so a reader never sees it missing.
#[cfg(unix)]
fn point_latest(store: &Path, relative_target: &Path) -> Result<(), ResultsError> {
    let latest = store.join(LATEST_LINK);
    let tmp = store.join(format!(".{LATEST_LINK}.tmp-{}", std::process::id()));
    // A leftover from a crashed run of this same pid number.
    if std::fs::symlink_metadata(&tmp).is_ok() {
        std::fs::remove_file(&tmp).map_err(|e| ResultsError::io(&tmp, e))?;
    }
    std::os::unix::fs::symlink(relative_target, &tmp).map_err(|e| ResultsError::io(&tmp, e))?;
    std::fs::rename(&tmp, &latest).map_err(|e| ResultsError::io(&latest, e))
}

#[cfg(not(unix))]
fn point_latest(store: &Path, relative_target: &Path) -> Result<(), ResultsError> {
    // No symlinks: a text file naming the newest run.
    let latest = store.join(LATEST_LINK);
    std::fs::write(&latest, relative_target.to_string_lossy().as_bytes())
        .map_err(|e| ResultsError::io(&latest, e))
}
