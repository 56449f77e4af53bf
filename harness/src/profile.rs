//! Broker profiles: everything the harness knows about one broker, so that every node fault works
//! on any Kafka-compatible broker. A profile (TOML) says how to start a node (program, arguments,
//! working directory and environment as templates over the node's id, addresses, data directory
//! and the controller's address), how its settings are written (a config file in TOML or Java
//! properties, or none), what its defaults mean for the checker's explanations, its exit codes,
//! and which features it has (several nodes, replication, groups, idempotence, transactions,
//! replica dumps, the docker platform), so that a scenario needing a missing one is refused at
//! load with the reason. A node is ready when it answers a Kafka Metadata request; its data
//! directory is what lazyfs serves for a power loss.
//!
//! The built-in library is `harness/profiles/*.toml` (embedded); `kaos-broker` is the default. A
//! user's own profile is a file (`broker_profile = "path"` in a scenario, `--broker path.toml`).
//! How to write one: docs/profiles.md.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The profile a scenario runs on when it names none.
pub const DEFAULT: &str = "kaos-broker";

/// The built-in profiles, by name.
const LIBRARY: &[(&str, &str)] = &[
    ("kaos-broker", include_str!("../profiles/kaos-broker.toml")),
    ("tansu", include_str!("../profiles/tansu.toml")),
    (
        "tansu-memory",
        include_str!("../profiles/tansu-memory.toml"),
    ),
    (
        "tansu-postgres",
        include_str!("../profiles/tansu-postgres.toml"),
    ),
];

/// The names of the built-in profiles.
pub fn library() -> impl Iterator<Item = &'static str> {
    LIBRARY.iter().map(|(name, _)| *name)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The program: a path, or a bare name looked up beside the kaos binary, on PATH, then in
    /// ~/.cargo/bin.
    pub command: String,
    /// How to install the program, quoted when it is missing.
    #[serde(default)]
    pub install: String,
    /// The node id Kafka Metadata names a broker by: a template over `{k}` (1…N).
    #[serde(default = "default_node_id")]
    pub node_id: String,
    pub broker: NodeCommand,
    /// How to start the controller process of a cluster of several brokers; none: the profile
    /// has no separate controller.
    #[serde(default)]
    pub controller: Option<NodeCommand>,
    #[serde(default)]
    pub settings: Settings,
    /// What the broker does about a Kafka setting (its name) when the scenario does not set it,
    /// in words the checker's explanations quote.
    #[serde(default)]
    pub explains: BTreeMap<String, String>,
    /// Exit codes of the broker ("70") and what they mean.
    #[serde(default)]
    pub exit_codes: BTreeMap<String, ExitMeaning>,
    #[serde(default)]
    pub features: Features,
}

fn default_node_id() -> String {
    "{k}".into()
}

/// One kind of node: its arguments (templates) and how it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCommand {
    pub args: Vec<String>,
    /// Appended when the cluster has a controller process (e.g. `["--controller", "{controller}"]`).
    #[serde(default)]
    pub with_controller: Vec<String>,
    /// The working directory (a template); default the node's directory `nodes/<name>`.
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments that make the program validate the node's written settings before anything
    /// starts (exit 0: accepted; otherwise its stderr is the reason). None: not asked.
    #[serde(default)]
    pub check: Option<Vec<String>>,
    /// Arguments that make the program write every replica the stopped node holds as JSON lines
    /// (kaos-broker's `dump` format), for the checker's replica comparison. None: no dumps.
    #[serde(default)]
    pub dump: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub format: SettingsFormat,
    /// The file's name in the node's directory (`{config}` in templates).
    #[serde(default = "default_config_file")]
    pub file: String,
    /// Written for every broker unless the scenario sets the key; string values are templates,
    /// and one that expands to a whole number is written as a number.
    #[serde(default)]
    pub defaults: toml::Table,
    /// With format `none`: scenario settings that change nothing for a run on this broker, with
    /// the reason; any other setting is refused at load.
    #[serde(default)]
    pub ignored: BTreeMap<String, String>,
}

fn default_config_file() -> String {
    "config.toml".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsFormat {
    /// A TOML table of Kafka-named settings.
    #[default]
    Toml,
    /// Java properties (`key=value` lines), as Kafka's server.properties.
    Properties,
    /// The broker takes no settings file.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitMeaning {
    pub meaning: String,
    /// The broker stopped because it found itself wrong: the run is invalid.
    #[serde(default)]
    pub invalid: bool,
}

/// What the broker can do; a scenario that needs more is refused at load. A profile states each
/// one: absent means no.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Several brokers in one cluster.
    #[serde(default)]
    pub multi_node: bool,
    /// Topics with a replication factor above 1.
    #[serde(default)]
    pub replication: bool,
    /// Consumer groups (subscribe, committed offsets).
    #[serde(default)]
    pub groups: bool,
    /// Idempotent producers (InitProducerId, sequence numbers).
    #[serde(default)]
    pub idempotence: bool,
    /// Transactions.
    #[serde(default)]
    pub transactions: bool,
    /// The docker platform (an image of the program and the libraries it links, `FROM
    /// scratch`: a broker that needs more files than those, or `{dir}`, cannot run there).
    #[serde(default)]
    pub docker: bool,
    /// Every replica answers ListOffsets latest with its own log end offset when asked with
    /// Kafka's debugging replica id (-2), as Kafka does: what `nemesis.trigger_follower_lag_min`
    /// measures a follower's lag with.
    #[serde(default)]
    pub replica_offsets: bool,
}

/// What a scenario needs of its broker (the scenario module fills it in).
#[derive(Debug, Clone, Default)]
pub struct Needs {
    pub brokers: u32,
    pub controller: bool,
    pub replication_factor: i32,
    pub groups: bool,
    pub idempotence: bool,
    pub transactions: bool,
    pub docker: bool,
    /// `nemesis.trigger_follower_lag_min`: each replica's log end offset (`Features::replica_offsets`).
    pub replica_offsets: bool,
    /// The scenario's broker settings (every node's and per-node keys), by name.
    pub settings: Vec<String>,
}

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Result<Profile> {
        let Some((_, text)) = LIBRARY.iter().find(|(n, _)| *n == name) else {
            bail!(
                "no broker profile named {name:?}: the built-in ones are {}; a file of your own is `--broker path/to/profile.toml` (docs/profiles.md)",
                library().collect::<Vec<_>>().join(", ")
            );
        };
        Profile::parse(text, &format!("built-in profile {name}"))
    }

    /// A profile file.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading broker profile {}", path.display()))?;
        Profile::parse(&text, &format!("broker profile {}", path.display()))
    }

    /// A built-in name, or a path to a file (anything with a '/' or ending in `.toml`).
    pub fn named(name_or_path: &str) -> Result<Profile> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            Profile::load(Path::new(name_or_path))
        } else {
            Profile::builtin(name_or_path)
        }
    }

    /// Parses and checks a profile: every template names known variables, exit codes are
    /// numbers.
    pub fn parse(text: &str, origin: &str) -> Result<Profile> {
        let profile: Profile =
            toml::from_str(text).with_context(|| format!("{origin} is not valid"))?;
        profile
            .check()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(profile)
    }

    /// Every template of the profile, with where it is.
    fn templates(&self) -> Vec<(&str, &str)> {
        let mut templates: Vec<(&str, &str)> =
            vec![("command", &self.command), ("node_id", &self.node_id)];
        for (kind, node) in [
            ("broker", Some(&self.broker)),
            ("controller", self.controller.as_ref()),
        ] {
            let Some(node) = node else { continue };
            let lists = [&node.args, &node.with_controller];
            let optional = [node.check.as_ref(), node.dump.as_ref()];
            for arg in lists
                .into_iter()
                .chain(optional.into_iter().flatten())
                .flatten()
            {
                templates.push((kind, arg));
            }
            templates.extend(node.cwd.as_deref().map(|c| (kind, c)));
            templates.extend(node.env.values().map(|v| (kind, v.as_str())));
        }
        for v in self.settings.defaults.values() {
            if let toml::Value::String(s) = v {
                templates.push(("settings.defaults", s));
            }
        }
        templates
    }

    fn check(&self) -> Result<(), String> {
        let vars = Vars::example();
        for (place, template) in self.templates() {
            expand(template, &vars).map_err(|e| format!("{place}: {e}"))?;
        }
        if self.node_id_of(1).is_err() {
            return Err(format!(
                "node_id {:?} must expand to a number (a template over {{k}}, the node's number)",
                self.node_id
            ));
        }
        if let Some(code) = self.exit_codes.keys().find(|c| c.parse::<i32>().is_err()) {
            return Err(format!(
                "exit_codes: {code:?} is not an exit code (a number)"
            ));
        }
        if self.settings.format == SettingsFormat::None && !self.settings.defaults.is_empty() {
            return Err("settings.defaults: format \"none\" writes no settings file".into());
        }
        Ok(())
    }

    /// The Kafka node id of the broker numbered `k` (1…N).
    pub fn node_id_of(&self, k: u32) -> Result<u32> {
        let mut vars = Vars::default();
        vars.set("k", k);
        let text = expand(&self.node_id, &vars)?;
        text.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "profile {}: node_id {:?} expands to {text:?}, not a node id",
                self.name,
                self.node_id
            )
        })
    }

    /// The replica dumps, when the profile has them.
    pub fn has_dumps(&self) -> bool {
        self.broker.dump.is_some()
    }

    /// The environment variables the profile's templates take (`{env:NAME}`) that kaos's
    /// environment lacks: checked before a run, so that it does not start without them.
    pub fn missing_env(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .templates()
            .into_iter()
            .flat_map(|(_, t)| env_names(t))
            .filter(|name| std::env::var_os(name).is_none())
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// Whether this broker can run a scenario that needs `needs`; the reason when it cannot.
    pub fn admits(&self, needs: &Needs) -> Result<(), String> {
        let f = &self.features;
        let name = &self.name;
        let missing = |what: &str, feature: &str| {
            Err(format!("the scenario needs {what}, which broker profile {name} does not have (features.{feature} = false)"))
        };
        if needs.replica_offsets && !f.replica_offsets {
            return missing("each replica's log end offset (ListOffsets with replica id -2) for nemesis.trigger_follower_lag_min", "replica_offsets");
        }
        if needs.brokers > 1 && !f.multi_node {
            return missing(&format!("{} brokers", needs.brokers), "multi_node");
        }
        if needs.replication_factor > 1 && !f.replication {
            return missing(
                &format!(
                    "replication (topic.replication_factor = {})",
                    needs.replication_factor
                ),
                "replication",
            );
        }
        if needs.brokers > 1 && !needs.controller && self.controller.is_some() {
            return Err(format!("the scenario's {} brokers run without a controller process (cluster.controller = false), and broker profile {name} runs several brokers under its controller ([controller])", needs.brokers));
        }
        if needs.controller && self.controller.is_none() {
            return Err(format!("the scenario's cluster has a controller process, and broker profile {name} has none ([controller]; cluster.controller = false runs its brokers without one)"));
        }
        if needs.groups && !f.groups {
            return missing(
                "consumer groups (a consumer with subscribe or processing)",
                "groups",
            );
        }
        if needs.idempotence && !f.idempotence {
            return missing("idempotent producers (enable.idempotence)", "idempotence");
        }
        if needs.transactions && !f.transactions {
            return missing("transactions (transactional.id)", "transactions");
        }
        if needs.docker && !f.docker {
            return missing("the docker platform", "docker");
        }
        if self.settings.format == SettingsFormat::None {
            if let Some(key) = needs
                .settings
                .iter()
                .find(|k| !self.settings.ignored.contains_key(*k))
            {
                let hint = match self.explains.get(key) {
                    Some(what) => format!(" (what {name} does instead: {what})"),
                    None => String::new(),
                };
                return Err(format!("cluster setting {key:?}: broker profile {name} takes no settings, so the scenario's claim about it cannot be tested there{hint}"));
            }
        }
        Ok(())
    }

    /// What an exit status of this broker means ("invariant violated (exit 71)", "killed by
    /// signal SIGSEGV"), and whether it makes the run invalid.
    pub fn exit_meaning(&self, status: &std::process::ExitStatus) -> (String, bool) {
        match status
            .code()
            .and_then(|c| self.exit_codes.get(&c.to_string()).map(|m| (c, m)))
        {
            Some((code, m)) => (format!("{} (exit {code})", m.meaning), m.invalid),
            None => Profile::generic_exit_meaning(status),
        }
    }

    /// What an exit status means whatever the broker: a signal, 0, another code.
    pub fn generic_exit_meaning(status: &std::process::ExitStatus) -> (String, bool) {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return match nix::sys::signal::Signal::try_from(signal) {
                Ok(s) => (format!("killed by signal {s}"), false),
                Err(_) => (format!("killed by signal {signal}"), false),
            };
        }
        match status.code() {
            Some(0) => ("stopped (exit 0)".into(), false),
            Some(code) => (format!("exited with code {code}"), false),
            None => ("ended".into(), false),
        }
    }
}

/// Where a scenario's broker profile comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    /// `kaos run --broker NAME|PATH`: overrides the scenario.
    pub cli: Option<&'a str>,
    /// The scenario's `broker = "NAME"`.
    pub broker: Option<&'a str>,
    /// The scenario's `broker_profile = "PATH"`, relative to `scenario_dir`.
    pub broker_profile: Option<&'a str>,
    pub scenario_dir: Option<&'a Path>,
    /// `--broker-bin`: replaces the profile's program.
    pub program: Option<&'a Path>,
}

/// The broker a scenario runs on: `--broker`, else its `broker` or `broker_profile`, else the
/// default profile; with its program found.
pub fn resolve(choice: Choice<'_>) -> Result<Broker> {
    Broker::new(choose(choice)?, choice.program)
}

/// The profile `choice` names (its program not looked for yet).
pub fn choose(choice: Choice<'_>) -> Result<Profile> {
    Ok(match (choice.cli, choice.broker, choice.broker_profile) {
        (Some(cli), _, _) => Profile::named(cli)?,
        (None, Some(name), _) => Profile::builtin(name)?,
        (None, None, Some(path)) => {
            let dir = choice.scenario_dir.unwrap_or(Path::new("."));
            Profile::load(&dir.join(path))?
        }
        (None, None, None) => Profile::builtin(DEFAULT)?,
    })
}

/// A profile with its program found: what the platforms start.
#[derive(Debug, Clone)]
pub struct Broker {
    pub profile: Profile,
    pub program: PathBuf,
}

impl Broker {
    /// Finds the profile's program (`program` replaces it: `--broker-bin`).
    pub fn new(profile: Profile, program: Option<&Path>) -> Result<Broker> {
        let missing = profile.missing_env();
        if !missing.is_empty() {
            bail!(
                "broker profile {} takes {} from the environment ({{env:NAME}} in its templates), and it is not set{}",
                profile.name,
                missing.join(", "),
                install_hint(&profile)
            );
        }
        let program = match program {
            Some(p) => p.to_path_buf(),
            None => find_program(&profile)?,
        };
        if !program.is_file() {
            bail!(
                "broker profile {}: program {} not found{}",
                profile.name,
                program.display(),
                install_hint(&profile)
            );
        }
        Ok(Broker { profile, program })
    }

    /// The default profile, its program beside kaos (or `program`).
    pub fn default_with(program: Option<&Path>) -> Result<Broker> {
        Broker::new(Profile::builtin(DEFAULT)?, program)
    }

    /// How node `role` starts: program, arguments, working directory and environment.
    pub fn command(&self, role: NodeRole, vars: &Vars, with_controller: bool) -> Result<Launch> {
        let node = self.node(role)?;
        let mut args = expand_all(&node.args, vars)?;
        if with_controller {
            args.extend(expand_all(&node.with_controller, vars)?);
        }
        let cwd = match &node.cwd {
            Some(c) => Some(PathBuf::from(expand(c, vars)?)),
            None => None,
        };
        let env = node
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), expand(v, vars)?)))
            .collect::<Result<_>>()?;
        Ok(Launch {
            program: self.program.clone(),
            args,
            cwd,
            env,
        })
    }

    /// The `check` arguments of node `role`, when the profile has them.
    pub fn check_args(&self, role: NodeRole, vars: &Vars) -> Result<Option<Vec<String>>> {
        match &self.node(role)?.check {
            Some(args) => expand_all(args, vars).map(Some),
            None => Ok(None),
        }
    }

    /// The `dump` arguments of a broker, when the profile has them.
    pub fn dump_args(&self, vars: &Vars) -> Result<Option<Vec<String>>> {
        match &self.profile.broker.dump {
            Some(args) => expand_all(args, vars).map(Some),
            None => Ok(None),
        }
    }

    fn node(&self, role: NodeRole) -> Result<&NodeCommand> {
        match role {
            NodeRole::Broker => Ok(&self.profile.broker),
            NodeRole::Controller => self.profile.controller.as_ref().with_context(|| {
                format!("broker profile {} has no [controller]", self.profile.name)
            }),
        }
    }

    /// The text of node settings `settings` (the scenario's, then the profile's defaults for a
    /// broker) in the profile's format; None with format `none`.
    pub fn settings_text(
        &self,
        role: NodeRole,
        settings: &toml::Table,
        vars: &Vars,
    ) -> Result<Option<String>> {
        let s = &self.profile.settings;
        let mut table = settings.clone();
        if role == NodeRole::Broker {
            for (key, value) in &s.defaults {
                if table.contains_key(key) {
                    continue;
                }
                let value = match value {
                    toml::Value::String(t) => {
                        let text = expand(t, vars)?;
                        match text.parse::<i64>() {
                            Ok(n) => toml::Value::Integer(n),
                            Err(_) => toml::Value::String(text),
                        }
                    }
                    other => other.clone(),
                };
                table.insert(key.clone(), value);
            }
        }
        Ok(match s.format {
            SettingsFormat::Toml => {
                Some(toml::to_string(&table).context("writing node settings as TOML")?)
            }
            SettingsFormat::Properties => Some(properties(&table)),
            SettingsFormat::None => None,
        })
    }
}

/// Java properties: one `key=value` line per setting (strings as they are).
fn properties(table: &toml::Table) -> String {
    table
        .iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => format!("{k}={s}\n"),
            other => format!("{k}={other}\n"),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Broker,
    Controller,
}

/// A node's command line, ready to spawn.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
}

/// The template variables of one node (`{name}` in a template).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<&'static str, String>,
    /// Checking a profile's templates at load: `{env:NAME}` need not be set yet.
    example: bool,
}

/// The prefix of a template name that reads kaos's environment: `{env:NAME}`.
const ENV_PREFIX: &str = "env:";

/// The environment variables `template` names (`{env:NAME}`).
fn env_names(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(k) = rest.find("{env:") {
        // `{{env:` is a literal brace.
        let escaped = k > 0 && rest[..k].ends_with('{');
        let tail = &rest[k + 1..];
        match tail.find('}') {
            Some(end) if !escaped => names.push(tail[ENV_PREFIX.len()..end].to_owned()),
            _ => {}
        }
        rest = tail;
    }
    names
}

/// Every variable a template may name, and what it is.
pub const VARIABLES: &[(&str, &str)] = &[
    ("k", "the node's number, 1…N (brokers)"),
    (
        "node_id",
        "the node's Kafka node id (the profile's node_id)",
    ),
    ("name", "the node's name: n1…nN, controller"),
    ("listen", "host:port the node listens on"),
    ("listen_host", "its host"),
    ("listen_port", "its port"),
    (
        "advertised",
        "host:port the broker advertises to clients (its proxy's with link faults)",
    ),
    ("advertised_host", "its host"),
    ("advertised_port", "its port"),
    (
        "aux_listen",
        "a second free host:port of the node's own (e.g. a KRaft controller listener)",
    ),
    (
        "voters",
        "every broker's node_id@aux_listen, comma-separated (KRaft's controller.quorum.voters)",
    ),
    (
        "aux_peers",
        "every broker's aux_listen, comma-separated (Redpanda's seeds)",
    ),
    (
        "controller",
        "the controller process's host:port (only with a controller)",
    ),
    ("brokers", "how many brokers the cluster has"),
    (
        "brokers_up_to_3",
        "that count, at most 3 (Kafka's internal topics' replication factor)",
    ),
    (
        "data_dir",
        "the node's data directory: what lazyfs serves for a power loss",
    ),
    (
        "dir",
        "the node's directory nodes/<name> (its log, config file and data directory)",
    ),
    ("config", "the node's settings file"),
];

impl Vars {
    pub fn set(&mut self, name: &'static str, value: impl ToString) {
        self.values.insert(name, value.to_string());
    }

    /// Every variable, with a sample value (to check a profile's templates at load).
    fn example() -> Vars {
        let mut v = Vars {
            example: true,
            ..Vars::default()
        };
        for (name, _) in VARIABLES {
            v.set(name, "1");
        }
        v
    }
}

/// `template` with each `{name}` replaced by its value; `{{` and `}}` are literal braces. A name
/// that is not a variable, or one this node has no value for, is an error that names it.
pub fn expand(template: &str, vars: &Vars) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(k) = rest.find(['{', '}']) {
        out.push_str(&rest[..k]);
        let tail = &rest[k..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            bail!("template {template:?}: a lone '}}' (write '}}}}' for a brace)");
        }
        let Some(end) = tail.find('}') else {
            bail!("template {template:?}: '{{' without its '}}'");
        };
        let name = &tail[1..end];
        if let Some(env) = name.strip_prefix(ENV_PREFIX) {
            if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("template {template:?}: {{{name}}} does not name an environment variable (letters, digits, _)");
            }
            match std::env::var(env) {
                Ok(value) => out.push_str(&value),
                Err(_) if vars.example => out.push_str("1"),
                Err(_) => bail!("template {template:?}: the environment variable {env} is not set"),
            }
            rest = &tail[end + 1..];
            continue;
        }
        match vars.values.get(name) {
            Some(value) => out.push_str(value),
            None if VARIABLES.iter().any(|(n, _)| *n == name) => {
                bail!("template {template:?}: {{{name}}} has no value for this node")
            }
            None => bail!(
                "template {template:?}: {{{name}}} is not a variable (known: {})",
                VARIABLES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_all(templates: &[String], vars: &Vars) -> Result<Vec<String>> {
    templates.iter().map(|t| expand(t, vars)).collect()
}

/// The profile's program: a path as written, or a bare name beside the kaos binary, on PATH,
/// then in ~/.cargo/bin (where `cargo install` puts it).
fn find_program(profile: &Profile) -> Result<PathBuf> {
    let command = &profile.command;
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        places.push(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        places.extend(std::env::split_paths(&path));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    places.extend(cargo_home.map(|c| c.join("bin")));
    places
        .iter()
        .map(|dir| dir.join(command))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "broker profile {}: program {command:?} not found beside kaos, on PATH or in ~/.cargo/bin{}",
                profile.name,
                install_hint(profile)
            )
        })
}

fn install_hint(profile: &Profile) -> String {
    if profile.install.is_empty() {
        String::new()
    } else {
        format!(" (install it: {})", profile.install)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses_and_kaos_broker_is_the_default() {
        for name in library() {
            let p = Profile::builtin(name).expect(name);
            assert_eq!(p.name, name, "a built-in profile's name is its file's");
        }
        let default = Profile::builtin(DEFAULT).expect("default");
        assert!(default.features.replication && default.has_dumps());
        let tansu = Profile::builtin("tansu").expect("tansu");
        assert_eq!(tansu.node_id_of(3).expect("id"), 111);
        assert_eq!(default.node_id_of(3).expect("id"), 3);
        let err = Profile::builtin("kafka").expect_err("unknown").to_string();
        assert!(err.contains("kaos-broker, tansu"), "{err}");
    }

    #[test]
    fn templates_expand_and_name_what_is_wrong() {
        let mut vars = Vars::default();
        vars.set("listen", "127.0.0.1:9");
        assert_eq!(
            expand("tcp://{listen}/{{x}}", &vars).expect("ok"),
            "tcp://127.0.0.1:9/{x}"
        );
        let err = expand("{colour}", &vars).expect_err("unknown").to_string();
        assert!(err.contains("{colour} is not a variable"), "{err}");
        let err = expand("{controller}", &vars)
            .expect_err("no value")
            .to_string();
        assert!(err.contains("has no value for this node"), "{err}");
        assert!(expand("{listen", &vars).is_err());
        let bad = "name = \"x\"\ncommand = \"x\"\n[broker]\nargs = [\"--port\", \"{prot}\"]\n";
        let err = format!("{:#}", Profile::parse(bad, "p").expect_err("typo"));
        assert!(err.contains("broker") && err.contains("{prot}"), "{err}");
    }

    #[test]
    fn a_profile_refuses_what_it_lacks_with_the_reason() {
        let tansu = Profile::builtin("tansu").expect("tansu");
        let one = Needs {
            brokers: 1,
            replication_factor: 1,
            ..Needs::default()
        };
        tansu.admits(&one).expect("one node, no settings");
        let rf = Needs {
            brokers: 3,
            controller: true,
            replication_factor: 3,
            ..one.clone()
        };
        let err = tansu.admits(&rf).expect_err("three brokers");
        assert!(
            err.contains("3 brokers") && err.contains("multi_node"),
            "{err}"
        );
        let flush = Needs {
            settings: vec!["flush.messages".into()],
            ..one.clone()
        };
        let err = tansu.admits(&flush).expect_err("a setting");
        assert!(
            err.contains("\"flush.messages\"") && err.contains("synchronous=NORMAL"),
            "{err}"
        );
        let ignored = Needs {
            settings: vec!["num.partitions".into()],
            ..one.clone()
        };
        tansu.admits(&ignored).expect("an ignored setting");
        let docker = Needs {
            docker: true,
            ..one.clone()
        };
        tansu.admits(&docker).expect("tansu runs in containers");
        // tansu over one shared database: several brokers, no controller, not on docker.
        let postgres = Profile::builtin("tansu-postgres").expect("tansu-postgres");
        assert!(postgres
            .admits(&docker)
            .expect_err("docker")
            .contains("features.docker"));
        let default = Profile::builtin(DEFAULT).expect("default");
        default.admits(&rf).expect("kaos-broker replicates");
        let lag = Needs {
            replica_offsets: true,
            ..rf.clone()
        };
        default
            .admits(&lag)
            .expect("kaos-broker answers ListOffsets from every replica");
        let err = tansu.admits(&lag).expect_err("no follower to measure");
        assert!(
            err.contains("trigger_follower_lag_min") && err.contains("features.replica_offsets"),
            "{err}"
        );
        // Several brokers without a controller process: tansu over one shared database, not
        // kaos-broker (whose brokers register with its controller); and the other way round.
        let shared = Needs {
            brokers: 2,
            controller: false,
            ..one.clone()
        };
        postgres
            .admits(&shared)
            .expect("two tansu brokers over one database");
        let err = default
            .admits(&shared)
            .expect_err("kaos-broker needs its controller");
        assert!(err.contains("cluster.controller = false"), "{err}");
        let with_controller = Needs {
            controller: true,
            ..shared
        };
        let err = postgres
            .admits(&with_controller)
            .expect_err("tansu has no controller");
        assert!(err.contains("has none ([controller]"), "{err}");
    }

    #[test]
    fn a_template_takes_an_environment_variable_and_a_missing_one_is_refused_before_a_run() {
        let vars = Vars::default();
        // PATH is set wherever tests run.
        let path = std::env::var("PATH").expect("PATH");
        assert_eq!(
            expand("x{env:PATH}y", &vars).expect("set"),
            format!("x{path}y")
        );
        let err = expand("{env:KAOS_TEST_SURELY_UNSET_7}", &vars)
            .expect_err("unset")
            .to_string();
        assert!(
            err.contains("the environment variable KAOS_TEST_SURELY_UNSET_7 is not set"),
            "{err}"
        );
        assert!(expand("{env:a b}", &vars).is_err(), "not a variable name");
        assert_eq!(
            env_names("--url {env:A_1} {{env:LITERAL}} {env:B}"),
            vec!["A_1".to_owned(), "B".to_owned()]
        );
        // A profile may name one that is not set at load; a run refuses it before anything
        // starts, naming it.
        let text = "name = \"x\"\ncommand = \"/bin/true\"\n[broker]\nargs = [\"{env:KAOS_TEST_SURELY_UNSET_7}\"]\n";
        let p = Profile::parse(text, "p").expect("parses");
        assert_eq!(p.missing_env(), vec!["KAOS_TEST_SURELY_UNSET_7".to_owned()]);
        let err = format!("{:#}", Broker::new(p, None).expect_err("unset"));
        assert!(
            err.contains("takes KAOS_TEST_SURELY_UNSET_7 from the environment"),
            "{err}"
        );
    }

    #[test]
    fn settings_are_written_in_the_profile_s_format() {
        let mut p = Profile::builtin(DEFAULT).expect("default");
        let mut vars = Vars::default();
        vars.set("advertised", "127.0.0.1:7");
        vars.set("brokers_up_to_3", 2);
        let broker = Broker {
            profile: p.clone(),
            program: PathBuf::from("/bin/true"),
        };
        let mut scenario = toml::Table::new();
        scenario.insert("flush.messages".into(), toml::Value::Integer(1));
        let text = broker
            .settings_text(NodeRole::Broker, &scenario, &vars)
            .expect("toml")
            .expect("a file");
        let t: toml::Table = toml::from_str(&text).expect("toml");
        assert_eq!(t["advertised.listener"].as_str(), Some("127.0.0.1:7"));
        assert_eq!(t["offsets.topic.replication.factor"].as_integer(), Some(2));
        assert_eq!(t["flush.messages"].as_integer(), Some(1));
        p.settings.format = SettingsFormat::Properties;
        let broker = Broker {
            profile: p,
            program: PathBuf::from("/bin/true"),
        };
        let text = broker
            .settings_text(NodeRole::Broker, &scenario, &vars)
            .expect("props")
            .expect("a file");
        assert!(
            text.contains("advertised.listener=127.0.0.1:7\n")
                && text.contains("flush.messages=1\n"),
            "{text}"
        );
    }

    #[test]
    fn exit_codes_are_named_by_the_profile() {
        use std::os::unix::process::ExitStatusExt;
        let p = Profile::builtin(DEFAULT).expect("default");
        let code = |c: i32| p.exit_meaning(&std::process::ExitStatus::from_raw(c << 8));
        assert_eq!(code(71), ("invariant violated (exit 71)".into(), true));
        assert_eq!(
            code(74),
            ("I/O error on unclean stop (exit 74)".into(), false)
        );
        assert_eq!(code(3), ("exited with code 3".into(), false));
        let tansu = Profile::builtin("tansu").expect("tansu");
        assert_eq!(
            tansu
                .exit_meaning(&std::process::ExitStatus::from_raw(71 << 8))
                .1,
            false
        );
        let signalled = std::process::ExitStatus::from_raw(11);
        assert_eq!(p.exit_meaning(&signalled).0, "killed by signal SIGSEGV");
    }
}
