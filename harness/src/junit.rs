//! What a test run leaves behind: one log per trial (its outcome and, on failure, everything
//! the failure says) and, when asked, a JUnit XML report for CI test reporters. Pure: builds
//! strings and writes files it is told to.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How one trial ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Passed,
    Failed(String),
    /// Not run, with the reason.
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub duration: Duration,
    pub verdict: Verdict,
}

/// The log file of a trial under `dir`.
pub fn log_path(dir: &Path, trial: &str) -> PathBuf {
    let safe: String =
        trial.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' }).collect();
    dir.join(format!("{safe}.log"))
}

pub fn log_text(record: &Record) -> String {
    let verdict = match &record.verdict {
        Verdict::Passed => "passed".to_string(),
        Verdict::Failed(message) => format!("FAILED\n{message}"),
        Verdict::Skipped(reason) => format!("skipped: {reason}"),
    };
    format!("{}\n{:.3} s\n{verdict}\n", record.name, record.duration.as_secs_f64())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML report: one `testsuite` per image, one `testcase` per trial (`classname` the
/// image, `name` the rest).
pub fn xml(records: &[Record]) -> String {
    let mut by_image: Vec<(String, Vec<&Record>)> = Vec::new();
    for record in records {
        let image = record.name.split("::").next().unwrap_or_default().to_string();
        match by_image.iter_mut().find(|(name, _)| *name == image) {
            Some((_, list)) => list.push(record),
            None => by_image.push((image, vec![record])),
        }
    }
    let count = |list: &[&Record], pick: fn(&Verdict) -> bool| list.iter().filter(|r| pick(&r.verdict)).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"images\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        records.len(),
        records.iter().filter(|r| matches!(r.verdict, Verdict::Failed(_))).count(),
        records.iter().filter(|r| matches!(r.verdict, Verdict::Skipped(_))).count()
    ));
    for (image, list) in &by_image {
        let time: f64 = list.iter().map(|r| r.duration.as_secs_f64()).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{time:.3}\">\n",
            escape(image),
            list.len(),
            count(list, |v| matches!(v, Verdict::Failed(_))),
            count(list, |v| matches!(v, Verdict::Skipped(_))),
        ));
        for record in list {
            let case = record.name.split_once("::").map_or(record.name.as_str(), |(_, rest)| rest);
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(image),
                escape(case),
                record.duration.as_secs_f64()
            ));
            match &record.verdict {
                Verdict::Passed => out.push_str("/>\n"),
                Verdict::Failed(message) => {
                    let first = message.lines().next().unwrap_or_default();
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        escape(first),
                        escape(message)
                    ));
                }
                Verdict::Skipped(reason) => {
                    out.push_str(&format!(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape(reason)))
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_groups_by_image_and_escapes() {
        let records = vec![
            Record { name: "a::s/x::ok".into(), duration: Duration::from_millis(5), verdict: Verdict::Passed },
            Record {
                name: "a::s/x::bad".into(),
                duration: Duration::ZERO,
                verdict: Verdict::Failed("want <1> & \"2\"\nmore".into()),
            },
            Record {
                name: "b@gpu::s/y::smi".into(),
                duration: Duration::ZERO,
                verdict: Verdict::Skipped("no GPU".into()),
            },
        ];
        let xml = xml(&records);
        assert!(xml.contains("<testsuites name=\"images\" tests=\"3\" failures=\"1\" skipped=\"1\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"a\" tests=\"2\" failures=\"1\" skipped=\"0\""), "{xml}");
        assert!(xml.contains("<failure message=\"want &lt;1&gt; &amp; &quot;2&quot;\">want &lt;1&gt; &amp; &quot;2&quot;\nmore</failure>"), "{xml}");
        assert!(
            xml.contains(
                "<testcase classname=\"b@gpu\" name=\"s/y::smi\" time=\"0.000\">\n      <skipped message=\"no GPU\"/>"
            ),
            "{xml}"
        );
        // Balanced: every opened element is closed.
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert_eq!(xml.matches("<testsuite ").count(), xml.matches("</testsuite>").count());
    }

    #[test]
    fn junit_parses_as_xml() {
        let records = vec![
            Record { name: "a::s::ok".into(), duration: Duration::from_millis(1), verdict: Verdict::Passed },
            Record {
                name: "a::s::bad".into(),
                duration: Duration::ZERO,
                verdict: Verdict::Failed("<&>\u{1}\"'".into()),
            },
            Record { name: "b::s::gpu".into(), duration: Duration::ZERO, verdict: Verdict::Skipped("no GPU".into()) },
        ];
        let xml = xml(&records);
        let mut reader = quick_xml::Reader::from_str(&xml);
        let (mut cases, mut failures, mut skipped) = (0, 0, 0);
        loop {
            use quick_xml::events::Event;
            match reader
                .read_event()
                .unwrap_or_else(|e| panic!("not well-formed at {}: {e}\n{xml}", reader.buffer_position()))
            {
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    b"skipped" => skipped += 1,
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!((cases, failures, skipped), (3, 1, 1));
    }

    #[test]
    fn log_names_are_safe_file_names() {
        assert_eq!(log_path(Path::new("/l"), "a@gpu::b/c::d e"), PathBuf::from("/l/a@gpu__b_c__d_e.log"));
    }
}
