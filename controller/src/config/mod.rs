//! Configuration loader: one TOML file to the core's [`ConfigIndex`] and the controller's own
//! [`ControllerSettings`].
//!
//! Bad configuration is refused at start with file, line and field named, and with *every*
//! problem found at once (syntax aside, which stops the parser), so a commissioning engineer
//! fixes the file in one pass instead of one restart per mistake. Reference:
//! `docs/configuration.md`; example: `config/example.toml`.
//!
//! Three passes over the same text: toml_edit for syntax, top-level keys and the spans of every
//! path; serde (through `serde_path_to_error`) for shapes and types; then the core's
//! [`PlantConfig::validate`] and [`ControllerSettings::validate`] for cross-references and
//! ranges, whose paths the [`locate`] module turns back into lines.

mod locate;
pub mod plant_io;
mod settings;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use takt_core::{ConfigIndex, ConfigIssue, PlantConfig};

use locate::{Locator, join, line_at};
pub use settings::{ControllerSettings, Database};

/// The tables a configuration file may have at its top level.
///
/// The core's `PlantConfig` accepts unknown top-level keys so that `[controller]` can share the
/// file; this list is what catches a misspelt `[familys]` instead.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "plant",
    "alarms",
    "models",
    "options",
    "lines",
    "families",
    "stations",
    "suppliers",
    "carriers",
    "controller",
    "sources",
    "devices",
];

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub plant: ConfigIndex,
    pub controller: ControllerSettings,
    /// OPC UA broadcast sources (none: the controller takes broadcasts only from its API).
    pub sources: Vec<takt_plc_bridge::opcua::SourceConfig>,
    /// Modbus TCP light modules.
    pub devices: Vec<plant_io::DeviceConfig>,
    /// The file it was read from, for messages and reloads.
    pub path: PathBuf,
}

/// One problem in a configuration file, displayed as `FILE:LINE: FIELD: MESSAGE`.
///
/// `line` is 1-based; 0 means the problem is with the file as a whole (it could not be read),
/// and the line is then left out of the display. `field` is the dotted path
/// (`families[2].rules[0].options[1]`); it is empty for syntax errors and is then left out too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a configuration file, in file order; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// The 1-based line of each dotted path (`sources[0].layout.trigger`) in configuration `text`,
/// or of its nearest ancestor written there; 1 when the text does not parse.
#[must_use]
pub fn lines_of<'p>(text: &str, paths: impl IntoIterator<Item = &'p str>) -> Vec<usize> {
    let doc = toml_edit::Document::parse(text).ok();
    let locator = doc.as_ref().map(|doc| Locator::new(text, doc));
    paths
        .into_iter()
        .map(|path| locator.as_ref().map_or(1, |l| l.line_of(path)))
        .collect()
}

/// Read and validate the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        errors: vec![ConfigError {
            file: path.to_owned(),
            line: 0,
            field: String::new(),
            message: format!("cannot read configuration file: {e}"),
        }],
    })?;
    parse(path, &text)
}

/// Validate configuration `text`; `path_for_messages` is only used to name the file in errors
/// and is kept as [`Config::path`].
pub fn parse(path_for_messages: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let error = |line: usize, field: String, message: String| ConfigError {
        file: path_for_messages.to_owned(),
        line,
        field,
        message,
    };
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_at(text, span.start));
        ConfigErrors {
            errors: vec![error(line, String::new(), one_line(e.message()))],
        }
    })?;
    let locator = Locator::new(text, &doc);
    let mut errors = Vec::new();

    for (key, _) in doc.iter() {
        if !TOP_LEVEL_KEYS.contains(&key) {
            errors.push(error(
                locator.line_of(key),
                key.to_owned(),
                format!(
                    "unknown top-level key; expected one of: {}",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            ));
        }
    }

    // Two typed views of the same text: the core's plant (which ignores `[controller]`) and the
    // controller's table (which ignores the rest).
    let plant = deserialize::<PlantConfig>(text, &locator, &error)
        .map_err(|e| errors.push(e))
        .ok();
    let controller = deserialize::<ControllerFile>(text, &locator, &error)
        .map(|file| file.controller)
        .map_err(|e| errors.push(e))
        .ok();
    let io = deserialize::<plant_io::PlantIoFile>(text, &locator, &error)
        .map_err(|e| errors.push(e))
        .ok();

    let mut issues: Vec<ConfigIssue> = Vec::new();
    if let Some(plant) = &plant {
        issues.extend(plant.validate());
    }
    if let Some(controller) = &controller {
        issues.extend(controller.validate());
    }
    if let (Some(io), Some(plant)) = (&io, &plant) {
        let dir = path_for_messages.parent().unwrap_or(Path::new("."));
        issues.extend(io.validate(plant, dir));
    }
    errors.extend(
        issues
            .into_iter()
            .map(|issue| error(locator.line_of(&issue.path), issue.path, issue.message)),
    );

    if errors.is_empty()
        && let (Some(plant), Some(controller), Some(io)) = (plant, controller, io)
    {
        match plant.index() {
            Ok(plant) => {
                return Ok(Config {
                    plant,
                    controller,
                    sources: io.sources,
                    devices: io.devices,
                    path: path_for_messages.to_owned(),
                });
            }
            // validate() passed a moment ago, so this is only reached if index() checks more.
            Err(issues) => errors.extend(
                issues
                    .into_iter()
                    .map(|issue| error(locator.line_of(&issue.path), issue.path, issue.message)),
            ),
        }
    }
    // Stable: problems on one line keep the order they were found in.
    errors.sort_by_key(|e| e.line);
    Err(ConfigErrors { errors })
}

/// The file as the controller sees it: only its own table.
#[derive(Deserialize)]
struct ControllerFile {
    #[serde(default)]
    controller: ControllerSettings,
}

/// Deserialise the whole text into `T`, turning the first serde error into a located one.
fn deserialize<T: DeserializeOwned>(
    text: &str,
    locator: &Locator<'_>,
    error: &impl Fn(usize, String, String) -> ConfigError,
) -> Result<T, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        // toml_edit accepted the text already; kept for the day the two parsers disagree.
        let line = e.span().map_or(1, |span| locator.line_at(span.start));
        error(line, String::new(), one_line(e.message()))
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let mut field = match e.path().to_string() {
            root if root == "." => String::new(),
            path => path,
        };
        let inner = e.into_inner();
        // serde names a missing field only in its message; the path stops at the table.
        if let Some(missing) = missing_field(inner.message()) {
            field = join(&field, missing);
        }
        let line = match inner.span() {
            Some(span) => locator.line_at(span.start),
            None => locator.line_of(&field),
        };
        error(line, field, one_line(inner.message()))
    })
}

/// `missing field `name`` is serde's fixed wording (`serde::de::Error::missing_field`).
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(name, _)| name)
}

/// Errors are displayed one per line; parser messages may span several.
fn one_line(message: &str) -> String {
    message.trim().lines().collect::<Vec<_>>().join("; ")
}
