//! The configuration file (TOML), environment overrides and validation. One module per
//! section (`config/<section>.rs`) holds its keys, defaults and checks; this module puts them
//! together, reads the file and the environment, and names the source of a bad value.
//!
//! Every key can also be set from the environment: `PIPEWATCH_<SECTION>__<KEY>` (double
//! underscore between levels), e.g. `PIPEWATCH_INGEST__WRITERS=4` or `PIPEWATCH_SERVER__LISTEN`;
//! `PIPEWATCH_SCRAPE_CONFIGS` takes the jobs as a TOML array of inline tables.
//! `DATABASE_URL` is honoured as `database.url` and `PIPEWATCH_SITE_ROOT` (the variable
//! `scripts/build-site.sh` builds into) as `server.site_root`; the long form wins when both are
//! set. Errors name the key, the environment variable that set it, and how to fix it.

mod alerting;
mod analysis;
mod auth;
mod database;
mod duration;
mod ingest;
mod limits;
mod notifications;
mod oncall;
mod otlp;
mod query;
mod receivers;
mod scrape;
mod server;

pub use self::alerting::{
    check_rules as check_rule_file, AlertingConfig, Route, RouteConfig, RuleSource,
};
pub use self::analysis::{AnalysisConfig, DriftReference, ReferenceWindow};
pub use self::auth::{AuthConfig, ResolvedToken, TokenConfig, RECEIVER_NAMES};
pub use self::database::DatabaseConfig;
pub use self::ingest::IngestConfig;
pub use self::limits::LimitsConfig;
pub use self::notifications::{
    ChannelConfig, EmailConfig, NotificationsConfig, SlackConfig, SmtpTls, WebhookConfig,
};
pub use self::oncall::OncallConfig;
pub use self::otlp::{OtlpConfig, SignalConfig};
pub use self::query::QueryConfig;
pub use self::receivers::{ReceiversConfig, DEFAULT_MAX_DECOMPRESSED_BYTES};
pub use self::scrape::{FileSdConfig, HttpSdConfig, ScrapeConfig, StaticConfig};
pub use self::server::ServerConfig;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ingest: IngestConfig,
    pub receivers: ReceiversConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub otlp: OtlpConfig,
    pub query: QueryConfig,
    pub notifications: NotificationsConfig,
    pub alerting: AlertingConfig,
    pub oncall: OncallConfig,
    pub analysis: AnalysisConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// Environment variables that set a key under a name other than `PIPEWATCH_<SECTION>__<KEY>`.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("PIPEWATCH_SITE_ROOT", "server.site_root"),
];

/// Which environment variable set which key (`"ingest.writers"` -> `"PIPEWATCH_INGEST__WRITERS"`),
/// so an error about the key can say where its value came from.
pub type EnvSources = BTreeMap<String, String>;

impl Config {
    /// Loads the file (if any), applies environment overrides, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut value = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|e| anyhow!("config file {} is not valid TOML: {e}", p.display()))?
            }
            None => toml::Table::new(),
        };
        let sources = apply_env(&mut value, std::env::vars())?;
        let origin = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        let cfg = Self::from_table(value, &origin, &sources)?;
        cfg.check_references()
            .map_err(|e| anyhow!("{origin}: {e}{}", env_note(&e.to_string(), &sources)))?;
        Ok(cfg)
    }

    /// Checks between sections: every channel `[alerting]` names is configured in
    /// `[notifications.channels]`.
    pub fn check_references(&self) -> Result<()> {
        let channels: Vec<&str> = self
            .notifications
            .channels
            .keys()
            .map(String::as_str)
            .collect();
        self.alerting.check_channels(&channels)
    }

    pub fn from_toml_str(text: &str) -> Result<Config> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| anyhow!("config is not valid TOML: {e}"))?;
        let cfg = Self::from_table(table, "config", &EnvSources::new())?;
        cfg.check_references()?;
        Ok(cfg)
    }

    fn from_table(table: toml::Table, origin: &str, sources: &EnvSources) -> Result<Config> {
        let de = toml::Value::Table(table);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let msg = format!("{origin}: key `{path}`: {}", e.into_inner());
            anyhow!("{msg}{}", env_note(&msg, sources))
        })?;
        cfg.validate()
            .map_err(|e| anyhow!("{e}{}", env_note(&e.to_string(), sources)))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        self.server.validate()?;
        self.database.validate()?;
        self.ingest.validate()?;
        self.receivers.validate()?;
        self.auth.validate()?;
        self.otlp.validate()?;
        self.query.validate(self.server.request_timeout)?;
        self.notifications.validate()?;
        self.alerting.validate()?;
        self.analysis.validate()?;
        scrape::validate(&self.scrape_configs)
    }

    /// Expands the static configs into concrete scrape targets.
    pub fn scrape_targets(&self) -> Vec<collectors::scrape::ScrapeTarget> {
        let mut out = Vec::new();
        for job in &self.scrape_configs {
            for sc in &job.static_configs {
                for target in &sc.targets {
                    out.push(collectors::scrape::ScrapeTarget {
                        job: job.job_name.clone(),
                        url: format!("{}://{}{}", job.scheme, target, job.metrics_path),
                        labels: model::Labels::from_pairs(sc.labels.clone()),
                        interval: job.scrape_interval,
                        timeout: job.scrape_timeout,
                    });
                }
            }
        }
        out
    }
}

/// " (set by environment variable X)" when `message` names a key (or its section) that came
/// from the environment.
fn env_note(message: &str, sources: &EnvSources) -> String {
    let named: Vec<&str> = sources
        .iter()
        .filter(|(key, _)| {
            let section = key.split('.').next().unwrap_or(key);
            message.contains(&format!("`{key}`"))
                || message.contains(&format!("`{key}."))
                || message.contains(&format!("`{section}`"))
        })
        .map(|(_, var)| var.as_str())
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!(" (set by environment variable {})", named.join(", "))
    }
}

/// Applies `PIPEWATCH_A__B=value`, `DATABASE_URL` and `PIPEWATCH_SITE_ROOT` onto the TOML tree,
/// and returns which variable set which key.
///
/// A key whose default is text (addresses, paths, URLs) takes the value as it is, so
/// `PIPEWATCH_SERVER__DATA_DIR=2024` is the folder "2024"; for other keys a value that parses as
/// a TOML literal (number, bool, array, inline table) is taken as such, anything else as text
/// (durations like `15s`).
pub fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<EnvSources> {
    let defaults = to_table(&Config::default());
    let mut settings: Vec<(bool, String, Vec<String>, String)> = Vec::new();
    for (k, v) in vars {
        let (is_alias, path): (bool, Vec<String>) =
            if let Some((_, key)) = ENV_ALIASES.iter().find(|(var, _)| *var == k) {
                (true, key.split('.').map(String::from).collect())
            } else if let Some(rest) = k.strip_prefix("PIPEWATCH_") {
                (
                    false,
                    rest.split("__").map(|p| p.to_ascii_lowercase()).collect(),
                )
            } else {
                continue;
            };
        // One level names a top-level key that is not a section (`PIPEWATCH_SCRAPE_CONFIGS`);
        // anything else of one level is not a config key (PIPEWATCH_CONFIG, PIPEWATCH_LOG, ...).
        let top_level_key =
            path.len() == 1 && defaults.get(&path[0]).is_some_and(|d| !d.is_table());
        if (path.len() < 2 && !top_level_key) || path.iter().any(|p| p.is_empty()) {
            continue;
        }
        settings.push((is_alias, k, path, v));
    }
    // Aliases first, so PIPEWATCH_DATABASE__URL wins over DATABASE_URL whatever the order of
    // the environment.
    settings.sort_by_key(|(is_alias, ..)| !*is_alias);
    let mut sources = EnvSources::new();
    for (_, k, path, v) in settings {
        let default_is_text = lookup(&defaults, &path).is_some_and(|d| d.is_str());
        let value = if default_is_text {
            toml::Value::String(v.clone())
        } else {
            format!("v = {v}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(v.clone()))
        };
        for i in 1..path.len() {
            if lookup(&defaults, &path[..i]).is_some_and(|d| !d.is_table()) {
                bail!(
                    "environment variable {k}: `{}` is a key, not a section, so it has no `{}`; set {} instead",
                    path[..i].join("."),
                    path[i..].join("."),
                    env_name(&path[..i])
                );
            }
        }
        let mut cur = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = cur
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = entry.as_table_mut().ok_or_else(|| {
                anyhow!(
                    "environment variable {k}: `{part}` is not a section, so it has no key `{}`",
                    path[path.len() - 1]
                )
            })?;
        }
        cur.insert(path[path.len() - 1].clone(), value);
        sources.insert(path.join("."), k);
    }
    Ok(sources)
}

/// `PIPEWATCH_SERVER__LISTEN` for `["server", "listen"]`.
fn env_name(path: &[String]) -> String {
    format!("PIPEWATCH_{}", path.join("__").to_ascii_uppercase())
}

/// The config as a TOML tree (what the defaults look like as a file).
fn to_table(c: &Config) -> toml::Table {
    match toml::Value::try_from(c) {
        Ok(toml::Value::Table(t)) => t,
        other => panic!("a config serialises to a table, got {other:?}"),
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        lookup(v.as_table()?, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn err(text: &str) -> String {
        format!("{:#}", Config::from_toml_str(text).unwrap_err())
    }

    fn from_env(vars: &[(&str, &str)]) -> Result<Config> {
        let mut t = toml::Table::new();
        let sources = apply_env(
            &mut t,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )?;
        Config::from_table(t, "env", &sources)
    }

    /// `section.key` for every key the defaults have (arrays of tables count as one key).
    fn default_keys() -> Vec<String> {
        let d = to_table(&Config::default());
        let mut keys = Vec::new();
        for (section, v) in &d {
            match v.as_table() {
                Some(t) => keys.extend(t.keys().map(|k| format!("{section}.{k}"))),
                None => keys.push(section.clone()),
            }
        }
        keys
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.server.listen.port(), 9090);
        assert!(c.database.url.is_empty());
        assert_eq!(c.receivers.max_decompressed_bytes, 32 << 20);
    }

    #[test]
    fn unknown_key_is_named_with_its_section_and_the_keys_that_exist() {
        let e = err("[ingest]\nwritters = 3\n");
        // The path comes from the deserializer, not from the input: `ingest.` is only in the
        // message if the section was tracked, and the list of valid keys only if the schema
        // was consulted.
        assert!(e.contains("key `ingest.writters`"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        assert!(e.contains("`writers`"), "no list of valid keys in: {e}");
        assert!(
            e.contains("`flush_interval`"),
            "no list of valid keys in: {e}"
        );
    }

    #[test]
    fn bad_duration_names_the_key_and_the_format() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"fast\"\n");
        assert!(e.contains("scrape_configs[0].scrape_interval"), "{e}");
        assert!(e.contains("\"15s\""), "{e}");
        let e = err("[server]\nrequest_timeout = 30\n");
        assert!(
            e.contains("server.request_timeout") && e.contains("\"15s\""),
            "{e}"
        );
        let c = Config::from_toml_str("[ingest]\nflush_interval = \"1m 30s\"\n").unwrap();
        assert_eq!(c.ingest.flush_interval, Duration::from_secs(90));
    }

    #[test]
    fn timeout_longer_than_interval_is_refused() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nscrape_interval = \"5s\"\nscrape_timeout = \"10s\"\n");
        assert!(e.contains("scrape_configs[0].scrape_timeout"), "{e}");
    }

    #[test]
    fn bad_target_is_named() {
        let e = err("[[scrape_configs]]\njob_name = \"a\"\nstatic_configs = [{ targets = [\"http://x:1/metrics\"] }]\n");
        assert!(
            e.contains("scrape_configs[0].static_configs[0].targets[0]"),
            "{e}"
        );
    }

    #[test]
    fn every_section_validates_its_keys_by_name() {
        for (toml, key) in [
            ("[server]\nmax_connections = 1\n", "server.max_connections"),
            (
                "[server]\nheader_read_timeout = \"0s\"\n",
                "server.header_read_timeout",
            ),
            (
                "[server]\nrequest_timeout = \"10ms\"\n",
                "server.request_timeout",
            ),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            (
                "[database]\nretention_days = 0\n",
                "database.retention_days",
            ),
            (
                "[database]\ncompact_after = \"30d\"\n",
                "database.compact_after",
            ),
            ("[ingest]\nwriters = 0\n", "ingest.writers"),
            (
                "[ingest]\nbatch_max_samples = 10\nqueue_capacity_samples = 5\n",
                "ingest.queue_capacity_samples",
            ),
            (
                "[ingest]\nqueue_max_bytes = 1000\n",
                "ingest.queue_max_bytes",
            ),
            ("[ingest]\nqueue_max_bytes = -1\n", "ingest.queue_max_bytes"),
            (
                "[receivers]\nmax_body_bytes = 10\n",
                "receivers.max_body_bytes",
            ),
            (
                "[otlp]\nmin_log_evidence_severity = \"LOUD\"\n",
                "otlp.min_log_evidence_severity",
            ),
            ("[otlp]\nmax_series = 0\n", "otlp.max_series"),
            ("[query]\ntimeout = \"0s\"\n", "query.timeout"),
            ("[auth]\nanonymous_role = \"root\"\n", "auth.anonymous_role"),
            (
                "[auth]\nsession_lifetime = \"10s\"\n",
                "auth.session_lifetime",
            ),
            (
                "[auth]\nlogin_max_failures = 0\n",
                "auth.login_max_failures",
            ),
            ("[auth]\nlogin_backoff = \"0s\"\n", "auth.login_backoff"),
            ("[query]\ntimeout = \"5m\"\n", "query.timeout"),
            ("[query]\nmax_samples = 0\n", "query.max_samples"),
            (
                "[query]\nmax_series_per_selector = 0\n",
                "query.max_series_per_selector",
            ),
            ("[query]\nmax_series = 0\n", "query.max_series"),
            ("[query]\nlookback_delta = \"0s\"\n", "query.lookback_delta"),
            ("[query]\nmax_points = 0\n", "query.max_points"),
            ("[query]\nlookback_delta = 300\n", "query.lookback_delta"),
            (
                "[otlp]\nslow_span_threshold = \"0s\"\n",
                "otlp.slow_span_threshold",
            ),
            ("[analysis]\ninterval = \"0s\"\n", "analysis.interval"),
            ("[analysis]\nhistory = \"5m\"\n", "analysis.history"),
            (
                "[analysis]\ndrift_window = \"1s\"\n",
                "analysis.drift_window",
            ),
            (
                "[analysis]\ndrift_window = \"2h\"\ndrift_reference = \"1h\"\n",
                "analysis.drift_reference",
            ),
            (
                "[analysis]\nmin_severity = \"loud\"\n",
                "analysis.min_severity",
            ),
            (
                "[analysis]\nexclude = [\"{job=\\\"\\\"}\"]\n",
                "analysis.exclude[0]",
            ),
            (
                "[[analysis.drift_references]]\ndataset = \"d\"\n",
                "analysis.drift_references[0]",
            ),
            (
                "[[analysis.drift_references]]\nfrom = \"2026-11-08T00:00:00Z\"\nto = \"2026-11-01T00:00:00Z\"\n",
                "analysis.drift_references[0]",
            ),
            (
                "[[analysis.drift_references]]\nfrom = \"last week\"\nto = \"2026-11-01T00:00:00Z\"\n",
                "analysis.drift_references[0].from",
            ),
            (
                "[[analysis.drift_references]]\ntrailing = \"10s\"\n",
                "analysis.drift_references[0].trailing",
            ),
        ] {
            let e = err(toml);
            assert!(e.contains(&format!("`{key}`")), "{toml:?}: {e}");
        }
        // A database URL may hold a password: the message must not repeat it.
        let e = err("[database]\nurl = \"mysql://u:hunter2@h/x\"\n");
        assert!(!e.contains("hunter2"), "{e}");
    }

    /// One row per key: the variable, a valid non-default value, and what the loaded config
    /// must then hold. `every_key_has_a_row` keeps this table complete.
    type EnvRow = (&'static str, &'static str, fn(&Config) -> bool);
    const ENV_TABLE: &[EnvRow] = &[
        ("PIPEWATCH_SERVER__LISTEN", "0.0.0.0:9191", |c| {
            c.server.listen.to_string() == "0.0.0.0:9191"
        }),
        ("PIPEWATCH_SERVER__DATA_DIR", "2024", |c| {
            c.server.data_dir == Path::new("2024")
        }),
        ("PIPEWATCH_SERVER__SITE_ROOT", "/srv/site", |c| {
            c.server.site_root == Path::new("/srv/site")
        }),
        ("PIPEWATCH_SERVER__SHUTDOWN_TIMEOUT", "5s", |c| {
            c.server.shutdown_timeout == Duration::from_secs(5)
        }),
        ("PIPEWATCH_SERVER__HEADER_READ_TIMEOUT", "3s", |c| {
            c.server.header_read_timeout == Duration::from_secs(3)
        }),
        ("PIPEWATCH_SERVER__REQUEST_TIMEOUT", "2m", |c| {
            c.server.request_timeout == Duration::from_secs(120)
        }),
        ("PIPEWATCH_SERVER__MAX_CONNECTIONS", "64", |c| {
            c.server.max_connections == 64
        }),
        ("PIPEWATCH_DATABASE__URL", "postgres://u@h:5432/db", |c| {
            c.database.url == "postgres://u@h:5432/db"
        }),
        ("PIPEWATCH_DATABASE__RETENTION_DAYS", "7", |c| {
            c.database.retention_days == 7
        }),
        ("PIPEWATCH_DATABASE__COMPACT_AFTER", "1h", |c| {
            c.database.compact_after == Duration::from_secs(3600)
        }),
        ("PIPEWATCH_DATABASE__MAINTENANCE_INTERVAL", "1m", |c| {
            c.database.maintenance_interval == Duration::from_secs(60)
        }),
        ("PIPEWATCH_INGEST__QUEUE_CAPACITY_SAMPLES", "100000", |c| {
            c.ingest.queue_capacity_samples == 100_000
        }),
        ("PIPEWATCH_INGEST__QUEUE_MAX_BYTES", "33554432", |c| {
            c.ingest.queue_max_bytes == 32 << 20
        }),
        ("PIPEWATCH_INGEST__BATCH_MAX_SAMPLES", "1000", |c| {
            c.ingest.batch_max_samples == 1000
        }),
        ("PIPEWATCH_INGEST__FLUSH_INTERVAL", "250ms", |c| {
            c.ingest.flush_interval == Duration::from_millis(250)
        }),
        ("PIPEWATCH_INGEST__FLUSH_IDLE", "10ms", |c| {
            c.ingest.flush_idle == Duration::from_millis(10)
        }),
        ("PIPEWATCH_INGEST__WRITERS", "4", |c| c.ingest.writers == 4),
        ("PIPEWATCH_RECEIVERS__MAX_BODY_BYTES", "1048576", |c| {
            c.receivers.max_body_bytes == 1 << 20
        }),
        (
            "PIPEWATCH_RECEIVERS__MAX_DECOMPRESSED_BYTES",
            "67108864",
            |c| c.receivers.max_decompressed_bytes == 64 << 20,
        ),
        ("PIPEWATCH_RECEIVERS__QUEUE_FULL_STATUS", "429", |c| {
            c.receivers.queue_full_status == 429
        }),
        ("PIPEWATCH_RECEIVERS__OTLP_GRPC_LISTEN", "", |c| {
            c.receivers.otlp_grpc_listen.is_empty()
        }),
        ("PIPEWATCH_SERVER__TLS_CERT", "/etc/pw/cert.pem", |c| {
            c.server.tls_cert == std::path::Path::new("/etc/pw/cert.pem")
        }),
        ("PIPEWATCH_SERVER__TLS_KEY", "/etc/pw/key.pem", |c| {
            c.server.tls_key == std::path::Path::new("/etc/pw/key.pem")
        }),
        ("PIPEWATCH_AUTH__ANONYMOUS_ROLE", "viewer", |c| {
            c.auth.anonymous_role() == Some(model::auth::Role::Viewer)
        }),
        ("PIPEWATCH_AUTH__SESSION_LIFETIME", "2h", |c| {
            c.auth.session_lifetime == Duration::from_secs(7200)
        }),
        ("PIPEWATCH_AUTH__LOGIN_MAX_FAILURES", "3", |c| {
            c.auth.login_max_failures == 3
        }),
        ("PIPEWATCH_AUTH__LOGIN_WINDOW", "1h", |c| {
            c.auth.login_window == Duration::from_secs(3600)
        }),
        ("PIPEWATCH_AUTH__LOGIN_BACKOFF", "30s", |c| {
            c.auth.login_backoff == Duration::from_secs(30)
        }),
        ("PIPEWATCH_AUTH__SECURE_COOKIES", "true", |c| {
            c.auth.secure_cookies
        }),
        (
            "PIPEWATCH_AUTH__TOKENS",
            r#"[{ name = "ci", token_env = "CI_TOKEN", receivers = ["dq"] }]"#,
            |c| {
                c.auth.tokens.len() == 1
                    && c.auth.tokens[0].token_env.as_deref() == Some("CI_TOKEN")
            },
        ),
        ("PIPEWATCH_LIMITS__MAX_LABELS_PER_SERIES", "10", |c| {
            c.limits.max_labels_per_series == 10
        }),
        ("PIPEWATCH_LIMITS__MAX_LABEL_NAME_LENGTH", "100", |c| {
            c.limits.max_label_name_length == 100
        }),
        ("PIPEWATCH_LIMITS__MAX_LABEL_VALUE_LENGTH", "200", |c| {
            c.limits.max_label_value_length == 200
        }),
        (
            "PIPEWATCH_LIMITS__MAX_NEW_SERIES_PER_METRIC_PER_MINUTE",
            "0",
            |c| c.limits.max_new_series_per_metric_per_minute == 0,
        ),
        ("PIPEWATCH_LIMITS__MAX_NEW_SERIES_PER_MINUTE", "5", |c| {
            c.limits.max_new_series_per_minute == 5
        }),
        ("PIPEWATCH_LIMITS__FUTURE_TOLERANCE", "90s", |c| {
            c.limits.future_tolerance == Duration::from_secs(90)
        }),
        ("PIPEWATCH_DATABASE__READ_STATEMENT_TIMEOUT", "5s", |c| {
            c.database.read_statement_timeout == Duration::from_secs(5)
        }),
        ("PIPEWATCH_RECEIVERS__MAX_DECODED_MESSAGES", "1000", |c| {
            c.receivers.max_decoded_messages == 1000
        }),
        ("PIPEWATCH_LIMITS__MAX_EVIDENCE_ATTRIBUTES", "11", |c| {
            c.limits.max_evidence_attributes == 11
        }),
        ("PIPEWATCH_LIMITS__MAX_EVIDENCE_EVENTS", "12", |c| {
            c.limits.max_evidence_events == 12
        }),
        ("PIPEWATCH_LIMITS__MAX_EVIDENCE_VALUE_BYTES", "13", |c| {
            c.limits.max_evidence_value_bytes == 13
        }),
        ("PIPEWATCH_LIMITS__MAX_EVIDENCE_BYTES", "14", |c| {
            c.limits.max_evidence_bytes == 14
        }),
        ("PIPEWATCH_LIMITS__MAX_LOG_BODY_BYTES", "15", |c| {
            c.limits.max_log_body_bytes == 15
        }),
        ("PIPEWATCH_LIMITS__MAX_ALERT_LABELS", "16", |c| {
            c.limits.max_alert_labels == 16
        }),
        ("PIPEWATCH_LIMITS__MAX_ALERT_ANNOTATIONS", "17", |c| {
            c.limits.max_alert_annotations == 17
        }),
        ("PIPEWATCH_LIMITS__MAX_ALERT_ANNOTATION_BYTES", "18", |c| {
            c.limits.max_alert_annotation_bytes == 18
        }),
        ("PIPEWATCH_OTLP__SLOW_SPAN_THRESHOLD", "250ms", |c| {
            c.otlp.slow_span_threshold == Duration::from_millis(250)
        }),
        ("PIPEWATCH_OTLP__MAX_SPAN_EVIDENCE_PER_REQUEST", "5", |c| {
            c.otlp.max_span_evidence_per_request == 5
        }),
        ("PIPEWATCH_OTLP__MIN_LOG_EVIDENCE_SEVERITY", "error", |c| {
            c.otlp.signal_config().logs.min_evidence_severity == 17
        }),
        ("PIPEWATCH_OTLP__MAX_LOG_EVIDENCE_PER_REQUEST", "6", |c| {
            c.otlp.max_log_evidence_per_request == 6
        }),
        ("PIPEWATCH_OTLP__EVIDENCE_PER_SERVICE_AND_KIND", "7", |c| {
            c.otlp.evidence_per_service_and_kind == 7
        }),
        ("PIPEWATCH_OTLP__MAX_SERIES", "8", |c| {
            c.otlp.signal_config().max_series == 8
        }),
        ("PIPEWATCH_QUERY__TIMEOUT", "10s", |c| {
            c.query.timeout == Duration::from_secs(10)
        }),
        ("PIPEWATCH_QUERY__MAX_SAMPLES", "1000", |c| {
            c.query.max_samples == 1000
        }),
        ("PIPEWATCH_QUERY__MAX_SERIES_PER_SELECTOR", "500", |c| {
            c.query.max_series_per_selector == 500
        }),
        ("PIPEWATCH_QUERY__MAX_SERIES", "700", |c| {
            c.query.max_series == 700
        }),
        ("PIPEWATCH_QUERY__LOOKBACK_DELTA", "1m", |c| {
            c.query.lookback_delta == Duration::from_secs(60)
        }),
        ("PIPEWATCH_QUERY__MAX_POINTS", "250", |c| {
            c.query.max_points == 250
        }),
        ("PIPEWATCH_NOTIFICATIONS__POLL_INTERVAL", "2s", |c| {
            c.notifications.poll_interval == Duration::from_secs(2)
        }),
        ("PIPEWATCH_NOTIFICATIONS__BATCH_SIZE", "9", |c| {
            c.notifications.batch_size == 9
        }),
        ("PIPEWATCH_NOTIFICATIONS__CLAIM_LEASE", "2m", |c| {
            c.notifications.claim_lease == Duration::from_secs(120)
        }),
        ("PIPEWATCH_NOTIFICATIONS__RETRY_BASE", "1s", |c| {
            c.notifications.retry_base == Duration::from_secs(1)
        }),
        ("PIPEWATCH_NOTIFICATIONS__RETRY_CAP", "1h", |c| {
            c.notifications.retry_cap == Duration::from_secs(3600)
        }),
        ("PIPEWATCH_NOTIFICATIONS__SEND_TIMEOUT", "5s", |c| {
            c.notifications.send_timeout == Duration::from_secs(5)
        }),
        (
            "PIPEWATCH_NOTIFICATIONS__PUBLIC_URL",
            "https://pw.example.com",
            |c| c.notifications.public_url == "https://pw.example.com",
        ),
        (
            "PIPEWATCH_NOTIFICATIONS__CHANNELS",
            r#"{ hook = { type = "webhook", url = "http://127.0.0.1:9/x" } }"#,
            |c| c.notifications.channels.len() == 1,
        ),
        ("PIPEWATCH_ANALYSIS__ENABLED", "false", |c| {
            !c.analysis.enabled
        }),
        ("PIPEWATCH_ANALYSIS__INTERVAL", "15s", |c| {
            c.analysis.interval == Duration::from_secs(15)
        }),
        ("PIPEWATCH_ANALYSIS__HISTORY", "2days", |c| {
            c.analysis.history == Duration::from_secs(2 * 86_400)
        }),
        ("PIPEWATCH_ANALYSIS__DRIFT_WINDOW", "10m", |c| {
            c.analysis.drift_window == Duration::from_secs(600)
        }),
        ("PIPEWATCH_ANALYSIS__DRIFT_REFERENCE", "6h", |c| {
            c.analysis.drift_reference == Duration::from_secs(6 * 3600)
        }),
        ("PIPEWATCH_ANALYSIS__MIN_SEVERITY", "warning", |c| {
            c.analysis.min_severity == "warning"
        }),
        (
            "PIPEWATCH_ANALYSIS__EXCLUDE",
            r#"["{job=\"batch\"}"]"#,
            |c| c.analysis.exclude == ["{job=\"batch\"}"],
        ),
        (
            "PIPEWATCH_ANALYSIS__DRIFT_REFERENCES",
            r#"[{ dataset = "orders", trailing = "7d" }]"#,
            |c| {
                c.analysis.reference_for("orders", "amount")
                    == super::ReferenceWindow::Trailing(Duration::from_secs(7 * 86_400))
            },
        ),
        (
            "PIPEWATCH_ALERTING__RULE_FILES",
            r#"["rules/*.yml"]"#,
            |c| c.alerting.rule_files == ["rules/*.yml"],
        ),
        ("PIPEWATCH_ALERTING__EVALUATION_INTERVAL", "15s", |c| {
            c.alerting.evaluation_interval == Duration::from_secs(15)
        }),
        (
            "PIPEWATCH_ALERTING__GROUP_BY",
            r#"["alertname", "job"]"#,
            |c| c.alerting.group_by == ["alertname", "job"],
        ),
        ("PIPEWATCH_ALERTING__GROUP_WAIT", "10s", |c| {
            c.alerting.group_wait == Duration::from_secs(10)
        }),
        ("PIPEWATCH_ALERTING__GROUP_INTERVAL", "2m", |c| {
            c.alerting.group_interval == Duration::from_secs(120)
        }),
        ("PIPEWATCH_ALERTING__REPEAT_INTERVAL", "12h", |c| {
            c.alerting.repeat_interval == Duration::from_secs(12 * 3600)
        }),
        // Channel names are checked against [notifications.channels] by `Config::load`, after
        // the environment is applied; one variable alone reaches the config.
        ("PIPEWATCH_ALERTING__CHANNELS", r#"["hook"]"#, |c| {
            c.alerting.channels == ["hook"]
        }),
        ("PIPEWATCH_ALERTING__NODATA_CHANNELS", r#"["hook"]"#, |c| {
            c.alerting.nodata_channels == ["hook"]
        }),
        ("PIPEWATCH_ALERTING__ERROR_CHANNELS", r#"["hook"]"#, |c| {
            c.alerting.error_channels == ["hook"]
        }),
        (
            "PIPEWATCH_ALERTING__ROUTES",
            r#"[{ matchers = ['severity="page"'], channels = ["hook"] }]"#,
            |c| c.alerting.routes.len() == 1,
        ),
        ("PIPEWATCH_ONCALL__FILES", r#"["oncall/*.yml"]"#, |c| {
            c.oncall.files == ["oncall/*.yml"]
        }),
        // Checked against [notifications.channels] when the files are loaded at start.
        ("PIPEWATCH_ONCALL__MAIL_CHANNEL", "mail", |c| {
            c.oncall.mail_channel == "mail"
        }),
        (
            "PIPEWATCH_ALERTING__INHIBIT_RULES",
            "[{ lineage = true }]",
            |c| c.alerting.inhibit_rules.len() == 1,
        ),
        (
            "PIPEWATCH_SCRAPE_CONFIGS",
            r#"[{ job_name = "node", static_configs = [{ targets = ["127.0.0.1:9100"] }] }]"#,
            |c| {
                c.scrape_targets().len() == 1
                    && c.scrape_targets()[0].url == "http://127.0.0.1:9100/metrics"
            },
        ),
    ];

    #[test]
    fn every_key_is_set_by_its_environment_variable() {
        let defaults = Config::default();
        for (var, value, holds) in ENV_TABLE {
            assert!(
                !holds(&defaults),
                "{var}: the test value equals the default"
            );
            let c = from_env(&[(var, value)]).unwrap_or_else(|e| panic!("{var}={value}: {e:#}"));
            assert!(holds(&c), "{var}={value} did not reach the config: {c:?}");
        }
    }

    #[test]
    fn every_key_has_a_row_in_the_environment_table() {
        for key in default_keys() {
            let var = format!("PIPEWATCH_{}", key.replace('.', "__").to_ascii_uppercase());
            assert!(
                ENV_TABLE.iter().any(|(v, ..)| *v == var),
                "key `{key}` ({var}) has no row in ENV_TABLE"
            );
        }
    }

    #[test]
    fn environment_aliases_work_and_the_long_form_wins() {
        let c = from_env(&[
            ("DATABASE_URL", "postgres://x@h/db"),
            ("PIPEWATCH_SITE_ROOT", "/opt/pipewatch/site"),
            ("PIPEWATCH_URL", "http://ignored"),
            ("PIPEWATCH_LOG", "debug"),
            ("PIPEWATCH_CONFIG", "ignored.toml"),
        ])
        .unwrap();
        assert_eq!(c.database.url, "postgres://x@h/db");
        assert_eq!(c.server.site_root, Path::new("/opt/pipewatch/site"));
        for order in [
            [
                ("PIPEWATCH_DATABASE__URL", "postgres://long@h/db"),
                ("DATABASE_URL", "postgres://short@h/db"),
            ],
            [
                ("DATABASE_URL", "postgres://short@h/db"),
                ("PIPEWATCH_DATABASE__URL", "postgres://long@h/db"),
            ],
        ] {
            assert_eq!(
                from_env(&order).unwrap().database.url,
                "postgres://long@h/db"
            );
        }
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let e = format!(
            "{:#}",
            from_env(&[("PIPEWATCH_INGEST__WRITERS", "many")]).unwrap_err()
        );
        assert!(
            e.contains("ingest.writers") && e.contains("PIPEWATCH_INGEST__WRITERS"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            from_env(&[("PIPEWATCH_INGEST__WRITERS", "0")]).unwrap_err()
        );
        assert!(
            e.contains("between 1 and 64") && e.contains("PIPEWATCH_INGEST__WRITERS"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            from_env(&[("PIPEWATCH_INGST__WRITERS", "2")]).unwrap_err()
        );
        assert!(
            e.contains("unknown field") && e.contains("PIPEWATCH_INGST__WRITERS"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            from_env(&[("PIPEWATCH_SERVER__LISTEN__PORT", "2")]).unwrap_err()
        );
        assert!(
            e.contains("PIPEWATCH_SERVER__LISTEN__PORT")
                && e.contains("not a section")
                && e.contains("set PIPEWATCH_SERVER__LISTEN"),
            "{e}"
        );
    }

    #[test]
    fn the_documented_example_config_is_valid_lists_every_key_and_matches_the_defaults() {
        let text = include_str!("../../pipewatch.example.toml");
        let c = Config::from_toml_str(text).unwrap();
        let example = to_table(&c);
        let defaults = to_table(&Config::default());
        let written = text.parse::<toml::Table>().unwrap();
        for (section, d) in &defaults {
            let Some(d) = d.as_table() else { continue };
            // Lists (`[[auth.tokens]]`) are shown commented out, as examples.
            if d.values().all(|v| v.is_array()) {
                continue;
            }
            // Every key is written out (not left to the default) with the default's value.
            let w = written
                .get(section)
                .and_then(|w| w.as_table())
                .unwrap_or_else(|| panic!("pipewatch.example.toml has no [{section}]"));
            for key in d.keys() {
                assert!(
                    w.contains_key(key),
                    "pipewatch.example.toml has no `{section}.{key}`"
                );
            }
            assert_eq!(
                &example[section], &defaults[section],
                "[{section}] differs from the defaults"
            );
        }
        assert_eq!(
            c.scrape_configs[0].scrape_interval,
            scrape::default_interval()
        );
    }

    #[test]
    fn the_readme_reference_names_every_key_with_its_default() {
        let readme = include_str!("../../README.md");
        let defaults = to_table(&Config::default());
        for (section, d) in &defaults {
            let Some(d) = d.as_table() else { continue };
            for (key, value) in d {
                let row = readme
                    .lines()
                    .find(|l| l.starts_with('|') && l.contains(&format!("`{section}.{key}`")))
                    .unwrap_or_else(|| {
                        panic!("README's configuration reference has no row for `{section}.{key}`")
                    });
                let shown = match value {
                    toml::Value::String(s) if s.is_empty() => "empty".to_string(),
                    toml::Value::String(s) => format!("`{s}`"),
                    toml::Value::Array(a) if a.is_empty() => "none".to_string(),
                    other => format!("`{other}`"),
                };
                assert!(
                    row.contains(&shown),
                    "README row for `{section}.{key}` does not show the default {shown}: {row}"
                );
            }
        }
    }

    /// A value of the README's "Default limits and why" table as the config writes it:
    /// `32 MiB` and `16 KiB` in bytes, `10 s` / `1 min` as durations, `2,000,000` as a number.
    fn documented_limit(shown: &str) -> Option<toml::Value> {
        let shown = shown.trim().trim_end_matches(" bytes");
        let (number, unit) = shown.split_once(' ').unwrap_or((shown, ""));
        let n: i64 = number.replace(',', "").parse().ok()?;
        Some(match unit {
            "" => toml::Value::Integer(n),
            "KiB" => toml::Value::Integer(n << 10),
            "MiB" => toml::Value::Integer(n << 20),
            "s" => toml::Value::String(format!("{n}s")),
            "min" => toml::Value::String(format!("{n}m")),
            _ => return None,
        })
    }

    fn same_default(written: &toml::Value, default: &toml::Value) -> bool {
        match (written, default) {
            (toml::Value::String(w), toml::Value::String(d)) => {
                humantime::parse_duration(w).ok() == humantime::parse_duration(d).ok()
            }
            (w, d) => w == d,
        }
    }

    /// The README's "Default limits and why": every limit of `[limits]` and `[query]`, and the
    /// `max_*` and `*_timeout` keys of `[receivers]`, `[server]` and `[database]`, has a row
    /// giving the default the code has and a reason.
    #[test]
    fn the_readme_explains_every_default_limit_with_the_value_the_code_has() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("### Default limits and why")
            .nth(1)
            .expect("README has a \"Default limits and why\" section");
        let defaults = to_table(&Config::default());
        let mut documented = std::collections::BTreeSet::new();
        for row in table.lines().skip_while(|l| !l.starts_with('|')) {
            if !row.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            // Header, separator, and limits that are not config keys (written in words).
            if cells.len() < 3 || !cells[0].starts_with('`') {
                continue;
            }
            let keys: Vec<&str> = cells[0].split(" / ").map(|k| k.trim_matches('`')).collect();
            let section = keys[0]
                .split_once('.')
                .expect("first key has its section")
                .0;
            let values: Vec<&str> = cells[1].split(" / ").collect();
            assert!(
                values.len() == keys.len() || values.len() == 1,
                "README limits row {:?}: {} keys but {} values",
                cells[0],
                keys.len(),
                values.len()
            );
            assert!(
                cells[2].len() > 40,
                "README limits row {:?} gives no reason",
                cells[0]
            );
            for (i, key) in keys.iter().enumerate() {
                let key = key.split_once('.').map_or(*key, |(_, k)| k);
                let shown = values[if values.len() == 1 { 0 } else { i }];
                let default = defaults
                    .get(section)
                    .and_then(|t| t.get(key))
                    .unwrap_or_else(|| {
                        panic!("README limits row names `{section}.{key}`, which is not a key")
                    });
                let written = documented_limit(shown).unwrap_or_else(|| {
                    panic!(
                        "README limits row for `{section}.{key}`: cannot read the value {shown:?}"
                    )
                });
                assert!(
                    same_default(&written, default),
                    "README says `{section}.{key}` defaults to {shown}, the code to {default}"
                );
                documented.insert(format!("{section}.{key}"));
            }
        }
        for (section, keys) in &defaults {
            let Some(keys) = keys.as_table() else {
                continue;
            };
            for key in keys.keys() {
                let limit = match section.as_str() {
                    "limits" | "query" => true,
                    "receivers" | "server" | "database" => {
                        key.starts_with("max_") || key.ends_with("_timeout")
                    }
                    _ => false,
                };
                assert!(
                    !limit || documented.contains(&format!("{section}.{key}")),
                    "README's \"Default limits and why\" has no row for `{section}.{key}`"
                );
            }
        }
    }

    #[test]
    fn tokens_are_validated_with_the_key_named_and_never_printed() {
        let e = err("[[auth.tokens]]\nname = \"a\"\n");
        assert!(
            e.contains("auth.tokens[0]") && e.contains("exactly one of"),
            "{e}"
        );
        let e = err("[[auth.tokens]]\nname = \"a\"\ntoken = \"x\"\ntoken_env = \"Y\"\n");
        assert!(e.contains("exactly one of"), "{e}");
        let e = err(
            "[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\nreceivers = [\"prom\"]\n",
        );
        assert!(
            e.contains("auth.tokens[0].receivers") && e.contains("remote_write"),
            "{e}"
        );
        let e = err("[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdeg\"\n");
        assert!(e.contains("auth.tokens[1].name"), "{e}");

        let c = Config::from_toml_str(
            "[[auth.tokens]]\nname = \"short\"\ntoken = \"s3cret\"\n[[auth.tokens]]\nname = \"env\"\ntoken_env = \"PIPEWATCH_TEST_UNSET_TOKEN_VAR\"\n",
        )
        .unwrap();
        let e = c.auth.resolve().unwrap_err().to_string();
        assert!(
            e.contains("auth.tokens[0]") && e.contains("at least 16"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "the secret leaked into: {e}");
        assert!(!format!("{:?}", c.auth).contains("s3cret"));
        assert!(!toml::to_string(&c).unwrap().contains("s3cret"));
        let c = Config::from_toml_str(
            "[[auth.tokens]]\nname = \"env\"\ntoken_env = \"PIPEWATCH_TEST_UNSET_TOKEN_VAR\"\n",
        )
        .unwrap();
        let e = c.auth.resolve().unwrap_err().to_string();
        assert!(
            e.contains("auth.tokens[0].token_env") && e.contains("PIPEWATCH_TEST_UNSET_TOKEN_VAR"),
            "{e}"
        );
    }

    #[test]
    fn receiver_limits_are_validated_with_the_key_named() {
        let e = err("[receivers]\nmax_body_bytes = 10\n");
        assert!(e.contains("receivers.max_body_bytes"), "{e}");
        let e = err("[receivers]\nmax_body_bytes = 4096\nmax_decompressed_bytes = 2048\n");
        assert!(e.contains("receivers.max_decompressed_bytes"), "{e}");
        let e = err("[receivers]\nqueue_full_status = 500\n");
        assert!(e.contains("must be 503 or 429"), "{e}");
        let e = err("[receivers]\nmax_body = 1\n");
        assert!(e.contains("unknown field"), "{e}");
        let c = Config::from_toml_str("[receivers]\nqueue_full_status = 429\n").unwrap();
        assert_eq!(c.receivers.queue_full_status, 429);
        assert_eq!(c.receivers.max_body_bytes, 32 << 20);
    }

    #[test]
    fn otlp_settings_reach_the_signal_config() {
        let c = Config::from_toml_str(
            "[otlp]\nslow_span_threshold = \"200ms\"\nmin_log_evidence_severity = \"error\"\nmax_series = 50\n",
        )
        .unwrap();
        let s = c.otlp.signal_config();
        assert_eq!(s.spans.slow_threshold, Duration::from_millis(200));
        assert_eq!(
            s.logs.min_evidence_severity,
            collectors::otlp::logs::SEVERITY_ERROR
        );
        assert_eq!(s.max_series, 50);
        // The defaults are the reducers' own.
        assert_eq!(
            OtlpConfig::default().signal_config(),
            SignalConfig::default()
        );
    }

    #[test]
    fn the_targets_page_names_the_real_scrape_key() {
        let hint = app::targets::NO_TARGETS_HINT;
        let key = hint
            .split("[[")
            .nth(1)
            .and_then(|rest| rest.split("]]").next())
            .unwrap_or_else(|| panic!("the hint names no [[key]]: {hint}"));
        let c = Config::from_toml_str(&format!(
            "[[{key}]]\njob_name = \"a\"\nstatic_configs = [{{ targets = [\"127.0.0.1:1\"] }}]\n"
        ))
        .unwrap_or_else(|e| panic!("the key the Targets page names is refused: {e:#}"));
        assert_eq!(c.scrape_targets().len(), 1);
        let var = hint
            .split_whitespace()
            .find(|w| w.starts_with("PIPEWATCH_"))
            .unwrap();
        let var = var.trim_end_matches('.');
        let c = from_env(&[(
            var,
            r#"[{ job_name = "a", static_configs = [{ targets = ["127.0.0.1:1"] }] }]"#,
        )])
        .unwrap();
        assert_eq!(c.scrape_targets().len(), 1, "{var} did not set the jobs");
    }

    #[test]
    fn static_targets_expand_to_urls() {
        let c = Config::from_toml_str(
            "[[scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{ targets = [\"127.0.0.1:9100\"], labels = { env = \"dev\" } }]\n",
        )
        .unwrap();
        let t = c.scrape_targets();
        assert_eq!(t[0].url, "http://127.0.0.1:9100/metrics");
        assert_eq!(t[0].labels.get("env"), Some("dev"));
    }
}
