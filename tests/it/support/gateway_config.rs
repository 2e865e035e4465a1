//! A gateway configuration for a test, built in code and written as the TOML
//! an operator would write: parsed for the gateway in this process, or
//! written to a file for the binary.

use std::path::{Path, PathBuf};

use erasure_gateway::config::Config;
use erasure_gateway::stand_in::{Recorder, StandIn};

/// Where an upstream points: a stand-in vendor, whose recorder the
/// in-process gateway checks on stop, or a URL where none listens (a closed
/// port, a hand-written server).
pub enum Endpoint<'a> {
    /// A stand-in vendor, at its URL.
    StandIn(&'a StandIn),
    /// Any URL.
    Url(&'a str),
}

impl<'a> From<&'a StandIn> for Endpoint<'a> {
    fn from(vendor: &'a StandIn) -> Self {
        Endpoint::StandIn(vendor)
    }
}

impl<'a> From<&'a str> for Endpoint<'a> {
    fn from(url: &'a str) -> Self {
        Endpoint::Url(url)
    }
}

impl<'a> From<&'a String> for Endpoint<'a> {
    fn from(url: &'a String) -> Self {
        Endpoint::Url(url)
    }
}

/// A gateway configuration under construction. It starts with both
/// listeners on `127.0.0.1:0`, the shipped policies, and a trail of its own
/// in a temporary directory that lives as long as this value (or the
/// gateway it is moved into).
pub struct GatewayConfig {
    table: toml::Table,
    callers: Vec<toml::Value>,
    upstreams: Vec<toml::Value>,
    stand_ins: Vec<Recorder>,
    dir: tempfile::TempDir,
}

impl GatewayConfig {
    /// The defaults described on [`GatewayConfig`].
    pub fn new() -> Self {
        let dir = super::temp_dir("gateway");
        let trail = dir.path().join("audit").join("decisions.jsonl");
        std::fs::create_dir_all(trail.parent().unwrap()).unwrap();
        Self {
            table: toml::Table::new(),
            callers: Vec::new(),
            upstreams: Vec::new(),
            stand_ins: Vec::new(),
            dir,
        }
        .proxy("listen", "127.0.0.1:0")
        .admin("listen", "127.0.0.1:0")
        .policies("dir", super::POLICIES)
        .audit("path", trail.display().to_string())
        .audit("replica", "test")
    }

    /// Sets `key` of `[section]`, replacing what was there.
    pub fn set(mut self, section: &str, key: &str, value: impl Into<toml::Value>) -> Self {
        let entry = self
            .table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(table) = entry.as_table_mut() {
            table.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Sets a key of `[proxy]`.
    pub fn proxy(self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.set("proxy", key, value)
    }

    /// Sets a key of `[admin]`.
    pub fn admin(self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.set("admin", key, value)
    }

    /// Sets a key of `[policies]`.
    pub fn policies(self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.set("policies", key, value)
    }

    /// Sets a key of `[audit]`.
    pub fn audit(self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.set("audit", key, value)
    }

    /// Requires `token` (stored as its SHA-256) for the admin calls that
    /// change or decide.
    pub fn admin_token(self, token: &str) -> Self {
        self.admin("token_sha256", super::sha256_hex(token))
    }

    /// Verifies callers' JWTs with HS256 and `secret` (written to a file).
    pub fn jwt_hs256(self, secret: &str) -> Self {
        let file = self.dir.path().join("jwt-secret");
        std::fs::write(&file, secret).unwrap();
        self.set("jwt", "algorithm", "HS256")
            .set("jwt", "secret_file", file.display().to_string())
    }

    /// A `[[caller]]` known by `token` (stored as its SHA-256), in `roles`.
    pub fn caller(mut self, id: &str, token: &str, roles: &[&str]) -> Self {
        let mut caller = caller(id, roles);
        caller.insert("token_sha256".into(), super::sha256_hex(token).into());
        self.callers.push(caller.into());
        self
    }

    /// A `[[caller]]` table as given.
    pub fn raw_caller(mut self, caller: toml::Table) -> Self {
        self.callers.push(caller.into());
        self
    }

    /// A `[[caller]]` known only as the subject of a verified JWT.
    pub fn jwt_caller(mut self, id: &str, roles: &[&str]) -> Self {
        self.callers.push(caller(id, roles).into());
        self
    }

    /// An upstream read by the built-in `profile`, named after it and routed
    /// from `/{profile}`.
    pub fn vendor<'a>(self, profile: &str, to: impl Into<Endpoint<'a>>) -> Self {
        self.upstream(profile, Some(profile), to, &format!("/{profile}"))
    }

    /// An upstream named `name`, read by the built-in `profile`, routed from
    /// `path_prefix` (several upstreams may share a profile).
    pub fn named_vendor<'a>(
        self,
        name: &str,
        profile: &str,
        to: impl Into<Endpoint<'a>>,
        path_prefix: &str,
    ) -> Self {
        self.upstream(name, Some(profile), to, path_prefix)
    }

    /// An upstream without a profile, named `vendor` and routed from `/v`:
    /// every call to it passes through.
    pub fn plain<'a>(self, to: impl Into<Endpoint<'a>>) -> Self {
        self.upstream("vendor", None, to, "/v")
    }

    /// The upstream added last sends this vendor credential
    /// (`[upstream.credential]`) in place of the caller's.
    pub fn upstream_credential(self, credential: toml::Table) -> Self {
        self.upstream_key("credential", credential)
    }

    /// Sets `key` on the upstream added last.
    pub fn upstream_key(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        if let Some(upstream) = self
            .upstreams
            .last_mut()
            .and_then(toml::Value::as_table_mut)
        {
            upstream.insert(key.into(), value.into());
        }
        self
    }

    /// A file in this configuration's directory holding `text`.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The upstream added last trusts the CA certificate in `ca`.
    pub fn upstream_ca(mut self, ca: &Path) -> Self {
        if let Some(upstream) = self
            .upstreams
            .last_mut()
            .and_then(toml::Value::as_table_mut)
        {
            upstream.insert("ca".into(), ca.display().to_string().into());
        }
        self
    }

    fn upstream<'a>(
        mut self,
        name: &str,
        profile: Option<&str>,
        to: impl Into<Endpoint<'a>>,
        path_prefix: &str,
    ) -> Self {
        let url = match to.into() {
            Endpoint::StandIn(vendor) => {
                self.stand_ins.push(vendor.recorder().clone());
                vendor.url()
            }
            Endpoint::Url(url) => url.to_owned(),
        };
        let mut upstream = toml::Table::new();
        upstream.insert("name".into(), name.into());
        upstream.insert("profile".into(), profile.unwrap_or("none").into());
        upstream.insert("url".into(), url.into());
        upstream.insert("path_prefix".into(), path_prefix.into());
        self.upstreams.push(upstream.into());
        self
    }

    /// The configuration as TOML text.
    pub fn toml(&self) -> String {
        let mut table = self.table.clone();
        if !self.callers.is_empty() {
            table.insert("caller".into(), self.callers.clone().into());
        }
        if !self.upstreams.is_empty() {
            table.insert("upstream".into(), self.upstreams.clone().into());
        }
        toml::to_string(&table).expect("test TOML serialises")
    }

    /// The configuration, parsed as the gateway parses its file.
    pub fn config(&self) -> Config {
        Config::parse(&self.toml(), &self.file())
            .unwrap_or_else(|e| panic!("test config: {e}\n{}", self.toml()))
    }

    /// Writes the configuration to its file and returns the file's path.
    pub fn write(&self) -> PathBuf {
        let file = self.file();
        std::fs::write(&file, self.toml()).unwrap();
        file
    }

    /// The directory of the trail.
    pub fn audit_dir(&self) -> PathBuf {
        self.config().audit.path.parent().unwrap().to_owned()
    }

    /// The recorders of the stand-in vendors its upstreams reach, and the
    /// temporary directory its files are in.
    pub(super) fn into_parts(self) -> (Vec<Recorder>, tempfile::TempDir) {
        (self.stand_ins, self.dir)
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }
}

fn caller(id: &str, roles: &[&str]) -> toml::Table {
    let mut caller = toml::Table::new();
    caller.insert("id".into(), id.into());
    caller.insert(
        "roles".into(),
        roles
            .iter()
            .map(|r| (*r).to_owned())
            .collect::<Vec<_>>()
            .into(),
    );
    caller
}
