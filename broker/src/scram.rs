//! SCRAM credentials (KIP-554: DescribeUserScramCredentials, AlterUserScramCredentials), kept as
//! Kafka's `ScramControlManager` keeps them: per user and mechanism (SCRAM-SHA-256 1,
//! SCRAM-SHA-512 2) the iterations, salt and salted password the client computed. Stored durably:
//! on a single broker in `scram-credentials.json` of its data dir ([`ScramFile`]), in a cluster by
//! the controller (its state file; brokers forward both APIs to it). Only stored and described:
//! kaos-broker authenticates no one (no SASL), so the credentials let no client in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};

use crate::limits;
use crate::log::checkpoint;

/// Kafka's bounds on a credential's iterations (`ScramMechanism.minIterations/maxIterations`).
const ITERATIONS_MIN: i32 = 4096;
const ITERATIONS_MAX: i32 = 16384;

/// One stored credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// user → mechanism → credential.
pub type Credentials = BTreeMap<String, BTreeMap<i8, ScramCredential>>;

/// Where credentials are kept durably.
pub trait ScramStore {
    /// Runs `f` on the credentials; if it changed them, they are stored durably before this
    /// returns (an error then: the change is undone and the message says why).
    fn update_scram<T>(&self, f: impl FnOnce(&mut Credentials) -> T) -> Result<T, String>;
    /// A copy of the credentials.
    fn scram(&self) -> Credentials;
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn known_mechanism(mechanism: i8) -> bool {
    matches!(mechanism, 1 | 2)
}

/// DescribeUserScramCredentials: every user with credentials when `users` is null or empty;
/// else each named user's (RESOURCE_NOT_FOUND without any, DUPLICATE_RESOURCE when named twice).
pub fn describe(
    store: &impl ScramStore,
    request: &DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let all = store.scram();
    let infos = |creds: &BTreeMap<i8, ScramCredential>| -> Vec<CredentialInfo> {
        creds
            .iter()
            .map(|(m, c)| {
                CredentialInfo::default()
                    .with_mechanism(*m)
                    .with_iterations(c.iterations)
            })
            .collect()
    };
    let named: Vec<&str> = request
        .users
        .iter()
        .flatten()
        .map(|u| u.name.as_str())
        .collect();
    let results = if named.is_empty() {
        all.iter()
            .map(|(user, creds)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(s(user))
                    .with_credential_infos(infos(creds))
            })
            .collect()
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for user in &named {
            *counts.entry(user).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        named
            .iter()
            .filter(|user| seen.insert(**user))
            .map(|user| {
                let result = DescribeUserScramCredentialsResult::default().with_user(s(user));
                let refuse = |e: ResponseError, message: &str| {
                    result
                        .clone()
                        .with_error_code(e.code())
                        .with_error_message(Some(s(message)))
                };
                if counts[user] > 1 {
                    return refuse(
                        ResponseError::DuplicateResource,
                        "Cannot describe SCRAM credentials for the same user twice in a single request",
                    );
                }
                match all.get(*user) {
                    Some(creds) => result.clone().with_credential_infos(infos(creds)),
                    None => refuse(
                        ResponseError::ResourceNotFound,
                        "Attempt to describe a user credential that does not exist",
                    ),
                }
            })
            .collect()
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// An alteration's outcome: done, or refused with this error and message.
type Outcome = Result<(), (ResponseError, String)>;

/// Why an alteration of `user` is refused before it is applied, if it is.
fn check(user: &str, mechanism: i8, counts: &BTreeMap<&str, usize>) -> Outcome {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    if counts.get(user).copied().unwrap_or(0) > 1 {
        return Err((
            ResponseError::DuplicateResource,
            "A user credential cannot be altered twice in the same request".into(),
        ));
    }
    if !known_mechanism(mechanism) {
        return Err((
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        ));
    }
    Ok(())
}

/// AlterUserScramCredentials: each deletion and upsertion checked as Kafka checks it (a user at
/// most once per request, a known mechanism, 4096..=16384 iterations, a deletion of an existing
/// credential), the accepted ones stored together; one result per user, deletions first.
pub fn alter(
    store: &impl ScramStore,
    request: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let users = request
        .deletions
        .iter()
        .map(|d| d.name.as_str())
        .chain(request.upsertions.iter().map(|u| u.name.as_str()));
    for user in users {
        *counts.entry(user).or_default() += 1;
    }
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();
    let applied = store.update_scram(|all| {
        for d in &request.deletions {
            let user = d.name.as_str();
            let outcome = check(user, d.mechanism, &counts).and_then(|()| {
                let creds = all.get_mut(user);
                match creds.and_then(|c| c.remove(&d.mechanism)) {
                    Some(_) => Ok(()),
                    None => Err((
                        ResponseError::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    )),
                }
            });
            if all.get(user).is_some_and(BTreeMap::is_empty) {
                all.remove(user);
            }
            outcomes.push((user.to_string(), outcome));
        }
        for u in &request.upsertions {
            let user = u.name.as_str();
            let outcome = check(user, u.mechanism, &counts).and_then(|()| {
                if u.iterations < ITERATIONS_MIN {
                    return Err((
                        ResponseError::UnacceptableCredential,
                        "Too few iterations".into(),
                    ));
                }
                if u.iterations > ITERATIONS_MAX {
                    return Err((
                        ResponseError::UnacceptableCredential,
                        "Too many iterations".into(),
                    ));
                }
                if u.salt.len() > limits::SCRAM_BYTES_MAX
                    || u.salted_password.len() > limits::SCRAM_BYTES_MAX
                {
                    return Err((
                        ResponseError::UnacceptableCredential,
                        format!(
                            "salt or salted password longer than {} bytes",
                            limits::SCRAM_BYTES_MAX
                        ),
                    ));
                }
                if !all.contains_key(user) && all.len() >= limits::SCRAM_USERS_MAX {
                    return Err((
                        ResponseError::UnacceptableCredential,
                        format!(
                            "more than {} users with credentials",
                            limits::SCRAM_USERS_MAX
                        ),
                    ));
                }
                all.entry(user.to_string()).or_default().insert(
                    u.mechanism,
                    ScramCredential {
                        iterations: u.iterations,
                        salt: u.salt.to_vec(),
                        salted_password: u.salted_password.to_vec(),
                    },
                );
                Ok(())
            });
            outcomes.push((user.to_string(), outcome));
        }
    });
    let results = outcomes
        .into_iter()
        .map(|(user, outcome)| {
            let result = AlterUserScramCredentialsResult::default().with_user(s(&user));
            let outcome = match (&applied, outcome) {
                (Err(e), Ok(())) => Err((ResponseError::UnknownServerError, e.clone())),
                (_, outcome) => outcome,
            };
            match outcome {
                Ok(()) => result,
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s(&message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// Every result of `request` refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn alter_refused(
    request: &AlterUserScramCredentialsRequest,
    message: String,
) -> AlterUserScramCredentialsResponse {
    let users = request
        .deletions
        .iter()
        .map(|d| d.name.clone())
        .chain(request.upsertions.iter().map(|u| u.name.clone()));
    let results = users
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(user)
                .with_error_code(ResponseError::RequestTimedOut.code())
                .with_error_message(Some(s(&message)))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// DescribeUserScramCredentials refused with REQUEST_TIMED_OUT (the controller could not be asked).
pub fn describe_refused(message: String) -> DescribeUserScramCredentialsResponse {
    DescribeUserScramCredentialsResponse::default()
        .with_error_code(ResponseError::RequestTimedOut.code())
        .with_error_message(Some(s(&message)))
}

/// Why the credentials file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ScramFileError {
    pub path: PathBuf,
    pub message: String,
}

/// The file in a single broker's data dir.
pub const SCRAM_FILE_NAME: &str = "scram-credentials.json";

/// A single broker's credentials: `scram-credentials.json`, rewritten atomically at each change.
#[derive(Debug)]
pub struct ScramFile {
    data_dir: PathBuf,
    credentials: Mutex<Credentials>,
}

impl ScramFile {
    /// Reads the file (none: no credentials).
    pub fn open(data_dir: &Path) -> Result<ScramFile, ScramFileError> {
        let path = data_dir.join(SCRAM_FILE_NAME);
        let bad = |message: String| ScramFileError {
            path: path.clone(),
            message,
        };
        let credentials: Credentials = checkpoint::read_json(&path, "SCRAM credentials")
            .map_err(&bad)?
            .unwrap_or_default();
        if let Some((user, m)) = credentials
            .iter()
            .find_map(|(u, c)| c.keys().find(|m| !known_mechanism(**m)).map(|m| (u, m)))
        {
            return Err(bad(format!("user {user}: unknown mechanism {m}")));
        }
        Ok(ScramFile {
            data_dir: data_dir.to_path_buf(),
            credentials: Mutex::new(credentials),
        })
    }
}

impl ScramStore for ScramFile {
    fn update_scram<T>(&self, f: impl FnOnce(&mut Credentials) -> T) -> Result<T, String> {
        let mut credentials = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        let before = credentials.clone();
        let out = f(&mut credentials);
        if *credentials != before {
            let text = serde_json::to_vec_pretty(&*credentials).map_err(|e| e.to_string());
            let written = text.and_then(|text| {
                crate::log::write_file_atomically(&self.data_dir, SCRAM_FILE_NAME, &text)
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = written {
                *credentials = before;
                tracing::error!(error = %e, "cannot store the SCRAM credentials");
                return Err(format!("cannot store the SCRAM credentials: {e}"));
            }
            tracing::info!(users = credentials.len(), "SCRAM credentials changed");
        }
        Ok(out)
    }

    fn scram(&self) -> Credentials {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
