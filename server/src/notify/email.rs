//! Email notifications with lettre over SMTP: STARTTLS, implicit TLS or plain (for a local
//! relay), optional SMTP AUTH, and a multipart message with a plain-text and an HTML part
//! carrying the alert, its labels, explanation, link and recent values.

use super::{rfc3339, title, Channel, Delivery};
use crate::config::{EmailConfig, SmtpTls};
use anyhow::{anyhow, Context, Result};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt::Write;
use std::time::Duration;

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailChannel {
    /// `key` is the channel's config key, for errors.
    pub fn new(cfg: &EmailConfig, timeout: Duration, key: &str) -> Result<EmailChannel> {
        let builder = match cfg.tls {
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.smtp_host)
                    .with_context(|| format!("key `{key}.smtp_host`"))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.smtp_host)
                .with_context(|| format!("key `{key}.smtp_host`"))?,
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.smtp_host)
            }
        };
        let mut builder = builder.port(cfg.port()).timeout(Some(timeout));
        if !cfg.username.is_empty() {
            let var = cfg.password_env.as_deref().unwrap_or_default();
            let password = std::env::var(var).map_err(|_| {
                anyhow!(
                    "key `{key}.password_env` names the environment variable {var}, which is not \
                     set; set it to the SMTP password"
                )
            })?;
            builder = builder.credentials(Credentials::new(cfg.username.clone(), password));
        }
        let parse = |k: &str, a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| anyhow!("key `{key}.{k}`: {a:?} is not an email address: {e}"))
        };
        Ok(EmailChannel {
            transport: builder.build(),
            from: parse("from", &cfg.from)?,
            to: cfg
                .to
                .iter()
                .map(|a| parse("to", a))
                .collect::<Result<_>>()?,
        })
    }
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    async fn send(&self, d: &Delivery) -> Result<(), String> {
        let msg = message(d, &self.from, &self.to).map_err(|e| e.to_string())?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// The email for one delivery. The Message-ID is derived from the dedup key, so a repeat
/// (at-least-once delivery) carries the same ID and mail clients can fold it away.
pub fn message(d: &Delivery, from: &Mailbox, to: &[Mailbox]) -> Result<Message> {
    let mut b = Message::builder()
        .from(from.clone())
        .subject(title(d))
        .message_id(Some(format!(
            "<{:032x}@pipewatch>",
            xxhash_rust::xxh3::xxh3_128(format!("{}\0{}", d.channel, d.dedup_key).as_bytes())
        )));
    for m in to {
        b = b.to(m.clone());
    }
    Ok(b.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(plain_text(d)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html(d)),
            ),
    )?)
}

fn plain_text(d: &Delivery) -> String {
    let n = &d.notice;
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", title(d));
    if !n.explanation.is_empty() {
        let _ = writeln!(s, "{}\n", n.explanation);
    }
    if !n.severity.is_empty() {
        let _ = writeln!(s, "Severity: {}", n.severity);
    }
    let _ = writeln!(s, "Started: {}", rfc3339(n.starts_at_ms));
    if let Some(end) = n.ends_at_ms {
        let _ = writeln!(s, "Resolved: {}", rfc3339(end));
    }
    let _ = writeln!(s, "\nLabels:");
    for (k, v) in &n.labels {
        let _ = writeln!(s, "  {k} = {v}");
    }
    if !n.values.is_empty() {
        let _ = writeln!(s, "\nRecent values:");
        for (ts, v) in &n.values {
            let _ = writeln!(s, "  {}  {v}", rfc3339(*ts));
        }
    }
    if let Some(link) = &d.link {
        let _ = writeln!(s, "\nOpen in pipewatch: {link}");
    }
    let _ = writeln!(s, "\n-- \npipewatch notification {}", d.dedup_key);
    s
}

fn html(d: &Delivery) -> String {
    let n = &d.notice;
    let e = |t: &str| escape(t);
    let colour = match d.kind {
        store::outbox::NotificationKind::Firing => "#b42318",
        store::outbox::NotificationKind::Resolved => "#067647",
    };
    let mut s = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">");
    let _ = write!(s, "<h2 style=\"color:{colour}\">{}</h2>", e(&title(d)));
    if !n.explanation.is_empty() {
        let _ = write!(s, "<p>{}</p>", e(&n.explanation));
    }
    s.push_str("<table cellpadding=\"4\">");
    if !n.severity.is_empty() {
        let _ = write!(
            s,
            "<tr><th align=\"left\">Severity</th><td>{}</td></tr>",
            e(&n.severity)
        );
    }
    let _ = write!(
        s,
        "<tr><th align=\"left\">Started</th><td>{}</td></tr>",
        rfc3339(n.starts_at_ms)
    );
    if let Some(end) = n.ends_at_ms {
        let _ = write!(
            s,
            "<tr><th align=\"left\">Resolved</th><td>{}</td></tr>",
            rfc3339(end)
        );
    }
    for (k, v) in &n.labels {
        let _ = write!(
            s,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            e(k),
            e(v)
        );
    }
    s.push_str("</table>");
    if !n.values.is_empty() {
        s.push_str("<h3>Recent values</h3><table cellpadding=\"2\">");
        for (ts, v) in &n.values {
            let _ = write!(
                s,
                "<tr><td>{}</td><td align=\"right\">{v}</td></tr>",
                rfc3339(*ts)
            );
        }
        s.push_str("</table>");
    }
    if let Some(link) = &d.link {
        let _ = write!(s, "<p><a href=\"{}\">Open in pipewatch</a></p>", e(link));
    }
    s.push_str("</body></html>");
    s
}

/// Text for HTML element content and quoted attributes.
fn escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
