//! What a scenario allows: each anomaly class is `allowed` or `forbidden`.

use serde::{Deserialize, Serialize};

/// Whether an anomaly class may occur in a valid run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Allowance {
    Allowed,
    Forbidden,
}

impl Allowance {
    pub fn as_str(self) -> &'static str {
        match self {
            Allowance::Allowed => "allowed",
            Allowance::Forbidden => "forbidden",
        }
    }
}

/// The expected outcome of a scenario, read from its `[expect]` table, e.g.
/// `[expect]\nlost = "forbidden"\nduplicates = "allowed"`. Missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// Acknowledged sends absent from the final read. Default: forbidden.
    pub lost: Allowance,
    /// One message id at two or more positions. Default: allowed.
    pub duplicates: Allowance,
    /// Sends never acknowledged and absent from the final read. Default: allowed.
    pub unacknowledged_absent: Allowance,
    /// Sends that failed (definitely not written) yet were read. Default: forbidden.
    pub aborted_read: Allowance,
    /// Liveness: the run must acknowledge at least this many sends. Default: 0 (no requirement).
    pub acknowledged_min: u64,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            lost: Allowance::Forbidden,
            duplicates: Allowance::Allowed,
            unacknowledged_absent: Allowance::Allowed,
            aborted_read: Allowance::Forbidden,
            acknowledged_min: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Scenario {
        expect: Expectations,
    }

    #[test]
    fn reads_a_toml_expect_table_with_defaults() {
        let scenario: Scenario =
            toml::from_str("[expect]\nduplicates = \"forbidden\"\n").expect("valid table");
        assert_eq!(scenario.expect.duplicates, Allowance::Forbidden);
        assert_eq!(scenario.expect.lost, Allowance::Forbidden);
        assert_eq!(scenario.expect.unacknowledged_absent, Allowance::Allowed);
        assert_eq!(scenario.expect.acknowledged_min, 0);
        let scenario: Scenario = toml::from_str("[expect]\nacknowledged_min = 5\n").expect("valid table");
        assert_eq!(scenario.expect.acknowledged_min, 5);
    }

    #[test]
    fn rejects_unknown_keys_and_values() {
        assert!(toml::from_str::<Scenario>("[expect]\nlsot = \"allowed\"\n").is_err());
        assert!(toml::from_str::<Scenario>("[expect]\nlost = \"maybe\"\n").is_err());
    }
}
