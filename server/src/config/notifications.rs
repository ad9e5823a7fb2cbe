//! `[notifications]`: the notification sender (how often it polls the outbox, how long a claim
//! lasts, how failed deliveries back off) and the channels alerts are sent to, by name:
//!
//! ```toml
//! [notifications.channels.oncall-mail]
//! type = "email"
//! smtp_host = "smtp.example.com"
//! smtp_port = 587
//! tls = "starttls"            # "starttls", "tls" (implicit TLS, port 465) or "none"
//! username = "pipewatch"
//! password_env = "SMTP_PASSWORD"
//! from = "pipewatch@example.com"
//! to = ["oncall@example.com"]
//!
//! [notifications.channels.oncall-slack]
//! type = "slack_webhook"              # the simple mode: a new message per notice
//! url_env = "SLACK_WEBHOOK_URL"
//!
//! [notifications.channels.oncall-slack-bot]
//! type = "slack"                      # bot mode: one message per alert group, edited in place
//! token_env = "SLACK_BOT_TOKEN"       # a bot token (xoxb-...) with the chat:write scope
//! channel = "#oncall"                 # a channel name or ID the bot is a member of
//!
//! [notifications.channels.oncall-teams]
//! type = "teams"                      # Microsoft Teams incoming webhook (Adaptive Card)
//! url_env = "TEAMS_WEBHOOK_URL"
//!
//! [notifications.channels.ticketing]
//! type = "webhook"
//! url = "https://tickets.example.com/hooks/pipewatch"
//! ```
//!
//! Secrets (the SMTP password, webhook URLs that embed a token) are read from the environment
//! variable the config names, so the file can be committed.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// How often an idle sender looks for due notifications.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Notifications claimed per round.
    pub batch_size: u32,
    /// How long a claimed notification stays with its sender; after that (the sender died or
    /// hung) another instance may send it.
    #[serde(with = "duration")]
    pub claim_lease: Duration,
    /// Wait after a first failed delivery; doubled after each further failure.
    #[serde(with = "duration")]
    pub retry_base: Duration,
    /// Longest wait between retries.
    #[serde(with = "duration")]
    pub retry_cap: Duration,
    /// Longest one delivery may take before it counts as failed.
    #[serde(with = "duration")]
    pub send_timeout: Duration,
    /// Base URL of this pipewatch as its users reach it (`https://pipewatch.example.com`), for
    /// links in notifications; empty means notifications carry no link.
    pub public_url: String,
    /// The channels, by name.
    pub channels: BTreeMap<String, ChannelConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch_size: 50,
            claim_lease: Duration::from_secs(60),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(600),
            send_timeout: Duration::from_secs(20),
            public_url: String::new(),
            channels: BTreeMap::new(),
        }
    }
}

/// One channel; `type` says which kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    Email(EmailConfig),
    /// A generic JSON POST of the notification.
    Webhook(WebhookConfig),
    /// A Slack incoming webhook (Block Kit message).
    SlackWebhook(WebhookConfig),
    /// A Slack app's bot: one message per alert group, edited as the group changes, with the
    /// changes as replies in its thread.
    Slack(SlackConfig),
    /// A Microsoft Teams incoming webhook (Adaptive Card).
    Teams(WebhookConfig),
}

impl ChannelConfig {
    /// The channel's type as the config writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Email(_) => "email",
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::SlackWebhook(_) => "slack_webhook",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Teams(_) => "teams",
        }
    }

    /// Where it delivers, without secrets: the recipients and SMTP server, a webhook's host
    /// (its path often holds a token), the Slack channel.
    pub fn destination(&self) -> String {
        let host = |w: &WebhookConfig| match (&w.url, &w.url_env) {
            (Some(u), _) => url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .map_or_else(|| "a URL".to_string(), |h| format!("https://{h}/…")),
            (None, Some(var)) => format!("the URL in ${var}"),
            (None, None) => "no URL".to_string(),
        };
        match self {
            ChannelConfig::Email(e) => format!(
                "{} via {}:{} ({})",
                e.to.join(", "),
                e.smtp_host,
                e.port(),
                match e.tls {
                    SmtpTls::Starttls => "STARTTLS",
                    SmtpTls::Tls => "TLS",
                    SmtpTls::None => "no TLS",
                }
            ),
            ChannelConfig::Webhook(w)
            | ChannelConfig::SlackWebhook(w)
            | ChannelConfig::Teams(w) => host(w),
            ChannelConfig::Slack(s) => format!("Slack channel {}", s.channel),
        }
    }
}

/// Slack bot-token mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The environment variable holding the bot token (`xoxb-...`, scope `chat:write`; add
    /// `channels:history` so a retried first message can find the one already posted).
    pub token_env: String,
    /// The channel to post in: `#name` or a channel ID (`C0123ABCD`).
    pub channel: String,
    /// Slack's Web API base URL; only tests and proxies change it.
    #[serde(default = "default_slack_api_url")]
    pub api_url: String,
}

pub fn default_slack_api_url() -> String {
    "https://slack.com/api/".into()
}

impl SlackConfig {
    /// The bot token, from the environment.
    pub fn resolve_token(&self, key: &str) -> Result<String> {
        match std::env::var(&self.token_env) {
            Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => bail!(
                "key `{key}.token_env` names the environment variable {}, which is not set; set \
                 it to the Slack bot token (xoxb-...)",
                self.token_env
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// SMTP AUTH user; empty means no authentication.
    #[serde(default)]
    pub username: String,
    /// Environment variable holding the SMTP password (required with `username`).
    #[serde(default)]
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: only for a relay on localhost or a trusted network.
    None,
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL to POST to; or
    #[serde(default)]
    pub url: Option<String>,
    /// the environment variable holding it (for URLs with a token in them).
    #[serde(default)]
    pub url_env: Option<String>,
}

impl WebhookConfig {
    /// The URL, from the file or the environment.
    pub fn resolve_url(&self, key: &str) -> Result<String> {
        match (&self.url, &self.url_env) {
            (Some(u), None) => Ok(u.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(u) if !u.trim().is_empty() => Ok(u),
                _ => bail!(
                    "key `{key}.url_env` names the environment variable {var}, which is not set; \
                     set it to the webhook URL"
                ),
            },
            _ => bail!("channel `{key}` needs exactly one of `url` and `url_env`"),
        }
    }
}

impl NotificationsConfig {
    pub(super) fn validate(&self) -> Result<()> {
        for (key, d) in [
            ("poll_interval", self.poll_interval),
            ("claim_lease", self.claim_lease),
            ("send_timeout", self.send_timeout),
        ] {
            if d.is_zero() {
                bail!("key `notifications.{key}` must be greater than 0, like \"1s\"");
            }
        }
        if self.retry_cap < self.retry_base {
            bail!(
                "key `notifications.retry_cap` ({:?}) is shorter than `notifications.retry_base` \
                 ({:?}); make the cap at least the base",
                self.retry_cap,
                self.retry_base
            );
        }
        if self.claim_lease <= self.send_timeout {
            bail!(
                "key `notifications.claim_lease` must be longer than `notifications.send_timeout`, \
                 or a slow delivery could be sent again by another instance while it is still going"
            );
        }
        if self.batch_size == 0 {
            bail!("key `notifications.batch_size` must be at least 1");
        }
        if !self.public_url.is_empty() {
            let ok = url::Url::parse(&self.public_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                bail!(
                    "key `notifications.public_url` is {:?}; write an http(s) URL like \
                     \"https://pipewatch.example.com\" or leave it empty",
                    self.public_url
                );
            }
        }
        for (name, ch) in &self.channels {
            let key = format!("notifications.channels.{name}");
            match ch {
                ChannelConfig::Email(e) => {
                    if e.smtp_host.trim().is_empty() {
                        bail!("key `{key}.smtp_host` is empty; set the SMTP server's host name");
                    }
                    if e.to.is_empty() {
                        bail!("key `{key}.to` is empty; list at least one recipient address");
                    }
                    for (k, addr) in
                        std::iter::once(("from", &e.from)).chain(e.to.iter().map(|a| ("to", a)))
                    {
                        if addr.parse::<lettre::message::Mailbox>().is_err() {
                            bail!(
                                "key `{key}.{k}`: {addr:?} is not an email address; write one \
                                 like \"oncall@example.com\" or \"On call <oncall@example.com>\""
                            );
                        }
                    }
                    if !e.username.is_empty() && e.password_env.is_none() {
                        bail!(
                            "key `{key}.password_env` is missing: `username` is set, so name the \
                             environment variable holding the SMTP password"
                        );
                    }
                }
                ChannelConfig::Slack(sl) => {
                    if sl.token_env.trim().is_empty() {
                        bail!(
                            "key `{key}.token_env` is empty; name the environment variable \
                             holding the bot token, like \"SLACK_BOT_TOKEN\""
                        );
                    }
                    if sl.channel.trim().is_empty() {
                        bail!(
                            "key `{key}.channel` is empty; write the channel to post in, like \
                             \"#oncall\" or its ID"
                        );
                    }
                    let ok = url::Url::parse(&sl.api_url)
                        .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                    if !ok || !sl.api_url.ends_with('/') {
                        bail!(
                            "key `{key}.api_url` is {:?}; write an http(s) URL ending in `/`, \
                             like \"https://slack.com/api/\" (the default)",
                            sl.api_url
                        );
                    }
                }
                ChannelConfig::Webhook(w)
                | ChannelConfig::SlackWebhook(w)
                | ChannelConfig::Teams(w) => {
                    if w.url.is_some() == w.url_env.is_some() {
                        bail!("channel `{key}` needs exactly one of `url` and `url_env`");
                    }
                    if let Some(u) = &w.url {
                        let ok = url::Url::parse(u)
                            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                        if !ok {
                            bail!("key `{key}.url` is {u:?}; write an http(s) URL");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(toml: &str) -> String {
        format!("{:#}", Config::from_toml_str(toml).unwrap_err())
    }

    #[test]
    fn channels_of_every_type_parse() {
        let c = Config::from_toml_str(
            r##"
            [notifications.channels.mail]
            type = "email"
            smtp_host = "smtp.example.com"
            tls = "tls"
            from = "pipewatch@example.com"
            to = ["On call <oncall@example.com>"]
            [notifications.channels.hook]
            type = "webhook"
            url = "https://hooks.example.com/x"
            [notifications.channels.slack]
            type = "slack_webhook"
            url_env = "SLACK_URL"
            [notifications.channels.bot]
            type = "slack"
            token_env = "SLACK_BOT_TOKEN"
            channel = "#oncall"
            [notifications.channels.teams]
            type = "teams"
            url_env = "TEAMS_URL"
            "##,
        )
        .unwrap();
        let chans = &c.notifications.channels;
        assert_eq!(chans.len(), 5);
        match &chans["bot"] {
            super::ChannelConfig::Slack(s) => assert_eq!(s.api_url, "https://slack.com/api/"),
            other => panic!("{other:?}"),
        }
        match &chans["mail"] {
            super::ChannelConfig::Email(e) => assert_eq!(e.port(), 465),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_channels_are_refused_naming_the_key() {
        let base = "[notifications.channels.mail]\ntype = \"email\"\nsmtp_host = \"h\"\n";
        let e = err(&format!(
            "{base}from = \"nobody\"\nto = [\"a@example.com\"]\n"
        ));
        assert!(
            e.contains("notifications.channels.mail.from") && e.contains("not an email address"),
            "{e}"
        );
        let e = err(&format!("{base}from = \"p@example.com\"\nto = []\n"));
        assert!(e.contains("notifications.channels.mail.to"), "{e}");
        let e = err(&format!(
            "{base}from = \"p@example.com\"\nto = [\"a@example.com\"]\nusername = \"u\"\n"
        ));
        assert!(
            e.contains("notifications.channels.mail.password_env"),
            "{e}"
        );
        let e = err("[notifications.channels.x]\ntype = \"pager\"\n");
        assert!(
            e.contains("notifications.channels.x") && e.contains("pager"),
            "{e}"
        );
        let e = err("[notifications.channels.x]\ntype = \"webhook\"\n");
        assert!(
            e.contains("notifications.channels.x")
                && e.contains("exactly one of `url` and `url_env`"),
            "{e}"
        );
        let e = err("[notifications.channels.x]\ntype = \"webhook\"\nurl = \"ftp://h/x\"\n");
        assert!(e.contains("notifications.channels.x.url"), "{e}");
        let e = err("[notifications.channels.x]\ntype = \"slack\"\ntoken_env = \"T\"\n");
        assert!(e.contains("channel"), "{e}");
        let e = err(
            "[notifications.channels.x]\ntype = \"slack\"\ntoken_env = \"T\"\nchannel = \"\"\n",
        );
        assert!(e.contains("notifications.channels.x.channel"), "{e}");
        let e = err(
            "[notifications.channels.x]\ntype = \"slack\"\ntoken_env = \"T\"\n\
             channel = \"#c\"\napi_url = \"http://127.0.0.1:9/api\"\n",
        );
        assert!(e.contains("notifications.channels.x.api_url"), "{e}");
        let e = err("[notifications.channels.x]\ntype = \"teams\"\n");
        assert!(e.contains("exactly one of `url` and `url_env`"), "{e}");
    }

    #[test]
    fn sender_settings_are_checked() {
        let e = err("[notifications]\nretry_base = \"10m\"\nretry_cap = \"1m\"\n");
        assert!(e.contains("notifications.retry_cap"), "{e}");
        let e = err("[notifications]\nclaim_lease = \"5s\"\nsend_timeout = \"10s\"\n");
        assert!(e.contains("notifications.claim_lease"), "{e}");
        let e = err("[notifications]\npublic_url = \"pw.example.com\"\n");
        assert!(e.contains("notifications.public_url"), "{e}");
    }
}
