//! `[server]`: where the web app and HTTP API listen, where state lives, the browser bundle,
//! shutdown, and the limits that keep slow or idle clients from holding the listener.

use super::duration;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the web app and the HTTP API.
    pub listen: SocketAddr,
    /// Where the embedded PostgreSQL cluster and other state live.
    pub data_dir: PathBuf,
    /// Folder with a browser bundle (`pkg/`) built by `scripts/build-site.sh`, served instead of
    /// the bundle compiled into the binary. Empty: the compiled-in bundle.
    pub site_root: PathBuf,
    /// How long shutdown may take to drain the ingest queue before giving up.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// A client must send a request's headers within this long after connecting or after its
    /// previous response; otherwise the connection is closed. Also closes idle keep-alive
    /// connections, so idle sockets cannot use up the connection cap.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Longest time a request may take, body included; slower ones get 408.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Open HTTP connections at most; further clients wait in the listen queue until one closes.
    pub max_connections: usize,
    /// PEM certificate chain and private key: with both set, `listen` serves HTTPS (rustls) and
    /// session cookies are `Secure`. Empty (the default): plain HTTP, e.g. behind a reverse
    /// proxy that terminates TLS.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".parse().expect("static address"),
            data_dir: PathBuf::from("pipewatch-data"),
            site_root: PathBuf::new(),
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if self.shutdown_timeout.is_zero() {
            bail!("key `server.shutdown_timeout` must be greater than 0, like \"30s\"");
        }
        if self.header_read_timeout.is_zero() {
            bail!("key `server.header_read_timeout` must be greater than 0, like \"10s\"");
        }
        if self.request_timeout < Duration::from_secs(1) {
            bail!(
                "key `server.request_timeout` must be at least \"1s\" (large pushes and queries need time), got {:?}",
                self.request_timeout
            );
        }
        if !(16..=1_000_000).contains(&self.max_connections) {
            bail!(
                "key `server.max_connections` must be between 16 and 1000000, got {}",
                self.max_connections
            );
        }
        Ok(())
    }
}
