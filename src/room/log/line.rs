//! A log line written field by field.

/// A JSON object being written, field by field, in the order written (an operator reads
/// `level` and `message` first in `wrangler tail`).
pub(super) struct Line(pub(super) String);

impl Line {
    pub(super) fn key(&mut self, name: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(name);
        self.0.push_str("\":");
    }

    pub(super) fn text(&mut self, name: &str, value: &str) {
        self.key(name);
        // A string always serializes.
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    pub(super) fn maybe(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(name, value);
        }
    }

    pub(super) fn number(&mut self, name: &str, value: u64) {
        self.key(name);
        self.0.push_str(&value.to_string());
    }

    pub(super) fn flag(&mut self, name: &str, value: bool) {
        self.key(name);
        self.0.push_str(if value { "true" } else { "false" });
    }
}
