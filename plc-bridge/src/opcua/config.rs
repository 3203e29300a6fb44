//! Configuration of one OPC UA broadcast source: where the line server is, how to log on, and
//! which nodes carry the broadcast in which layout.
//!
//! Every plant names its nodes differently, so nothing here assumes sim-line's names: NodeIds,
//! the namespace (by URI, because a server may renumber its namespaces on restart), the layout,
//! the FIFO order and how option codes are packed all come from the file.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ::opcua::types::NodeId;
use serde::Deserialize;

/// One `[[sources]]` entry: a broadcast point read from an OPC UA server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Line and broadcast point this source feeds (ids from the plant configuration).
    pub line: String,
    pub point: String,
    /// `opc.tcp://host:port/path`. Connected to directly: the port written here is used even if
    /// the server advertises another (a gateway or NAT in between).
    pub endpoint: String,
    #[serde(default)]
    pub security: Security,
    /// User name; left out: anonymous.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, or the environment variable holding it (keeps secrets out of the file).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// Client certificate and trust lists; the certificate is created on first start.
    #[serde(default = "default_pki_dir")]
    pub pki_dir: PathBuf,
    /// Accept any server certificate. Only for commissioning: it removes the protection
    /// against a rogue server.
    #[serde(default)]
    pub trust_server_certs: bool,
    /// Namespace of NodeIds written without `ns=`; resolved by URI on every connect.
    #[serde(default)]
    pub namespace_uri: Option<String>,
    /// Publishing interval of the subscription and sampling interval of its items.
    #[serde(default = "default_publishing_interval_ms")]
    pub publishing_interval_ms: u64,
    /// The trigger is also read at this interval, so a subscription that goes silent (or a
    /// notification lost in a reconnect) costs at most this much, never a vehicle.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Timeout of every request.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Cap of the reconnect backoff (it starts at 100 ms and doubles).
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// How option codes arrive when they come as one string.
    #[serde(default)]
    pub options_format: OptionsFormat,
    pub layout: Layout,
    /// Line running/stopped, if this source carries it (one source per line should).
    #[serde(default)]
    pub line_state: Option<LineStateNodes>,
}

fn default_pki_dir() -> PathBuf {
    PathBuf::from("pki")
}
fn default_publishing_interval_ms() -> u64 {
    100
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_request_timeout_ms() -> u64 {
    5000
}
fn default_reconnect_max_ms() -> u64 {
    5000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// No signing, no encryption: only on an isolated cell network.
    #[default]
    None,
    /// Basic256Sha256, messages signed and encrypted.
    Basic256sha256,
}

/// Where the fields of one broadcast record are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordNodes {
    /// Sequence number: any integer type or a numeric string.
    pub seq: String,
    pub vin: String,
    /// Body number, if the line sends one.
    #[serde(default)]
    pub body: Option<String>,
    /// Model code: a string or an integer.
    pub model: String,
    /// Option codes: a string array, or one string (see `options_format`).
    pub options: String,
}

/// The two layouts plants use to hand over the broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Layout {
    /// One record at a time: the PLC presents a record, changes `counter`, and waits until the
    /// client writes the acknowledgement before presenting the next one.
    Handshake {
        record: RecordNodes,
        counter: String,
        ack: String,
        #[serde(default)]
        ack_with: AckWith,
        /// Boolean the PLC raises when nobody acknowledged in time.
        #[serde(default)]
        no_handshake: Option<String>,
    },
    /// The last N records in slots plus a trigger (`LastSeq` or a counter) that changes on
    /// every new record; nothing waits for the client.
    Fifo {
        trigger: String,
        #[serde(default)]
        order: FifoOrder,
        /// Every slot's nodes, in slot order …
        #[serde(default)]
        slots: Vec<RecordNodes>,
        /// … or one template with `{i}` for the slot index, `slot_count` times from
        /// `first_index`.
        #[serde(default)]
        slot_template: Option<RecordNodes>,
        #[serde(default)]
        slot_count: usize,
        #[serde(default)]
        first_index: usize,
    },
}

/// What the client writes to the handshake's `ack` node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckWith {
    /// The counter value of the presented record.
    #[default]
    Counter,
    /// The record's sequence number. The PLC must then clear `ack` when it presents a record,
    /// or a rebroadcast of the same number would look acknowledged already.
    Seq,
}

/// Which end of the FIFO holds the newest record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FifoOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// How a single string of option codes is split.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptionsFormat {
    /// Characters separating codes; whitespace always separates.
    pub separators: String,
    /// Codes packed without separators, this many characters each (`"P7LWH2"` → P7L, WH2).
    pub width: Option<usize>,
}

impl Default for OptionsFormat {
    fn default() -> Self {
        Self {
            separators: ",;".to_owned(),
            width: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineStateNodes {
    /// Boolean, or a number where non-zero means running.
    pub running: String,
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// A NodeId as written in the file: `ns=3;i=2001` (explicit) or `s=Line.Seq` (namespace from
/// `namespace_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeRef {
    id: NodeId,
    explicit_namespace: bool,
}

impl NodeRef {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let explicit_namespace = text.starts_with("ns=");
        let id = NodeId::from_str(text).map_err(|_| {
            format!("`{text}` is not a NodeId (expected `ns=<index>;i=<number>` or `s=<name>`)")
        })?;
        Ok(Self {
            id,
            explicit_namespace,
        })
    }

    /// The NodeId on a server where the configured namespace has index `namespace`.
    pub(crate) fn resolve(&self, namespace: u16) -> NodeId {
        let mut id = self.id.clone();
        if !self.explicit_namespace {
            id.namespace = namespace;
        }
        id
    }

    pub(crate) fn needs_namespace(&self) -> bool {
        !self.explicit_namespace
    }
}

/// One problem in a source configuration: the dotted path below the source and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIssue {
    pub path: String,
    pub message: String,
}

impl SourceConfig {
    pub fn publishing_interval(&self) -> Duration {
        Duration::from_millis(self.publishing_interval_ms)
    }

    /// The FIFO's slots, expanded from the template where one is given.
    pub(crate) fn fifo_slots(&self) -> Vec<RecordNodes> {
        match &self.layout {
            Layout::Fifo {
                slots,
                slot_template: Some(template),
                slot_count,
                first_index,
                ..
            } if slots.is_empty() => (*first_index..first_index + slot_count)
                .map(|i| template.expand(i))
                .collect(),
            Layout::Fifo { slots, .. } => slots.clone(),
            Layout::Handshake { .. } => Vec::new(),
        }
    }

    /// The password from the file or its environment variable.
    pub fn password(&self) -> Result<Option<String>, String> {
        match (&self.password, &self.password_env) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("environment variable {var} (password_env) is not set")),
            (None, None) => Ok(None),
        }
    }

    /// Every problem found, with paths relative to the source (`layout.record.seq`).
    pub fn validate(&self) -> Vec<SourceIssue> {
        let mut issues = Vec::new();
        let mut push = |path: String, message: String| issues.push(SourceIssue { path, message });
        if !self.endpoint.starts_with("opc.tcp://") {
            push(
                "endpoint".into(),
                format!("`{}` must start with opc.tcp://", self.endpoint),
            );
        }
        if self.password.is_some() && self.password_env.is_some() {
            push(
                "password_env".into(),
                "give `password` or `password_env`, not both".into(),
            );
        }
        if (self.password.is_some() || self.password_env.is_some()) && self.user.is_none() {
            push("user".into(), "a password needs a user".into());
        }
        for (field, value) in [
            ("publishing_interval_ms", self.publishing_interval_ms),
            ("poll_ms", self.poll_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("reconnect_max_ms", self.reconnect_max_ms),
        ] {
            if value == 0 {
                push(field.into(), "must be at least 1".into());
            }
        }
        if self.options_format.width == Some(0) {
            push("options_format.width".into(), "must be at least 1".into());
        }
        let mut nodes = Vec::new();
        match &self.layout {
            Layout::Handshake {
                record,
                counter,
                ack,
                no_handshake,
                ..
            } => {
                record.collect("layout.record", &mut nodes);
                nodes.push(("layout.counter".into(), counter.clone()));
                nodes.push(("layout.ack".into(), ack.clone()));
                if let Some(n) = no_handshake {
                    nodes.push(("layout.no_handshake".into(), n.clone()));
                }
            }
            Layout::Fifo {
                trigger,
                slots,
                slot_template,
                slot_count,
                ..
            } => {
                nodes.push(("layout.trigger".into(), trigger.clone()));
                match (slots.is_empty(), slot_template) {
                    (true, None) => push(
                        "layout.slots".into(),
                        "give `slots` or `slot_template` with `slot_count`".into(),
                    ),
                    (false, Some(_)) => push(
                        "layout.slot_template".into(),
                        "give `slots` or `slot_template`, not both".into(),
                    ),
                    (true, Some(_)) if *slot_count == 0 => push(
                        "layout.slot_count".into(),
                        "must be at least 1 with `slot_template`".into(),
                    ),
                    _ => {}
                }
                for (i, slot) in self.fifo_slots().iter().enumerate() {
                    slot.collect(&format!("layout.slots[{i}]"), &mut nodes);
                }
            }
        }
        if let Some(state) = &self.line_state {
            nodes.push(("line_state.running".into(), state.running.clone()));
            if let Some(reason) = &state.stop_reason {
                nodes.push(("line_state.stop_reason".into(), reason.clone()));
            }
        }
        let mut needs_namespace = false;
        for (path, text) in nodes {
            match NodeRef::parse(&text) {
                Ok(node) => needs_namespace |= node.needs_namespace(),
                Err(message) => push(path, message),
            }
        }
        if needs_namespace && self.namespace_uri.is_none() {
            push(
                "namespace_uri".into(),
                "NodeIds without `ns=` need the namespace URI they belong to".into(),
            );
        }
        issues
    }
}

impl RecordNodes {
    fn expand(&self, index: usize) -> Self {
        let fill = |s: &String| s.replace("{i}", &index.to_string());
        Self {
            seq: fill(&self.seq),
            vin: fill(&self.vin),
            body: self.body.as_ref().map(fill),
            model: fill(&self.model),
            options: fill(&self.options),
        }
    }

    fn collect(&self, at: &str, out: &mut Vec<(String, String)>) {
        out.push((format!("{at}.seq"), self.seq.clone()));
        out.push((format!("{at}.vin"), self.vin.clone()));
        if let Some(body) = &self.body {
            out.push((format!("{at}.body"), body.clone()));
        }
        out.push((format!("{at}.model"), self.model.clone()));
        out.push((format!("{at}.options"), self.options.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SourceConfig {
        toml::from_str(text).expect("valid source")
    }

    const HANDSHAKE: &str = r#"
        line = "A1"
        point = "B1"
        endpoint = "opc.tcp://127.0.0.1:4840/"
        namespace_uri = "urn:takt:sim-line"
        [layout]
        kind = "handshake"
        counter = "s=A1.B1.Counter"
        ack = "s=A1.B1.Ack"
        record = { seq = "s=A1.B1.Seq", vin = "s=A1.B1.Vin", model = "s=A1.B1.Model", options = "s=A1.B1.Options" }
    "#;

    #[test]
    fn a_handshake_source_parses_and_validates() {
        let cfg = parse(HANDSHAKE);
        assert_eq!(cfg.validate(), Vec::new());
        assert!(matches!(
            cfg.layout,
            Layout::Handshake {
                ack_with: AckWith::Counter,
                ..
            }
        ));
        assert_eq!(cfg.security, Security::None);
    }

    #[test]
    fn a_fifo_template_expands_from_the_first_index() {
        let cfg = parse(
            r#"
            line = "A1"
            point = "B1"
            endpoint = "opc.tcp://127.0.0.1:4840/"
            [layout]
            kind = "fifo"
            trigger = "ns=2;i=100"
            order = "oldest_first"
            slot_count = 3
            first_index = 1
            slot_template = { seq = "ns=2;s=F[{i}].S", vin = "ns=2;s=F[{i}].V", model = "ns=2;s=F[{i}].M", options = "ns=2;s=F[{i}].O" }
        "#,
        );
        assert_eq!(cfg.validate(), Vec::new());
        let slots = cfg.fifo_slots();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[0].seq, "ns=2;s=F[1].S");
        assert_eq!(slots[2].options, "ns=2;s=F[3].O");
    }

    #[test]
    fn bad_sources_name_every_field_at_fault() {
        let mut cfg = parse(HANDSHAKE);
        cfg.endpoint = "http://plc".into();
        cfg.namespace_uri = None;
        cfg.password = Some("x".into());
        cfg.poll_ms = 0;
        if let Layout::Handshake { counter, .. } = &mut cfg.layout {
            *counter = "Counter".into();
        }
        let paths: Vec<String> = cfg.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "endpoint",
                "user",
                "poll_ms",
                "layout.counter",
                "namespace_uri"
            ]
        );
    }

    #[test]
    fn unknown_keys_and_layouts_are_refused() {
        let extra = format!("{HANDSHAKE}\nspeed = 3");
        assert!(toml::from_str::<SourceConfig>(&extra).is_err());
        let other = HANDSHAKE.replace("\"handshake\"", "\"mailbox\"");
        let err = toml::from_str::<SourceConfig>(&other).expect_err("unknown layout");
        assert!(err.to_string().contains("mailbox"), "{err}");
    }

    #[test]
    fn a_node_without_namespace_takes_the_resolved_one() {
        let node = NodeRef::parse("s=A1.B1.Seq").expect("node");
        assert_eq!(node.resolve(4), NodeId::new(4, "A1.B1.Seq"));
        let fixed = NodeRef::parse("ns=3;i=2001").expect("node");
        assert_eq!(fixed.resolve(4), NodeId::new(3, 2001u32));
    }
}
