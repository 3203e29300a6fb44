use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use takt_core::config::{FamilyConfig, PlantConfig};

use super::{ConfigError, ControllerSettings, Database, load, parse};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml")
}

#[test]
fn example_config_loads_and_indexes() {
    let config = load(&example_path()).unwrap_or_else(|e| panic!("example.toml:\n{e}"));
    let plant = &config.plant.config;
    assert_eq!(plant.plant.name, "Leipzig Assembly");
    assert_eq!(plant.lines.len(), 1);
    let line = config.plant.line("A1").expect("line A1");
    assert_eq!(
        (line.takt_ms, line.modulus, line.window),
        (60_000, 10_000, 50)
    );
    for family in [
        "seats",
        "cockpit",
        "front_bumper",
        "rear_bumper",
        "wheels",
        "door_panels",
    ] {
        assert!(config.plant.family(family).is_some(), "family {family}");
    }
    assert!(config.plant.station("PS-WHEELS").is_some());
    assert_eq!(config.controller, ControllerSettings::default());
    assert_eq!(config.path, example_path());
}

/// First-match resolution as the core does it, to check the example's rules from the outside.
fn resolves(family: &FamilyConfig, model: &str, options: &[String]) -> bool {
    family.rules.iter().any(|rule| {
        (rule.models.is_empty() || rule.models.iter().any(|m| m == model))
            && rule.options.iter().all(|o| options.contains(o))
    })
}

/// The example is the reference people copy: every model and every combination of the option
/// keys a family's rules look at must give that family a part (where the family applies).
#[test]
fn example_rules_cover_every_combination() {
    let config = load(&example_path()).unwrap_or_else(|e| panic!("example.toml:\n{e}"));
    let plant: &PlantConfig = &config.plant.config;
    for family in &plant.families {
        let keys: Vec<&str> = family
            .rules
            .iter()
            .flat_map(|rule| &rule.options)
            .filter_map(|code| code.split_once('=').map(|(key, _)| key))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut combinations: Vec<Vec<String>> = vec![Vec::new()];
        for key in keys {
            combinations = combinations
                .iter()
                .flat_map(|codes| {
                    plant.options[key].iter().map(move |value| {
                        let mut codes = codes.clone();
                        codes.push(format!("{key}={value}"));
                        codes
                    })
                })
                .collect();
        }
        for model in &plant.models {
            if !family.models.is_empty() && !family.models.contains(&model.code) {
                continue;
            }
            for codes in &combinations {
                assert!(
                    resolves(family, &model.code, codes),
                    "family {} has no part for {} {codes:?}",
                    family.id,
                    model.code
                );
            }
        }
    }
}

/// A small valid file; the invalid cases below each replace whole lines of it, so the line
/// numbers in their expectations are the line numbers shown here.
const BASE: &str = r#"[plant]
name = "Test plant"

[[models]]
code = "SUV5"

[[models]]
code = "SED4"

[options]
SEAT = ["CLTH", "LTHR"]
DRIVE = ["LHD", "RHD"]

[[lines]]
id = "A1"
modulus = 10000
window = 50
takt_ms = 60000
broadcast_points = [{ id = "B1" }]
install_stations = [
    { id = "SEATS", broadcast_point = "B1", offset_positions = 45 },
    { id = "DOORS", broadcast_point = "B1", offset_positions = 35 },
]

[[families]]
id = "seats"
line = "A1"
install_station = "SEATS"
rack_size = 6
sequencing = "supplier"

[[families.rules]]
models = ["SUV5"]
options = ["SEAT=LTHR"]
part = "ST-SUV-L"

[[families.rules]]
part = "ST-C"

[[families]]
id = "door_panels"
line = "A1"
install_station = "DOORS"
rack_size = 8
sequencing = "in-plant"
station = "PS1"
rules = [
    { options = ["DRIVE=LHD"], part = "DP-L" },
    { options = ["DRIVE=RHD"], part = "DP-R" },
]

[[stations]]
id = "PS1"
bins = [
    { id = "B01", part = "DP-L" },
    { id = "B02", part = "DP-R" },
]

[controller]
batch_max = 256
"#;

/// BASE with whole lines replaced (1-based); "" blanks a line and keeps the numbering.
fn edited(edits: &[(usize, &str)]) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    for &(number, text) in edits {
        *lines
            .get_mut(number - 1)
            .unwrap_or_else(|| panic!("BASE has no line {number}")) = text;
    }
    lines.join("\n") + "\n"
}

#[test]
fn base_is_valid() {
    let config = parse(Path::new("base.toml"), BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.controller.batch_max, 256);
    assert_eq!(config.path, Path::new("base.toml"));
}

struct Case {
    name: &'static str,
    edits: &'static [(usize, &'static str)],
    /// Every error expected, in order: line, field path, a piece of the message.
    errors: &'static [(usize, &'static str, &'static str)],
}

const INVALID: &[Case] = &[
    Case {
        name: "TOML syntax error",
        edits: &[(29, "rack_size 6")],
        errors: &[(29, "", "expected `=`")],
    },
    Case {
        name: "duplicate key is a syntax error",
        edits: &[(42, "line = \"A1\"\nline = \"A1\"")],
        errors: &[(43, "", "duplicate key")],
    },
    Case {
        name: "unknown top-level key",
        edits: &[(59, "[yard]")],
        errors: &[(59, "yard", "unknown top-level key")],
    },
    Case {
        name: "unknown nested field (typo)",
        edits: &[(16, "modulos = 10000")],
        errors: &[(16, "lines[0].modulos", "unknown field `modulos`")],
    },
    Case {
        name: "wrong type: string for takt_ms",
        edits: &[(18, "takt_ms = \"60000\"")],
        errors: &[(18, "lines[0].takt_ms", "invalid type: string")],
    },
    Case {
        name: "wrong type inside an inline table in an array",
        edits: &[(48, "    { options = [\"DRIVE=LHD\"], part = 7 },")],
        errors: &[(48, "families[1].rules[0].part", "invalid type: integer")],
    },
    Case {
        name: "unknown enum value",
        edits: &[(45, "sequencing = \"inplant\"")],
        errors: &[(45, "families[1].sequencing", "unknown variant `inplant`")],
    },
    Case {
        name: "missing required field: the line of its table header",
        edits: &[(29, "")],
        errors: &[(25, "families[0].rack_size", "missing field `rack_size`")],
    },
    Case {
        name: "missing field in a [[families.rules]] table",
        edits: &[(38, "")],
        errors: &[(37, "families[0].rules[1].part", "missing field `part`")],
    },
    Case {
        name: "missing field in an inline table",
        edits: &[(55, "    { id = \"B01\" },")],
        errors: &[(55, "stations[0].bins[0].part", "missing field `part`")],
    },
    Case {
        name: "missing top-level table",
        edits: &[(1, ""), (2, "")],
        errors: &[(1, "plant", "missing field `plant`")],
    },
    Case {
        name: "unknown model in a rule",
        edits: &[(33, "models = [\"SUV6\"]")],
        errors: &[(33, "families[0].rules[0].models[0]", "unknown model `SUV6`")],
    },
    Case {
        name: "unknown option code in a rule",
        edits: &[(34, "options = [\"SEAT=LEATHER\"]")],
        errors: &[(
            34,
            "families[0].rules[0].options[0]",
            "unknown value `LEATHER` for option `SEAT`",
        )],
    },
    Case {
        name: "family references a missing line",
        edits: &[(42, "line = \"A2\"")],
        errors: &[(42, "families[1].line", "no line `A2`")],
    },
    Case {
        name: "in-plant family without station: the family's header line",
        edits: &[(46, "")],
        errors: &[(40, "families[1].station", "needs the pick station")],
    },
    Case {
        name: "rule part with no bin at the station",
        edits: &[(49, "    { options = [\"DRIVE=RHD\"], part = \"DP-X\" },")],
        errors: &[(
            49,
            "families[1].rules[1].part",
            "no bin holding part `DP-X`",
        )],
    },
    Case {
        name: "duplicate family id",
        edits: &[(41, "id = \"seats\"")],
        errors: &[(41, "families[1].id", "duplicate `seats`")],
    },
    Case {
        name: "window too large for the modulus",
        edits: &[(17, "window = 5000")],
        errors: &[(17, "lines[0].window", "half the modulus")],
    },
    Case {
        name: "defaulted window too large: falls back to the line's header",
        edits: &[(16, "modulus = 60"), (17, "")],
        errors: &[(14, "lines[0].window", "half the modulus (30)")],
    },
    Case {
        name: "install station on a missing broadcast point",
        edits: &[(
            22,
            "    { id = \"DOORS\", broadcast_point = \"B9\", offset_positions = 35 },",
        )],
        errors: &[(
            22,
            "lines[0].install_stations[1].broadcast_point",
            "no broadcast point `B9`",
        )],
    },
    Case {
        name: "three semantic errors, each on its own line",
        edits: &[
            (
                22,
                "    { id = \"DOORS\", broadcast_point = \"B1\", offset_positions = 0 },",
            ),
            (29, "rack_size = 0"),
            (56, "    { id = \"B01\", part = \"DP-R\" },"),
        ],
        errors: &[
            (
                22,
                "lines[0].install_stations[1].offset_positions",
                "greater than 0",
            ),
            (29, "families[0].rack_size", "greater than 0"),
            (56, "stations[0].bins[1].id", "duplicate `B01`"),
        ],
    },
    Case {
        name: "shape and semantic errors reported together",
        edits: &[(59, "[yard]"), (41, "id = \"seats\""), (60, "spots = 3")],
        errors: &[
            (41, "families[1].id", "duplicate `seats`"),
            (59, "yard", "unknown top-level key"),
        ],
    },
    Case {
        name: "a supplier with a bad tenant id, an in-plant family and a missing one",
        edits: &[(
            58,
            "[[suppliers]]\nid = \"seat co\"\nname = \"Seats\"\nfamilies = [\"door_panels\", \"nope\"]\n",
        )],
        errors: &[
            (59, "suppliers[0].id", "may hold only letters"),
            (61, "suppliers[0].families[0]", "sequenced in-plant"),
            (61, "suppliers[0].families[1]", "no family `nope`"),
        ],
    },
    Case {
        name: "two suppliers under one tenant id, both building seats",
        edits: &[(
            58,
            "[[suppliers]]\nid = \"a\"\nname = \"A\"\nfamilies = [\"seats\"]\n[[suppliers]]\nid = \"a\"\nname = \"B\"\nfamilies = [\"seats\"]\n",
        )],
        errors: &[
            (63, "suppliers[1].id", "already a supplier or carrier"),
            (
                65,
                "suppliers[1].families[0]",
                "already built by supplier `a`",
            ),
        ],
    },
    Case {
        name: "an alternate supplier nobody configured, a carrier with a bad SCAC",
        edits: &[
            (31, "alternate_supplier = \"ghost\""),
            (
                58,
                "[[carriers]]\nid = \"haul\"\nname = \"Haul\"\nscac = \"toolong\"\n",
            ),
        ],
        errors: &[
            (31, "families[0].alternate_supplier", "no supplier `ghost`"),
            (61, "carriers[0].scac", "2 to 4 capital letters"),
        ],
    },
    Case {
        name: "unknown controller field",
        edits: &[(60, "batch_size = 256")],
        errors: &[(60, "controller.batch_size", "unknown field `batch_size`")],
    },
    Case {
        name: "controller value out of range",
        edits: &[(60, "batch_max = 0")],
        errors: &[(60, "controller.batch_max", "greater than 0")],
    },
    Case {
        name: "an outbox that keeps nothing",
        edits: &[(60, "outbox_keep_hours = 0")],
        errors: &[(60, "controller.outbox_keep_hours", "greater than 0")],
    },
    Case {
        name: "database URL of an unsupported kind",
        edits: &[(60, "database_url = \"mysql://db/takt\"")],
        errors: &[(60, "controller.database_url", "must start with")],
    },
];

#[test]
fn invalid_configs_name_line_and_field() {
    let file = Path::new("plant.toml");
    let mut failures = Vec::new();
    for case in INVALID {
        let got = match parse(file, &edited(case.edits)) {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.name));
                continue;
            }
            Err(e) => e.errors,
        };
        let matches = got.len() == case.errors.len()
            && got
                .iter()
                .zip(case.errors)
                .all(|(error, &(line, field, text))| {
                    error.file == file
                        && error.line == line
                        && error.field == field
                        && error.message.contains(text)
                        && !error.message.is_empty()
                });
        if !matches {
            let got: Vec<String> = got.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{}:\n  expected {:?}\n  got      {got:#?}",
                case.name, case.errors
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_display_file_line_field_message_one_per_line() {
    let text = edited(&[(16, "modulus = 1"), (29, "rack_size = 0")]);
    let errors = parse(Path::new("conf/plant.toml"), &text).expect_err("invalid");
    assert_eq!(
        errors.to_string(),
        "conf/plant.toml:16: lines[0].modulus: must be at least 2\n\
         conf/plant.toml:17: lines[0].window: must be between 1 and half the modulus (0)\n\
         conf/plant.toml:29: families[0].rack_size: must be greater than 0"
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = edited(&[(29, "rack_size 6")]);
    let errors = parse(Path::new("plant.toml"), &text).expect_err("invalid");
    let [error] = errors.errors.as_slice() else {
        panic!("one syntax error expected: {errors}");
    };
    assert!(error.to_string().starts_with("plant.toml:29: "), "{error}");
    assert!(!error.to_string().contains('\n'), "{error}");
}

#[test]
fn missing_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nowhere.toml");
    let errors = load(&path).expect_err("no such file");
    let [error] = errors.errors.as_slice() else {
        panic!("one error expected: {errors}");
    };
    assert_eq!(
        (error.file.as_path(), error.line, error.field.as_str()),
        (path.as_path(), 0, "")
    );
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot read", path.display())),
        "{errors}"
    );
}

#[test]
fn load_reads_the_file_and_keeps_its_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plant.toml");
    std::fs::write(&path, edited(&[(42, "line = \"A2\"")])).expect("write");
    let errors = load(&path).expect_err("invalid");
    assert_eq!(
        errors.errors,
        vec![ConfigError {
            file: path.clone(),
            line: 42,
            field: "families[1].line".to_owned(),
            message: "no line `A2`".to_owned(),
        }]
    );
    std::fs::write(&path, BASE).expect("write");
    assert_eq!(load(&path).expect("valid").path, path);
}

#[test]
fn controller_table_is_optional_and_database_defaults_to_sqlite_in_data_dir() {
    let text = edited(&[(59, ""), (60, "")]);
    let config = parse(Path::new("plant.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.controller, ControllerSettings::default());
    assert_eq!(
        config.controller.database(),
        Database::Sqlite("sqlite://data/takt.db".to_owned())
    );
}

#[test]
fn database_url_selects_the_backend() {
    let cases = BTreeMap::from([
        (
            "postgres://takt@db/takt",
            Database::Postgres("postgres://takt@db/takt".to_owned()),
        ),
        (
            "postgresql://db/takt",
            Database::Postgres("postgresql://db/takt".to_owned()),
        ),
        (
            "sqlite:///var/lib/takt/takt.db",
            Database::Sqlite("sqlite:///var/lib/takt/takt.db".to_owned()),
        ),
    ]);
    for (url, expected) in cases {
        let settings = ControllerSettings {
            database_url: Some(url.to_owned()),
            ..ControllerSettings::default()
        };
        assert!(settings.validate().is_empty(), "{url}");
        assert_eq!(settings.database(), expected, "{url}");
    }
}

/// Plant I/O appended to BASE; its line `k` (0-based) is file line `io_line(k)`.
const IO_OK: &str = r#"[[sources]]
line = "A1"
point = "B1"
endpoint = "opc.tcp://127.0.0.1:4840/"
namespace_uri = "urn:takt:sim-line"
[sources.layout]
kind = "handshake"
trigger = "s=A1.B1.Counter"
ack = "s=A1.B1.Ack"
record = { seq = "s=A1.B1.Seq", vin = "s=A1.B1.Vin", model = "s=A1.B1.Model", options = "s=A1.B1.Options" }

[[devices]]
id = "PTL-1"
endpoint = "127.0.0.1:1502"
units = [{ unit = 1, profile = "sim-line", station = "PS1", first_bin_position = 0, first_slot_position = 4 }]
"#;

fn with_io(io: &str) -> String {
    format!("{BASE}{io}")
}

fn io_line(k: usize) -> usize {
    BASE.lines().count() + 1 + k
}

#[test]
fn sources_and_devices_load_and_map_every_lamp() {
    let config = parse(Path::new("plant.toml"), &with_io(IO_OK)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sources.len(), 1);
    let lamps = super::plant_io::LampMap::build(&config.devices, &config.plant.config);
    use takt_core::model::LightTarget;
    let lamp = |target| lamps.lamp("PS1", &target).map(|l| l.position);
    assert_eq!(lamp(LightTarget::Bin("B02".into())), Some(1));
    assert_eq!(lamp(LightTarget::Slot(1)), Some(4));
    assert_eq!(lamp(LightTarget::Slot(8)), Some(11));
    assert_eq!(lamp(LightTarget::Slot(9)), None, "the rack has 8 slots");
}

#[test]
fn bad_sources_and_devices_name_line_and_field() {
    let io = IO_OK
        .replace("point = \"B1\"", "point = \"B9\"")
        .replace("trigger = \"s=A1.B1.Counter\"", "trigger = \"Counter\"")
        .replace("endpoint = \"127.0.0.1:1502\"", "endpoint = \"plc-7\"")
        .replace("profile = \"sim-line\", station = \"PS1\", first_bin_position = 0, first_slot_position = 4", "profile = \"sim-line\", station = \"PS1\", first_bin_position = 0, first_slot_position = 12");
    let errors = parse(Path::new("plant.toml"), &with_io(&io))
        .expect_err("refused")
        .errors;
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (io_line(2), "sources[0].point"),
            (io_line(7), "sources[0].layout.trigger"),
            (io_line(13), "devices[0].endpoint"),
            (io_line(14), "devices[0].units[0].station"),
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("no broadcast point `B9`"));
    assert!(
        errors[3].message.contains("profile `sim-line` has 0..16"),
        "{}",
        errors[3]
    );

    let unknown = IO_OK.replace("kind = \"handshake\"", "kind = \"handshake\"\nspeed = 3");
    let errors = parse(Path::new("plant.toml"), &with_io(&unknown))
        .expect_err("refused")
        .errors;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].field.starts_with("sources[0].layout"),
        "{errors:#?}"
    );
}

#[test]
fn a_sources_option_tables_must_name_the_plants_codes() {
    let io = IO_OK.replace(
        "[sources.layout]",
        "[sources.options_format]\ncodes = { P7L = \"SEAT=LTHR\", X9 = \"SEAT=VELVET\" }\npositions = [{ key = \"ROOF\", start = 0, width = 1 }]\n[sources.layout]",
    );
    let errors = parse(Path::new("plant.toml"), &with_io(&io))
        .expect_err("refused")
        .errors;
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (io_line(6), "sources[0].options_format.codes.X9"),
            (io_line(7), "sources[0].options_format.positions[0].key"),
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("`VELVET`"), "{}", errors[0]);
}

#[test]
fn offline_lamps_are_off_keep_or_a_colour_and_anything_else_is_named() {
    use super::plant_io::OfflineLamps;
    use takt_core::config::LampColour;
    let with_offline = |value: &str| {
        IO_OK.replace(
            "endpoint = \"127.0.0.1:1502\"",
            &format!("endpoint = \"127.0.0.1:1502\"\noffline_lamps = \"{value}\""),
        )
    };
    for (value, expected) in [
        ("off", OfflineLamps::Off),
        ("keep", OfflineLamps::Keep),
        ("yellow", OfflineLamps::Colour(LampColour::Yellow)),
    ] {
        let cfg = parse(Path::new("plant.toml"), &with_io(&with_offline(value)))
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(cfg.devices[0].offline_lamps, expected);
    }
    let errors = parse(Path::new("plant.toml"), &with_io(&with_offline("purple")))
        .expect_err("refused")
        .errors;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, "devices[0].offline_lamps", "{errors:#?}");
    assert!(
        errors[0]
            .message
            .contains("`purple`: expected `off`, `keep` or a colour"),
        "{}",
        errors[0]
    );
}
