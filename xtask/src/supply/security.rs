//! Pending security updates: which installed Debian packages of an image have a newer version
//! in the Debian security archive, asked **inside the image** by apt's own simulation (the
//! image's sources plus `<codename>-security`, package lists in a temporary folder, nothing
//! installed), so the answer uses apt's version rules and dependency resolution. A scanner's
//! findings (trivy or grype, when installed, from their JSON output) join the same report.
//! Pure: the script that runs in the image, the parsers, the verdict against the spec's
//! thresholds.

use serde::{Deserialize, Serialize};

use crate::spec::Security;

/// The schema of a security report (`target/xtask/security/<node>.json`).
pub const REPORT_SCHEMA: &str = "stack-security/v1";

/// The script run as root in a throwaway container of the image: prints `@@@ no-apt` when the
/// image has no apt, else apt's simulated upgrade (`Inst` lines) after reading the package
/// lists of the image's sources (`sources.list`, and `sources.list.d/` in either format) and of
/// the security suite.
pub fn script(archive: &str) -> String {
    format!(
        r#"command -v apt-get >/dev/null 2>&1 || {{ echo '@@@ no-apt'; exit 0; }}
. /etc/os-release
d=/tmp/xtask-security; rm -rf $d; mkdir -p $d/lists/partial $d/cache/archives/partial
cat /etc/apt/sources.list 2>/dev/null | grep -v '^[[:space:]]*#' > $d/sources.list || true
echo "deb {archive} ${{VERSION_CODENAME}}-security main" >> $d/sources.list
echo "@@@ suite ${{VERSION_CODENAME}}-security"
O="-o Dir::Etc::SourceList=$d/sources.list -o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
apt-get $O -qq update >$d/update.log 2>&1 || {{ echo '@@@ update-failed'; cat $d/update.log; exit 0; }}
grep -q '^W: Failed\|^E:' $d/update.log && {{ echo '@@@ update-failed'; cat $d/update.log; exit 0; }}
echo '@@@ simulation'
apt-get $O -s dist-upgrade
rm -rf $d
"#
    )
}

/// One package with a newer version in the security archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub package: String,
    pub installed: String,
    pub available: String,
    /// The archive apt names (`Debian-Security:12/oldstable-security`).
    pub archive: String,
}

/// One finding of a scanner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub package: String,
    pub installed: String,
    /// The version that fixes it, when there is one.
    pub fixed: Option<String>,
    /// `CRITICAL`, `HIGH`, ... as the scanner says (upper case).
    pub severity: String,
}

/// What a scanner said, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerReport {
    pub scanner: String,
    /// `None` when it ran; else why it did not (not installed, no database).
    pub skipped: Option<String>,
    pub findings: Vec<Finding>,
}

/// An image's security report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub node: String,
    pub image_id: String,
    /// The suite asked (`bookworm-security`).
    pub suite: Option<String>,
    /// When the archive was asked (RFC 3339).
    pub checked: String,
    /// `None` when the check ran; else why it could not (no apt, archive unreachable).
    pub skipped: Option<String>,
    pub pending: Vec<Pending>,
    pub scanners: Vec<ScannerReport>,
}

impl Report {
    /// High and critical findings over every scanner.
    pub fn serious(&self) -> usize {
        self.scanners
            .iter()
            .flat_map(|s| &s.findings)
            .filter(|f| matches!(f.severity.as_str(), "HIGH" | "CRITICAL"))
            .count()
    }

    /// `Ok` when within the thresholds, else what is over them.
    pub fn verdict(&self, limits: &Security) -> Result<(), String> {
        let mut over = Vec::new();
        if self.pending.len() > limits.max_pending {
            let names: Vec<String> =
                self.pending.iter().map(|p| format!("{} {} -> {}", p.package, p.installed, p.available)).collect();
            over.push(format!(
                "{} pending security updates, more than the spec's `security.max_pending` ({}): {}",
                self.pending.len(),
                limits.max_pending,
                names.join(", ")
            ));
        }
        if let Some(max) = limits.max_vulnerabilities.filter(|max| self.serious() > *max) {
            over.push(format!(
                "{} high or critical scanner findings, more than `security.max_vulnerabilities` ({max})",
                self.serious()
            ));
        }
        if over.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}\n  hint: rebuild on a refreshed base (`cargo xtask refresh`), or raise the threshold in the spec", self.node, over.join("; ")))
        }
    }
}

/// Where the reports of an image are kept (`target/xtask/security/<stem>.json`, and
/// `<stem>.scanners.json` for the scanners' findings), written by the harness's security trials
/// and read by `release` and `docs`.
pub fn report_paths(dir: &std::path::Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join(format!("{stem}.json")), dir.join(format!("{stem}.scanners.json")))
}

/// The report of `stem` for image `image_id` in `dir`, with the scanners' findings when they were
/// read for the same image; `None` when there is none for this image.
pub fn read_report(dir: &std::path::Path, stem: &str, image_id: &str) -> Option<Report> {
    let (report, scanners) = report_paths(dir, stem);
    let mut report: Report = serde_json::from_str(&std::fs::read_to_string(report).ok()?).ok()?;
    if report.image_id != image_id {
        return None;
    }
    let scanned: Option<(String, Vec<ScannerReport>)> =
        std::fs::read_to_string(scanners).ok().and_then(|text| serde_json::from_str(&text).ok());
    if let Some((_, scanners)) = scanned.filter(|(id, _)| id == image_id) {
        report.scanners = scanners;
    }
    Some(report)
}

/// What the script printed: `(suite, pending)`, or why there is no answer.
pub fn parse_simulation(output: &str) -> Result<(Option<String>, Vec<Pending>), String> {
    if output.lines().any(|l| l.trim() == "@@@ no-apt") {
        return Err("the image has no apt-get: not a Debian image".into());
    }
    if let Some(at) = output.find("@@@ update-failed") {
        let log: String = output[at..].lines().skip(1).take(5).collect::<Vec<_>>().join(" / ");
        return Err(format!("the security archive could not be read from inside the image: {log}"));
    }
    if !output.contains("@@@ simulation") {
        return Err(format!("apt's simulation did not run: {}", output.trim().chars().take(300).collect::<String>()));
    }
    let suite = output.lines().find_map(|l| l.strip_prefix("@@@ suite ")).map(|s| s.trim().to_string());
    let pending = output.lines().filter_map(parse_inst).filter(|p| p.archive.contains("-security")).collect();
    Ok((suite, pending))
}

/// `Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])`.
fn parse_inst(line: &str) -> Option<Pending> {
    let rest = line.strip_prefix("Inst ")?;
    let (package, rest) = rest.split_once(' ')?;
    let installed = rest.strip_prefix('[')?.split_once(']')?.0.to_string();
    let inside = rest.split_once('(')?.1;
    let mut words = inside.split_whitespace();
    let available = words.next()?.to_string();
    let archive = words.next().unwrap_or_default().to_string();
    Some(Pending { package: package.to_string(), installed, available, archive })
}

/// Findings from `trivy image --format json` (`Results[].Vulnerabilities[]`).
pub fn parse_trivy(json: &str) -> Result<Vec<Finding>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("trivy's output is not JSON: {e}"))?;
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    Ok(value["Results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|result| result["Vulnerabilities"].as_array().into_iter().flatten())
        .map(|v| Finding {
            id: text(v, "VulnerabilityID"),
            package: text(v, "PkgName"),
            installed: text(v, "InstalledVersion"),
            fixed: v["FixedVersion"].as_str().filter(|f| !f.is_empty()).map(str::to_string),
            severity: text(v, "Severity").to_uppercase(),
        })
        .collect())
}

/// Findings from `grype -o json` (`matches[]`).
pub fn parse_grype(json: &str) -> Result<Vec<Finding>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("grype's output is not JSON: {e}"))?;
    Ok(value["matches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let v = &m["vulnerability"];
            let a = &m["artifact"];
            Finding {
                id: v["id"].as_str().unwrap_or_default().to_string(),
                package: a["name"].as_str().unwrap_or_default().to_string(),
                installed: a["version"].as_str().unwrap_or_default().to_string(),
                fixed: v["fix"]["versions"][0].as_str().map(str::to_string),
                severity: v["severity"].as_str().unwrap_or_default().to_uppercase(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMULATION: &str = "@@@ suite bookworm-security\n@@@ simulation\nReading package lists...\nThe following packages will be upgraded:\n  libssl3 perl-base\nInst perl-base [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])\nInst tzdata [2025a-0+deb12u1] (2025b-0+deb12u1 Debian:12.12/oldstable [all])\nInst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64]) []\nConf perl-base (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])\n";

    #[test]
    fn reads_the_packages_the_security_archive_updates_and_only_those() {
        let (suite, pending) = parse_simulation(SIMULATION).unwrap();
        assert_eq!(suite.as_deref(), Some("bookworm-security"));
        let names: Vec<&str> = pending.iter().map(|p| p.package.as_str()).collect();
        assert_eq!(names, ["perl-base", "libssl3"], "a point-release update is not a security update");
        assert_eq!(pending[1].installed, "3.0.20-1~deb12u2");
        assert_eq!(pending[1].available, "3.0.22-1~deb12u2");
    }

    #[test]
    fn says_why_there_is_no_answer() {
        assert!(parse_simulation("@@@ no-apt\n").unwrap_err().contains("no apt-get"));
        let failed = parse_simulation("@@@ suite x\n@@@ update-failed\nE: Failed to fetch http://x\n").unwrap_err();
        assert!(failed.contains("Failed to fetch"), "{failed}");
    }

    fn report(pending: usize, serious: usize) -> Report {
        let p = Pending { package: "p".into(), installed: "1".into(), available: "2".into(), archive: "a".into() };
        let f = Finding {
            id: "CVE-1".into(),
            package: "p".into(),
            installed: "1".into(),
            fixed: None,
            severity: "HIGH".into(),
        };
        Report {
            schema: REPORT_SCHEMA.into(),
            node: "base".into(),
            image_id: "sha256:1".into(),
            suite: None,
            checked: String::new(),
            skipped: None,
            pending: vec![p; pending],
            scanners: vec![ScannerReport { scanner: "trivy".into(), skipped: None, findings: vec![f; serious] }],
        }
    }

    #[rstest::rstest]
    #[case(2, 0, true)]
    #[case(3, 0, false)]
    #[case(0, 1, true)]
    #[case(0, 2, false)]
    fn fails_only_above_the_thresholds(#[case] pending: usize, #[case] serious: usize, #[case] passes: bool) {
        let limits = Security { archive: String::new(), max_pending: 2, max_vulnerabilities: Some(1) };
        let verdict = report(pending, serious).verdict(&limits);
        assert_eq!(verdict.is_ok(), passes, "{verdict:?}");
        if let Err(message) = verdict {
            assert!(message.starts_with("base: ") && message.contains("hint:"), "{message}");
        }
    }

    #[test]
    fn reads_scanner_reports() {
        let trivy = r#"{"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-1","PkgName":"libssl3","InstalledVersion":"3.0.11","FixedVersion":"3.0.15","Severity":"HIGH"}]},{"Target":"y"}]}"#;
        let found = parse_trivy(trivy).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].fixed.as_deref(), Some("3.0.15"));
        let grype = r#"{"matches":[{"vulnerability":{"id":"CVE-2024-2","severity":"Critical","fix":{"versions":["2.0"]}},"artifact":{"name":"zlib1g","version":"1.0"}}]}"#;
        let found = parse_grype(grype).unwrap();
        assert_eq!((found[0].severity.as_str(), found[0].package.as_str()), ("CRITICAL", "zlib1g"));
        assert!(parse_trivy("not json").is_err());
    }
}
