//! ACL bindings, as Kafka's `StandardAuthorizer` keeps them (KIP-140, with KIP-290's prefixed
//! patterns): a resource pattern (type, name, LITERAL or PREFIXED) and an entry (principal, host,
//! operation, ALLOW or DENY). CreateAcls validates a binding as Kafka's `AclControlManager` does
//! (INVALID_REQUEST with Kafka's words); DescribeAcls and DeleteAcls select bindings with a filter
//! (`ResourcePatternFilter` and `AccessControlEntryFilter`: ANY matches every value, a null string
//! every string, MATCH a literal name, the wildcard `*` and every prefix of the name). The
//! bindings are stored durably: on a single broker in `acls.json` of its data dir ([`AclFile`]),
//! in a cluster by the controller (its state file). They are not enforced: kaos-broker has no
//! authentication, so every client is `User:ANONYMOUS` and allowed everything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::log::checkpoint;

/// Kafka's `ResourceType` codes.
pub mod resource {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const USER: i8 = 7;
}

/// Kafka's `PatternType` codes.
pub mod pattern {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclOperation` codes (UNKNOWN 0, ANY 1, ALL 2 … DESCRIBE_TOKENS 14).
pub mod operation {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const LAST: i8 = 14;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// What a client may do with a resource of a type, as Kafka answers the `authorized_operations`
/// of Metadata (topics, and the cluster in v8–10), DescribeCluster and DescribeGroups when the
/// request asks for them: a bit per `AclOperation` code. Kafka without an authorizer reports every
/// operation it supports on the type (`AclEntry.supportedOperations`); kaos-broker enforces no
/// ACL, so it reports the same.
pub mod authorized {
    /// Not asked for (Kafka's `Integer.MIN_VALUE`).
    pub const OMITTED: i32 = i32::MIN;

    const fn bits(codes: &[i32]) -> i32 {
        let mut field = 0;
        let mut i = 0;
        while i < codes.len() {
            field |= 1 << codes[i];
            i += 1;
        }
        field
    }

    // AclOperation codes: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
    // CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
    /// A topic: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);
    /// A group (Kafka 3.x): READ, DELETE, DESCRIBE.
    pub const GROUP: i32 = bits(&[3, 6, 8]);
    /// The cluster: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
    /// IDEMPOTENT_WRITE.
    pub const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);

    /// `field` when `asked`, else [`OMITTED`].
    pub fn if_asked(asked: bool, field: i32) -> i32 {
        if asked {
            field
        } else {
            OMITTED
        }
    }
}

/// Kafka's wildcard resource name: a LITERAL `*` binding applies to every resource of its type.
pub const WILDCARD: &str = "*";

/// One ACL binding. The field order is the order bindings are kept and described in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// A filter of DescribeAcls and DeleteAcls (`None` strings match every value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission_type: i8,
}

/// A refused binding or filter: the error code and Kafka's message.
pub type Refusal = (ResponseError, String);

fn invalid(message: impl Into<String>) -> Refusal {
    (ResponseError::InvalidRequest, message.into())
}

fn known(code: i8, last: i8) -> bool {
    (2..=last).contains(&code)
}

/// Whether a binding may be created (Kafka's `AclControlManager.validateNewAcl`), and bounded.
pub fn validate_binding(b: &AclBinding) -> Result<(), Refusal> {
    if !matches!(b.pattern_type, pattern::LITERAL | pattern::PREFIXED) {
        return Err(invalid(format!("Invalid patternType {}", b.pattern_type)));
    }
    if !known(b.operation, operation::LAST) {
        return Err(invalid(format!("Invalid operation {}", b.operation)));
    }
    if !matches!(b.permission_type, permission::DENY | permission::ALLOW) {
        return Err(invalid(format!(
            "Invalid permissionType {}",
            b.permission_type
        )));
    }
    if !known(b.resource_type, resource::USER) {
        return Err(invalid(format!("Invalid resourceType {}", b.resource_type)));
    }
    if b.resource_name.is_empty() {
        return Err(invalid("Resource name should not be empty"));
    }
    if !b.principal.contains(':') {
        return Err(invalid(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
            b.principal
        )));
    }
    for (what, text) in [
        ("resource name", &b.resource_name),
        ("principal", &b.principal),
        ("host", &b.host),
    ] {
        if text.len() > limits::ACL_STRING_BYTES_MAX {
            return Err(invalid(format!(
                "The {what} is longer than kaos-broker's {} bytes",
                limits::ACL_STRING_BYTES_MAX
            )));
        }
    }
    Ok(())
}

/// Whether a filter may be used (Kafka's `findIndefiniteField`: no UNKNOWN field).
pub fn validate_filter(f: &AclFilter) -> Result<(), Refusal> {
    let unknown = [
        (f.resource_type == resource::UNKNOWN, "resourceType"),
        (f.pattern_type == pattern::UNKNOWN, "patternType"),
        (f.operation == operation::UNKNOWN, "operation"),
        (f.permission_type == permission::UNKNOWN, "permissionType"),
    ];
    if let Some((_, field)) = unknown.iter().find(|(is_unknown, _)| *is_unknown) {
        return Err(invalid(format!("Unknown {field}")));
    }
    let out_of_range = !(f.resource_type == resource::ANY
        || known(f.resource_type, resource::USER))
        || !(1..=pattern::PREFIXED).contains(&f.pattern_type)
        || !(f.operation == operation::ANY || known(f.operation, operation::LAST))
        || !(1..=permission::ALLOW).contains(&f.permission_type);
    if out_of_range {
        return Err(invalid("The filter has a code out of range"));
    }
    Ok(())
}

impl AclFilter {
    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.pattern_matches(b) && self.entry_matches(b)
    }

    fn pattern_matches(&self, b: &AclBinding) -> bool {
        if self.resource_type != resource::ANY && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, pattern::ANY | pattern::MATCH)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == pattern::ANY || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        match b.pattern_type {
            pattern::LITERAL => *name == b.resource_name || b.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(&b.resource_name),
            _ => false,
        }
    }

    fn entry_matches(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == operation::ANY || self.operation == b.operation)
            && (self.permission_type == permission::ANY
                || self.permission_type == b.permission_type)
    }
}

/// Adds valid bindings (an existing one is no change, as in Kafka): one outcome per binding.
pub fn create(
    acls: &mut BTreeSet<AclBinding>,
    bindings: Vec<AclBinding>,
) -> Vec<Result<(), Refusal>> {
    bindings
        .into_iter()
        .map(|b| -> Result<(), Refusal> {
            validate_binding(&b)?;
            if acls.len() >= limits::ACL_BINDINGS_MAX && !acls.contains(&b) {
                return Err(invalid(format!(
                    "kaos-broker keeps at most {} ACL bindings",
                    limits::ACL_BINDINGS_MAX
                )));
            }
            acls.insert(b);
            Ok(())
        })
        .collect()
}

/// The bindings `filter` matches.
pub fn describe(
    acls: &BTreeSet<AclBinding>,
    filter: &AclFilter,
) -> Result<Vec<AclBinding>, Refusal> {
    validate_filter(filter)?;
    Ok(acls.iter().filter(|b| filter.matches(b)).cloned().collect())
}

/// Removes the bindings each filter matches: per filter, the bindings it removed (a binding two
/// filters match is listed under both, as Kafka lists it).
pub fn delete(
    acls: &mut BTreeSet<AclBinding>,
    filters: &[AclFilter],
) -> Vec<Result<Vec<AclBinding>, Refusal>> {
    let outcomes: Vec<Result<Vec<AclBinding>, Refusal>> =
        filters.iter().map(|f| describe(acls, f)).collect();
    for removed in outcomes.iter().flatten().flatten() {
        acls.remove(removed);
    }
    outcomes
}

/// Where bindings are kept durably.
pub trait AclStore {
    /// Runs `f` on the bindings; if it changed them, they are stored durably before this returns
    /// (an error then: the change is undone and the message says why).
    fn update_acls<T>(&self, f: impl FnOnce(&mut BTreeSet<AclBinding>) -> T) -> Result<T, String>;
    /// A copy of the bindings.
    fn acls(&self) -> BTreeSet<AclBinding>;
}

/// Why the bindings file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct AclFileError {
    pub path: PathBuf,
    pub message: String,
}

/// The file in a single broker's data dir.
pub const ACLS_FILE_NAME: &str = "acls.json";

/// A single broker's bindings: `acls.json` in its data dir, rewritten atomically at each change.
#[derive(Debug)]
pub struct AclFile {
    data_dir: PathBuf,
    acls: Mutex<BTreeSet<AclBinding>>,
}

impl AclFile {
    /// Reads the file (none: no bindings); every binding in it must be valid.
    pub fn open(data_dir: &Path) -> Result<AclFile, AclFileError> {
        let path = data_dir.join(ACLS_FILE_NAME);
        let bad = |message: String| AclFileError {
            path: path.clone(),
            message,
        };
        let acls: BTreeSet<AclBinding> = checkpoint::read_json(&path, "ACL bindings")
            .map_err(&bad)?
            .unwrap_or_default();
        if let Some((b, (_, why))) = acls
            .iter()
            .find_map(|b| validate_binding(b).err().map(|e| (b, e)))
        {
            return Err(bad(format!("invalid binding {b:?}: {why}")));
        }
        Ok(AclFile {
            data_dir: data_dir.to_path_buf(),
            acls: Mutex::new(acls),
        })
    }
}

impl AclStore for AclFile {
    fn update_acls<T>(&self, f: impl FnOnce(&mut BTreeSet<AclBinding>) -> T) -> Result<T, String> {
        let mut acls = self.acls.lock().unwrap_or_else(|p| p.into_inner());
        let before = acls.clone();
        let out = f(&mut acls);
        if *acls != before {
            let text = serde_json::to_vec_pretty(&*acls).map_err(|e| e.to_string());
            let written = text.and_then(|text| {
                crate::log::write_file_atomically(&self.data_dir, ACLS_FILE_NAME, &text)
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = written {
                *acls = before;
                tracing::error!(error = %e, "cannot store the ACL bindings");
                return Err(format!("cannot store the ACL bindings: {e}"));
            }
        }
        Ok(out)
    }

    fn acls(&self) -> BTreeSet<AclBinding> {
        self.acls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern_type: i8, principal: &str, op: i8) -> AclBinding {
        AclBinding {
            resource_type: 2,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission_type: permission::ALLOW,
        }
    }

    fn filter(name: Option<&str>, pattern_type: i8) -> AclFilter {
        AclFilter {
            resource_type: 2,
            resource_name: name.map(str::to_string),
            pattern_type,
            principal: None,
            host: None,
            operation: operation::ANY,
            permission_type: permission::ANY,
        }
    }

    #[test]
    fn filters_match_as_kafka_s() {
        let literal = binding("orders", pattern::LITERAL, "User:a", 3);
        let prefixed = binding("ord", pattern::PREFIXED, "User:b", 4);
        let wildcard = binding("*", pattern::LITERAL, "User:c", 3);
        let other = binding("payments", pattern::LITERAL, "User:a", 3);
        let all = [&literal, &prefixed, &wildcard, &other];
        let matched = |f: &AclFilter| -> Vec<&AclBinding> {
            all.iter().copied().filter(|b| f.matches(b)).collect()
        };
        assert_eq!(
            matched(&filter(Some("orders"), pattern::MATCH)),
            [&literal, &prefixed, &wildcard]
        );
        assert_eq!(
            matched(&filter(Some("orders"), pattern::LITERAL)),
            [&literal]
        );
        assert_eq!(matched(&filter(Some("ord"), pattern::ANY)), [&prefixed]);
        assert_eq!(matched(&filter(None, pattern::PREFIXED)), [&prefixed]);
        assert_eq!(matched(&filter(None, pattern::ANY)).len(), 4);
        let by_principal = AclFilter {
            principal: Some("User:a".into()),
            operation: 3,
            ..filter(None, pattern::ANY)
        };
        assert_eq!(matched(&by_principal), [&literal, &other]);
        let group = AclFilter {
            resource_type: 3,
            ..filter(None, pattern::ANY)
        };
        assert!(matched(&group).is_empty());
    }

    #[test]
    fn invalid_bindings_and_filters_are_refused_with_kafka_s_words() {
        let ok = binding("t", pattern::LITERAL, "User:a", 3);
        assert!(validate_binding(&ok).is_ok());
        let refused = |b: AclBinding| validate_binding(&b).expect_err("refused").1;
        assert_eq!(
            refused(AclBinding {
                pattern_type: pattern::MATCH,
                ..ok.clone()
            }),
            "Invalid patternType 2"
        );
        assert_eq!(
            refused(AclBinding {
                operation: operation::ANY,
                ..ok.clone()
            }),
            "Invalid operation 1"
        );
        assert!(refused(AclBinding {
            principal: "nobody".into(),
            ..ok.clone()
        })
        .starts_with("Could not parse principal"));
        assert_eq!(
            refused(AclBinding {
                resource_name: String::new(),
                ..ok.clone()
            }),
            "Resource name should not be empty"
        );
        let unknown = AclFilter {
            operation: operation::UNKNOWN,
            ..filter(None, pattern::ANY)
        };
        assert_eq!(
            validate_filter(&unknown).expect_err("refused").1,
            "Unknown operation"
        );
        let out_of_range = AclFilter {
            pattern_type: 9,
            ..filter(None, pattern::ANY)
        };
        assert!(validate_filter(&out_of_range).is_err());
    }

    #[test]
    fn create_describe_delete() {
        let mut acls = BTreeSet::new();
        let a = binding("t_1", pattern::PREFIXED, "User:test1", 3);
        let b = binding("t_1", pattern::LITERAL, "User:test2", 4);
        let c = binding("t_2", pattern::LITERAL, "User:test2", 4);
        let bad = binding("t", pattern::ANY, "User:x", 3);
        let created = create(
            &mut acls,
            vec![a.clone(), b.clone(), c.clone(), a.clone(), bad],
        );
        assert_eq!(created.iter().filter(|r| r.is_ok()).count(), 4);
        assert_eq!(
            acls.len(),
            3,
            "a duplicate is no change, the invalid one refused"
        );
        let deleted = delete(&mut acls, &[filter(Some("t_1"), pattern::MATCH)]);
        assert_eq!(deleted[0].as_ref().expect("deleted").len(), 2);
        assert_eq!(acls.iter().collect::<Vec<_>>(), [&c]);
        assert!(describe(&acls, &filter(Some("t_1"), pattern::MATCH))
            .expect("valid")
            .is_empty());
    }

    #[test]
    fn the_file_keeps_bindings_across_a_reopen_and_refuses_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = AclFile::open(dir.path()).expect("no file yet");
        let a = binding("t", pattern::LITERAL, "User:a", 3);
        file.update_acls(|acls| create(acls, vec![a.clone()]))
            .expect("stored");
        let again = AclFile::open(dir.path()).expect("reads");
        assert_eq!(again.acls().into_iter().collect::<Vec<_>>(), [a]);
        std::fs::write(dir.path().join(ACLS_FILE_NAME), b"[{\"x\": 1}]").expect("write");
        let error = AclFile::open(dir.path()).expect_err("garbage");
        assert!(error.to_string().contains("acls.json"), "{error}");
    }
}
