//! Lines for errors: byte offsets to 1-based lines, and dotted paths to where they are written.
//!
//! Semantic checks run on the deserialised structs, which have forgotten where anything came
//! from; all they can name is a path such as `families[2].rules[0].options[1]`. The locator walks
//! the toml_edit document once and remembers the offset of every path it can spell the same way
//! (`key.key`, `[index]` for array elements and `[[array of tables]]` entries).

use std::collections::HashMap;

use toml_edit::{Document, Item, Key, Table, Value};

#[derive(Debug)]
pub(crate) struct Locator<'t> {
    text: &'t str,
    offsets: HashMap<String, usize>,
}

impl<'t> Locator<'t> {
    pub(crate) fn new(text: &'t str, doc: &Document<&str>) -> Self {
        let mut locator = Self {
            text,
            offsets: HashMap::new(),
        };
        locator.table("", doc.as_table());
        locator
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    /// Line of `path`, or of its nearest ancestor that is written in the file: a field left to
    /// its default has no line, the table that lacks it does. Line 1 if nothing matches.
    pub(crate) fn line_of(&self, path: &str) -> usize {
        let mut path = path;
        loop {
            if let Some(&offset) = self.offsets.get(path) {
                return self.line_at(offset);
            }
            match path.rfind(['.', '[']) {
                Some(end) => path = &path[..end],
                None => return 1,
            }
        }
    }

    fn record(&mut self, path: &str, offset: Option<usize>) {
        if let Some(offset) = offset {
            self.offsets.insert(path.to_owned(), offset);
        }
    }

    fn table(&mut self, prefix: &str, table: &Table) {
        for (key, item) in table.iter() {
            let path = join(prefix, key);
            // The key rather than the value: a multi-line array starts where its key does.
            let start = table.key(key).and_then(Key::span).or_else(|| item.span());
            self.record(&path, start.map(|s| s.start));
            match item {
                Item::Table(sub) => self.table(&path, sub),
                Item::ArrayOfTables(tables) => {
                    for (i, sub) in tables.iter().enumerate() {
                        let at = format!("{path}[{i}]");
                        // Each `[[header]]` has its own span; the key only has the first one's.
                        self.record(&at, sub.span().map(|s| s.start));
                        self.table(&at, sub);
                    }
                }
                Item::Value(value) => self.value(&path, value),
                Item::None => {}
            }
        }
    }

    fn value(&mut self, path: &str, value: &Value) {
        match value {
            Value::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    self.record(&at, element.span().map(|s| s.start));
                    self.value(&at, element);
                }
            }
            Value::InlineTable(table) => {
                for (key, element) in table.iter() {
                    let at = join(path, key);
                    let start = table
                        .key(key)
                        .and_then(Key::span)
                        .or_else(|| element.span());
                    self.record(&at, start.map(|s| s.start));
                    self.value(&at, element);
                }
            }
            _ => {}
        }
    }
}

/// 1-based line of a byte offset into `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// `prefix.key`, or `key` at the top level.
pub(crate) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}
