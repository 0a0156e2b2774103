//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, then one line per sample, label values escaped.
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>

use std::fmt::Write;

/// The `Content-Type` of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

/// A document being written, family after family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// One metric family: its samples follow its header.
pub struct Family<'e> {
    name: &'static str,
    text: &'e mut String,
}

impl Exposition {
    /// Starts a family. `name` and label names are the code's own, valid
    /// identifiers; only help texts and label values need escaping.
    pub fn family(&mut self, name: &'static str, kind: MetricType, help: &str) -> Family<'_> {
        let kind = match kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        Family { name, text: &mut self.text }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(self.name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v, true))).collect();
            let _ = write!(self.text, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.text, " {}", number(value));
        self
    }
}

/// Backslash and line feed always; the double quote in label values.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Go's float syntax as Prometheus reads it: `NaN`, `+Inf`, `-Inf`, else
/// Rust's shortest round-trip form (`3`, `0.25`); never `-0`.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (help, labels, value, expected text)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, &'a str);

    fn check(help: &str, labels: &[(&str, &str)], value: f64, expect: &str) {
        let mut e = Exposition::default();
        e.family("chorus_sync_x", MetricType::Gauge, help).sample(labels, value);
        assert_eq!(e.finish(), expect, "help {help:?} labels {labels:?} value {value}");
    }

    #[test]
    fn lines_are_escaped_as_the_format_says() {
        let cases: &[Case] = &[
            ("Plain.", &[], 3.0, "# HELP chorus_sync_x Plain.\n# TYPE chorus_sync_x gauge\nchorus_sync_x 3\n"),
            (
                "Two\nlines \\ \"quoted\".",
                &[],
                0.25,
                "# HELP chorus_sync_x Two\\nlines \\\\ \"quoted\".\n# TYPE chorus_sync_x gauge\nchorus_sync_x 0.25\n",
            ),
            (
                "H.",
                &[("source", "a\"b\\c\nd"), ("kind", "attach")],
                1.0,
                "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\n\
                 chorus_sync_x{source=\"a\\\"b\\\\c\\nd\",kind=\"attach\"} 1\n",
            ),
            (
                "H.",
                &[("s", "Île-de-France")],
                -2.5,
                "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x{s=\"Île-de-France\"} -2.5\n",
            ),
            ("H.", &[], -0.0, "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x 0\n"),
            ("H.", &[], f64::NAN, "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x NaN\n"),
            ("H.", &[], f64::INFINITY, "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x +Inf\n"),
            ("H.", &[], f64::NEG_INFINITY, "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x -Inf\n"),
            (
                "H.",
                &[],
                1_700_000_000.0,
                "# HELP chorus_sync_x H.\n# TYPE chorus_sync_x gauge\nchorus_sync_x 1700000000\n",
            ),
        ];
        for (help, labels, value, expect) in cases {
            check(help, labels, *value, expect);
        }
    }

    #[test]
    fn a_family_without_samples_keeps_its_header_and_counters_say_so() {
        let mut e = Exposition::default();
        e.family("chorus_sync_a_total", MetricType::Counter, "A.");
        e.family("chorus_sync_b", MetricType::Gauge, "B.").sample(&[], 1.0).sample(&[("k", "v")], 2.0);
        assert_eq!(
            e.finish(),
            "# HELP chorus_sync_a_total A.\n# TYPE chorus_sync_a_total counter\n\
             # HELP chorus_sync_b B.\n# TYPE chorus_sync_b gauge\nchorus_sync_b 1\nchorus_sync_b{k=\"v\"} 2\n"
        );
    }
}
