//! Configuration of one OPC UA broadcast source: where the line server is, how to log on, and
//! which nodes carry the broadcast in which layout.
//!
//! Every plant names its nodes differently, so nothing here assumes sim-line's names: NodeIds,
//! the namespace (by URI, because a server may renumber its namespaces on restart), the layout,
//! the FIFO order and how option codes are packed all come from the file.

use std::collections::BTreeMap;
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
    /// INSECURE. Skip the checks of a trusted server certificate beyond the trust list: that
    /// it names the host it is reached by, carries the server's application URI and is within
    /// its validity dates. For a PLC whose certificate names another host (an IP address, a
    /// factory default name) until it is reissued; the trust list still applies.
    #[serde(default)]
    pub insecure_skip_cert_checks: bool,
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

/// The two ways plants hand over the broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Layout {
    /// One record at a time: the PLC presents a record, signals it on `trigger`, and waits
    /// until the client writes the acknowledgement before presenting the next one.
    Handshake {
        record: RecordNodes,
        /// The node that signals a presented record, as `trigger_kind` says.
        trigger: String,
        #[serde(default)]
        trigger_kind: TriggerKind,
        ack: String,
        #[serde(default)]
        ack_with: AckWith,
        /// Who sets a Boolean acknowledgement back to false (`ack_with = "flag"` only).
        #[serde(default)]
        ack_clear: Option<AckClear>,
        /// Boolean the PLC raises when nobody acknowledged in time.
        #[serde(default)]
        no_handshake: Option<String>,
    },
    /// The last N records plus a trigger (`LastSeq` or a counter) that changes on every new
    /// record; nothing waits for the client. The records sit either in one node per field and
    /// slot (`slots`, `slot_template`) or in one array per field (`arrays`: slot *i* is element
    /// *i* of every array).
    Fifo {
        trigger: String,
        #[serde(default)]
        order: FifoOrder,
        /// Every slot's nodes, in slot order …
        #[serde(default)]
        slots: Vec<RecordNodes>,
        /// … or one template with `{i}` for the slot index, `slot_count` times from
        /// `first_index` …
        #[serde(default)]
        slot_template: Option<RecordNodes>,
        /// … or one array node per field, elements `first_index ..= first_index + slot_count
        /// - 1` read with an index range, every array in one Read.
        #[serde(default)]
        arrays: Option<RecordNodes>,
        #[serde(default)]
        slot_count: usize,
        #[serde(default)]
        first_index: usize,
        /// `order = "ring"`: the integer node holding the ring's write position, counted like
        /// `first_index` (the PLC's own element numbers).
        #[serde(default)]
        write_index: Option<String>,
        #[serde(default)]
        write_index_points: WriteIndex,
    },
}

/// How the PLC says a record is presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// An integer stepped for every presentation.
    #[default]
    Counter,
    /// A Boolean inverted for every presentation.
    Toggle,
    /// A Boolean DataReady: true while a record waits for its acknowledgement, false in
    /// between; every rising edge is a presentation.
    Strobe,
}

impl TriggerKind {
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Counter => "counter",
            TriggerKind::Toggle => "toggle",
            TriggerKind::Strobe => "strobe",
        }
    }
}

/// What the client writes to the handshake's `ack` node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckWith {
    /// The trigger's value echoed: the counter, or the toggle bit.
    #[default]
    Counter,
    /// The record's sequence number.
    Seq,
    /// The ack Boolean inverted, for PLCs that wait for it to change.
    Toggle,
    /// The ack Boolean set to true; set back to false by the PLC or by Takt (`ack_clear`).
    Flag,
}

/// Who sets a Boolean acknowledgement back to false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckClear {
    /// The PLC, when it takes the acknowledgement.
    Plc,
    /// Takt, once the PLC has dropped its strobe (the four-phase handshake).
    Takt,
}

/// Where the FIFO's newest record is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FifoOrder {
    /// A shift register: slot 0 newest.
    #[default]
    NewestFirst,
    /// Filled from slot 0; once full, the last slot is newest.
    OldestFirst,
    /// A ring buffer: the PLC writes each record at `write_index` and moves it on.
    Ring,
}

/// What a ring's `write_index` points at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteIndex {
    /// The slot the next record will be written to (the oldest, once the ring is full).
    #[default]
    Next,
    /// The slot the newest record was written to.
    Last,
}

/// How option codes arrive, and how they become the plant's `KEY=VALUE` codes.
///
/// A positional string is cut at `positions`; any other string is split at `separators` (and
/// into `width`-character codes); array elements are codes already. Every code is then looked
/// up in `codes`, or has its `key_value` character turned into `=`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptionsFormat {
    /// Characters separating codes; whitespace always separates.
    pub separators: String,
    /// Codes packed without separators, this many characters each (`"P7LWH2"` → P7L, WH2).
    pub width: Option<usize>,
    /// The character between key and value in the PLC's codes (`:` for `SEAT:LTHR-BLK`).
    pub key_value: char,
    /// Bare codes as the line sends them → the plant's `KEY=VALUE` code.
    pub codes: BTreeMap<String, String>,
    /// A code that `codes` does not list and that has no key.
    pub unmapped: Unmapped,
    /// A fixed-width positional string: each option at its own character positions.
    pub positions: Vec<OptionPosition>,
}

impl Default for OptionsFormat {
    fn default() -> Self {
        Self {
            separators: ",;".to_owned(),
            width: None,
            key_value: '=',
            codes: BTreeMap::new(),
            unmapped: Unmapped::Reject,
            positions: Vec::new(),
        }
    }
}

/// What becomes of a bare code `codes` does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    /// The record is rejected, naming the code: a code nobody mapped may be one that matters.
    #[default]
    Reject,
    /// Left out: lines send codes no family needs (paint shop, logistics).
    Ignore,
}

/// One option of a positional string: characters `start .. start + width` (0-based) hold the
/// value of option `key`; all blanks mean the vehicle does not have it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionPosition {
    pub key: String,
    pub start: usize,
    pub width: usize,
    /// The characters as sent → the plant's value; left out, the characters are the value.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
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
        let mut nodes = Vec::new();
        match &self.layout {
            Layout::Handshake {
                record,
                trigger,
                trigger_kind,
                ack,
                ack_with,
                ack_clear,
                no_handshake,
            } => {
                record.collect("layout.record", &mut nodes);
                nodes.push(("layout.trigger".into(), trigger.clone()));
                nodes.push(("layout.ack".into(), ack.clone()));
                if let Some(n) = no_handshake {
                    nodes.push(("layout.no_handshake".into(), n.clone()));
                }
                if let Some(message) = handshake_mismatch(*trigger_kind, *ack_with, *ack_clear) {
                    let field = if ack_clear.is_some() && *ack_with != AckWith::Flag {
                        "layout.ack_clear"
                    } else {
                        "layout.ack_with"
                    };
                    push(field.into(), message.into());
                }
            }
            Layout::Fifo {
                trigger,
                order,
                slots,
                slot_template,
                arrays,
                slot_count,
                write_index,
                ..
            } => {
                nodes.push(("layout.trigger".into(), trigger.clone()));
                let given = [!slots.is_empty(), slot_template.is_some(), arrays.is_some()];
                match given.iter().filter(|g| **g).count() {
                    0 => push(
                        "layout.slots".into(),
                        "give `slots`, `slot_template` or `arrays` (with `slot_count`)".into(),
                    ),
                    1 => {}
                    _ => push(
                        "layout.slots".into(),
                        "give one of `slots`, `slot_template` and `arrays`".into(),
                    ),
                }
                if slots.is_empty() && *slot_count == 0 {
                    push(
                        "layout.slot_count".into(),
                        "must be at least 1 with `slot_template` or `arrays`".into(),
                    );
                }
                match (order, write_index) {
                    (FifoOrder::Ring, None) => push(
                        "layout.write_index".into(),
                        "a ring needs the node of its write index".into(),
                    ),
                    (FifoOrder::Ring, Some(index)) => {
                        nodes.push(("layout.write_index".into(), index.clone()));
                    }
                    (_, Some(_)) => push(
                        "layout.write_index".into(),
                        "only a ring (`order = \"ring\"`) has a write index".into(),
                    ),
                    (_, None) => {}
                }
                if let Some(arrays) = arrays {
                    arrays.collect("layout.arrays", &mut nodes);
                }
                for (i, slot) in self.fifo_slots().iter().enumerate() {
                    slot.collect(&format!("layout.slots[{i}]"), &mut nodes);
                }
            }
        }
        for issue in self.options_format.validate() {
            push(format!("options_format.{}", issue.path), issue.message);
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

/// Why a handshake's trigger and acknowledgement cannot work together, if they cannot: what a
/// file can be checked for without a connection.
fn handshake_mismatch(
    trigger: TriggerKind,
    ack: AckWith,
    clear: Option<AckClear>,
) -> Option<&'static str> {
    let strobe = trigger == TriggerKind::Strobe;
    match (ack, clear) {
        (AckWith::Flag, None) => Some(
            "a Boolean acknowledgement needs `ack_clear`: who sets it back to false, `plc` or `takt`",
        ),
        (AckWith::Flag, Some(AckClear::Takt)) if !strobe => Some(
            "Takt clears its acknowledgement when the strobe falls; with a counter or toggle \
             trigger the PLC must (`ack_clear = \"plc\"`)",
        ),
        (AckWith::Flag, Some(_)) => None,
        (_, Some(_)) => Some("`ack_clear` goes with `ack_with = \"flag\"` only"),
        (AckWith::Counter, None) if strobe => Some(
            "echoing a strobe would always write true: use `ack_with = \"flag\"`, `\"seq\"` or \
             `\"toggle\"`",
        ),
        _ => None,
    }
}

impl OptionsFormat {
    /// Problems within the format itself (codes are checked against the plant's options by
    /// the controller, which knows them).
    fn validate(&self) -> Vec<SourceIssue> {
        let mut issues = Vec::new();
        let mut push = |path: String, message: &str| {
            issues.push(SourceIssue {
                path,
                message: message.to_owned(),
            });
        };
        if self.width == Some(0) {
            push("width".into(), "must be at least 1");
        }
        if self.key_value.is_whitespace() || self.separators.contains(self.key_value) {
            push(
                "key_value".into(),
                "must not be whitespace or one of `separators`",
            );
        }
        if !self.positions.is_empty() && self.width.is_some() {
            push(
                "positions".into(),
                "a positional string has no `width`: give one or the other",
            );
        }
        let mut ends: Vec<(usize, usize)> = Vec::new();
        for (i, p) in self.positions.iter().enumerate() {
            if p.width == 0 {
                push(format!("positions[{i}].width"), "must be at least 1");
            }
            let span = (p.start, p.start + p.width);
            if ends.iter().any(|&(s, e)| span.0 < e && s < span.1) {
                push(
                    format!("positions[{i}].start"),
                    "overlaps another option's characters",
                );
            }
            ends.push(span);
            if let Some((sent, _)) = p.values.iter().find(|(k, _)| k.chars().count() > p.width) {
                push(
                    format!("positions[{i}].values.{sent}"),
                    "is longer than the position's width",
                );
            }
        }
        issues
    }

    /// Every `KEY=VALUE` code this format can produce from its tables, with its path, so the
    /// controller can check them against the plant's option list.
    pub fn mapped_codes(&self) -> Vec<(String, String)> {
        let mut codes: Vec<(String, String)> = self
            .codes
            .iter()
            .map(|(sent, code)| (format!("codes.{sent}"), code.clone()))
            .collect();
        for (i, p) in self.positions.iter().enumerate() {
            for (sent, value) in &p.values {
                codes.push((
                    format!("positions[{i}].values.{sent}"),
                    format!("{}={value}", p.key),
                ));
            }
        }
        codes
    }

    /// The option keys of a positional string, with their paths.
    pub fn position_keys(&self) -> impl Iterator<Item = (String, &str)> {
        self.positions
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("positions[{i}].key"), p.key.as_str()))
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
        trigger = "s=A1.B1.Counter"
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
        if let Layout::Handshake { trigger, .. } = &mut cfg.layout {
            *trigger = "Counter".into();
        }
        let paths: Vec<String> = cfg.validate().into_iter().map(|i| i.path).collect();
        assert_eq!(
            paths,
            [
                "endpoint",
                "user",
                "poll_ms",
                "layout.trigger",
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
    fn with_layout(layout: &str) -> SourceConfig {
        parse(&format!(
            r#"
            line = "A1"
            point = "B1"
            endpoint = "opc.tcp://127.0.0.1:4840/"
            [layout]
            {layout}
            "#
        ))
    }

    fn paths(cfg: &SourceConfig) -> Vec<String> {
        cfg.validate().into_iter().map(|i| i.path).collect()
    }

    #[test]
    fn handshake_triggers_and_acknowledgements_are_checked_as_pairs() {
        let record = r#"record = { seq = "ns=2;i=1", vin = "ns=2;i=2", model = "ns=2;i=3", options = "ns=2;i=4" }"#;
        let table = [
            ("counter", "counter", None, None),
            ("counter", "seq", None, None),
            ("toggle", "counter", None, None),
            ("toggle", "toggle", None, None),
            ("strobe", "flag", Some("takt"), None),
            ("strobe", "flag", Some("plc"), None),
            ("strobe", "seq", None, None),
            ("counter", "flag", Some("plc"), None),
            ("strobe", "counter", None, Some("layout.ack_with")),
            ("strobe", "flag", None, Some("layout.ack_with")),
            ("counter", "flag", Some("takt"), Some("layout.ack_with")),
            ("counter", "seq", Some("plc"), Some("layout.ack_clear")),
        ];
        for (trigger, ack, clear, fault) in table {
            let clear = clear
                .map(|c| format!("ack_clear = \"{c}\""))
                .unwrap_or_default();
            let cfg = with_layout(&format!(
                "kind = \"handshake\"\ntrigger = \"ns=2;i=5\"\ntrigger_kind = \"{trigger}\"\nack = \"ns=2;i=6\"\nack_with = \"{ack}\"\n{clear}\n{record}"
            ));
            let expected: Vec<String> = fault.into_iter().map(str::to_owned).collect();
            assert_eq!(paths(&cfg), expected, "{trigger} / {ack} / {clear}");
        }
    }

    #[test]
    fn the_old_counter_key_still_names_the_trigger() {
        let cfg = parse(HANDSHAKE);
        assert!(
            matches!(&cfg.layout, Layout::Handshake { trigger, trigger_kind: TriggerKind::Counter, .. } if trigger == "s=A1.B1.Counter")
        );
    }

    #[test]
    fn field_arrays_and_rings_need_their_counts_and_index() {
        let arrays = r#"arrays = { seq = "ns=2;i=1", vin = "ns=2;i=2", model = "ns=2;i=3", options = "ns=2;i=4" }"#;
        let ok = with_layout(&format!(
            "kind = \"fifo\"\ntrigger = \"ns=2;i=9\"\nslot_count = 32\n{arrays}"
        ));
        assert_eq!(paths(&ok), Vec::<String>::new());
        let no_count = with_layout(&format!(
            "kind = \"fifo\"\ntrigger = \"ns=2;i=9\"\n{arrays}"
        ));
        assert_eq!(paths(&no_count), ["layout.slot_count"]);
        let ring = with_layout(&format!(
            "kind = \"fifo\"\ntrigger = \"ns=2;i=9\"\norder = \"ring\"\nslot_count = 8\n{arrays}"
        ));
        assert_eq!(paths(&ring), ["layout.write_index"]);
        let stray = with_layout(&format!(
            "kind = \"fifo\"\ntrigger = \"ns=2;i=9\"\nwrite_index = \"ns=2;i=8\"\nslot_count = 8\n{arrays}"
        ));
        assert_eq!(paths(&stray), ["layout.write_index"]);
        let both = with_layout(&format!(
            "kind = \"fifo\"\ntrigger = \"ns=2;i=9\"\nslot_count = 8\n{arrays}\nslot_template = {{ seq = \"ns=2;s=S{{i}}\", vin = \"ns=2;s=V{{i}}\", model = \"ns=2;s=M{{i}}\", options = \"ns=2;s=O{{i}}\" }}"
        ));
        assert_eq!(paths(&both), ["layout.slots"]);
    }

    #[test]
    fn option_formats_are_checked_in_themselves() {
        let mut cfg = parse(HANDSHAKE);
        cfg.options_format.key_value = ',';
        cfg.options_format.width = Some(2);
        cfg.options_format.positions = vec![
            OptionPosition {
                key: "DRIVE".into(),
                start: 0,
                width: 1,
                values: BTreeMap::new(),
            },
            OptionPosition {
                key: "SEAT".into(),
                start: 0,
                width: 2,
                values: BTreeMap::from([("LTB".into(), "LTHR-BLK".into())]),
            },
        ];
        assert_eq!(
            paths(&cfg),
            [
                "options_format.key_value",
                "options_format.positions",
                "options_format.positions[1].start",
                "options_format.positions[1].values.LTB",
            ]
        );
    }
}
