//! `pipewatch user ...` and `pipewatch token ...`: users and API tokens, straight in the
//! database the config names (so the first admin can be made before anyone can log in).
//!
//! Passwords are read from standard input (`--password-stdin`, one line) or prompted for
//! without echo; never from an argument, where `ps` and shell history would show them.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use model::auth::{Role, TokenScope};
use server::config::Config;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        name: String,
        /// viewer (read), editor (also act on alerts), admin (also users, tokens, audit log).
        #[arg(long, default_value = "viewer", value_parser = parse_role, conflicts_with = "admin")]
        role: Role,
        /// Same as `--role admin`.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Where escalations (on-call schedules and policies) mail this user.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's e-mail address for escalations; without an address, remove it.
    Email {
        name: String,
        address: Option<String>,
    },
    /// List the users.
    List,
    /// Set a user's password (ends the user's sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (once: only its hash is kept).
    Create {
        name: String,
        /// read (every read route, as a viewer), ingest (the push receivers), admin (everything).
        #[arg(long, value_parser = parse_scope)]
        scope: TokenScope,
    },
    /// List the API tokens (never their secrets).
    List,
    /// Revoke an API token by its id (`pipewatch token list`).
    Revoke { id: i64 },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_scope(s: &str) -> Result<TokenScope, String> {
    s.parse()
}

fn read_password(stdin: bool, confirm: bool) -> Result<String> {
    let password = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let p = rpassword::prompt_password("Password: ").context(
            "reading the password from the terminal (use --password-stdin when there is none)",
        )?;
        if confirm && rpassword::prompt_password("Password again: ")? != p {
            bail!("the two passwords differ");
        }
        p
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

/// Opens the configured database. The embedded cluster is left running afterwards: a server
/// may be using it right now, and stopping it would take the database from under it.
async fn open(cfg: &Config) -> Result<(store::Store, server::run::Database)> {
    let db = server::run::Database::open(cfg).await?;
    let store = store::Store::connect(&db.url, store::StoreConfig::default()).await?;
    Ok((store, db))
}

fn fmt_time(ms: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
    )
    .to_string()
}

pub async fn user(cfg: &Config, cmd: UserCommand) -> Result<()> {
    // Read before the database starts, so a prompt is not interleaved with its log lines.
    let password = match &cmd {
        UserCommand::Add { password_stdin, .. } | UserCommand::Passwd { password_stdin, .. } => {
            Some(read_password(*password_stdin, true)?)
        }
        UserCommand::List | UserCommand::Email { .. } => None,
    };
    let (store, db) = open(cfg).await?;
    let result = async {
        match cmd {
            UserCommand::Add {
                name,
                role,
                admin,
                email,
                ..
            } => {
                let role = if admin { Role::Admin } else { role };
                let password = password.unwrap_or_default();
                // A bad address is refused before the user exists.
                if let Some(e) = &email {
                    store::auth::check_email(e)?;
                }
                store.create_user(&name, &password, role).await?;
                if let Some(e) = &email {
                    store.set_email(&name, Some(e)).await?;
                }
                store
                    .audit(
                        "cli",
                        "user.add",
                        &name,
                        serde_json::json!({"role": role, "email": email}),
                    )
                    .await?;
                println!("added user {name} ({role})");
            }
            UserCommand::Email { name, address } => {
                store.set_email(&name, address.as_deref()).await?;
                store
                    .audit(
                        "cli",
                        "user.email",
                        &name,
                        serde_json::json!({"email": address}),
                    )
                    .await?;
                match address {
                    Some(a) => println!("escalations to {name} are mailed to {a}"),
                    None => println!("{name} has no e-mail address now"),
                }
            }
            UserCommand::List => {
                println!(
                    "{:<24} {:<8} {:<9} {:<20} EMAIL",
                    "NAME", "ROLE", "STATE", "CREATED"
                );
                for u in store.list_users().await? {
                    println!(
                        "{:<24} {:<8} {:<9} {:<20} {}",
                        u.name,
                        u.role.as_str(),
                        if u.disabled { "disabled" } else { "active" },
                        fmt_time(u.created_at),
                        u.email.as_deref().unwrap_or("-")
                    );
                }
            }
            UserCommand::Passwd { name, .. } => {
                store
                    .set_password(&name, &password.unwrap_or_default())
                    .await?;
                store
                    .audit("cli", "user.passwd", &name, serde_json::json!({}))
                    .await?;
                println!("password of {name} changed; its sessions are ended");
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.pool().close().await;
    std::mem::forget(db);
    result
}

pub async fn token(cfg: &Config, cmd: TokenCommand) -> Result<()> {
    let (store, db) = open(cfg).await?;
    let result = async {
        match cmd {
            TokenCommand::Create { name, scope } => {
                let t = store.create_api_token(&name, scope, "cli").await?;
                store
                    .audit(
                        "cli",
                        "token.create",
                        &name,
                        serde_json::json!({"scope": scope, "id": t.info.id}),
                    )
                    .await?;
                eprintln!("created API token {name} ({scope}); it is shown once, here:");
                println!("{}", t.secret);
            }
            TokenCommand::List => {
                println!(
                    "{:<6} {:<24} {:<7} {:<21} {:<21} STATE",
                    "ID", "NAME", "SCOPE", "CREATED", "LAST USED"
                );
                for t in store.list_api_tokens().await? {
                    println!(
                        "{:<6} {:<24} {:<7} {:<21} {:<21} {}",
                        t.id,
                        t.name,
                        t.scope.as_str(),
                        fmt_time(t.created_at),
                        t.last_used_at.map_or_else(|| "never".into(), fmt_time),
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "live"
                        }
                    );
                }
            }
            TokenCommand::Revoke { id } => match store.revoke_api_token(id).await? {
                Some(name) => {
                    store
                        .audit("cli", "token.revoke", &name, serde_json::json!({"id": id}))
                        .await?;
                    println!("revoked API token {id} ({name})");
                }
                None => bail!(
                    "there is no live API token with id {id}; `pipewatch token list` shows them"
                ),
            },
        }
        anyhow::Ok(())
    }
    .await;
    store.pool().close().await;
    std::mem::forget(db);
    result
}
