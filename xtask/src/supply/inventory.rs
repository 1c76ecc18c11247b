//! What is installed in an image, read from its files: the dpkg status database (with the
//! licences Debian's machine-readable copyright files name), the Python distributions'
//! `METADATA` headers in the image's environments, and R packages' `DESCRIPTION` files. Pure:
//! [`COLLECT_SCRIPT`] is what runs inside the image (POSIX `sh` and `cat`, `grep` when there is
//! one, so it works in any image with a shell), and [`parse`] reads what it printed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prints the files an inventory is read from, each after a `@@@ <kind> <path>` line: the dpkg
/// status file; the `License:` lines of each Debian copyright file; the headers of each Python
/// distribution's `METADATA` (up to the first empty line: the long description is not needed);
/// each R package's `DESCRIPTION`. Python environments are the ones `pip list` reports in: a
/// virtual environment or prefix under `/opt`, and `/usr/local` (Debian's own
/// `/usr/lib/python3/dist-packages` belongs to dpkg packages, which are listed as such).
pub const COLLECT_SCRIPT: &str = r#"if [ -f /var/lib/dpkg/status ]; then echo '@@@ dpkg /var/lib/dpkg/status'; cat /var/lib/dpkg/status; fi
for f in /usr/share/doc/*/copyright; do
  [ -f "$f" ] || continue
  d=${f%/copyright}; echo "@@@ copyright ${d##*/}"
  if command -v grep >/dev/null 2>&1; then grep '^License:' "$f" || true; else cat "$f"; fi
done
for f in /opt/*/lib/python3*/site-packages/*.dist-info/METADATA /usr/local/lib/python3*/site-packages/*.dist-info/METADATA /usr/local/lib/python3*/dist-packages/*.dist-info/METADATA; do
  [ -f "$f" ] || continue
  echo "@@@ python $f"
  while IFS= read -r line || [ -n "$line" ]; do [ -z "$line" ] && break; printf '%s\n' "$line"; done < "$f"
done
for f in /usr/lib/R/library/*/DESCRIPTION /usr/lib/R/site-library/*/DESCRIPTION /usr/local/lib/R/site-library/*/DESCRIPTION; do
  [ -f "$f" ] || continue
  echo "@@@ r $f"; cat "$f"
done
true
"#;

/// A Debian package as dpkg has it installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package, when it differs from the binary's name.
    pub source: Option<String>,
    /// Licence names from `/usr/share/doc/<name>/copyright` (`License:` fields), in order, once each.
    pub licenses: Vec<String>,
}

/// A Python distribution (what `pip list` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PyPackage {
    pub name: String,
    pub version: String,
    /// `License-Expression`, else `License` (its first line), else the `License ::` classifiers.
    pub licenses: Vec<String>,
    /// Where its metadata is (`/opt/venv/lib/python3.11/site-packages/x-1.0.dist-info/METADATA`).
    pub path: String,
}

/// An R package (what `installed.packages()` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RPackage {
    pub name: String,
    pub version: String,
    pub licenses: Vec<String>,
    pub path: String,
}

/// Everything found, each list sorted by name (then version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub debian: Vec<DebPackage>,
    pub python: Vec<PyPackage>,
    pub r: Vec<RPackage>,
}

impl Inventory {
    pub fn len(&self) -> usize {
        self.debian.len() + self.python.len() + self.r.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads what [`COLLECT_SCRIPT`] printed.
pub fn parse(output: &str) -> Inventory {
    let mut inventory = Inventory::default();
    let mut licenses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (kind, path, body) in sections(output) {
        match kind {
            "dpkg" => inventory.debian.extend(parse_dpkg_status(body)),
            "copyright" => {
                licenses.insert(path.to_string(), copyright_licenses(body));
            }
            "python" => inventory.python.extend(parse_python_metadata(body, path)),
            "r" => inventory.r.extend(parse_r_description(body, path)),
            _ => {}
        }
    }
    for package in &mut inventory.debian {
        if let Some(found) = licenses.get(&package.name) {
            package.licenses = found.clone();
        }
    }
    inventory.debian.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    inventory.python.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    inventory.r.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    inventory
}

/// `(kind, path, body)` for each `@@@ kind path` section.
fn sections(output: &str) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    let mut rest = output;
    let mut current: Option<(&str, &str, usize)> = None;
    let mut offset = 0;
    while !rest.is_empty() {
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if let Some(header) = line.strip_prefix("@@@ ") {
            if let Some((kind, path, start)) = current.take() {
                out.push((kind, path, &output[start..offset]));
            }
            let header = header.trim_end();
            let (kind, path) = header.split_once(' ').unwrap_or((header, ""));
            current = Some((kind, path, offset + end));
        }
        offset += end;
        rest = &rest[end..];
    }
    if let Some((kind, path, start)) = current {
        out.push((kind, path, &output[start..]));
    }
    out
}

/// RFC 822-style stanzas (dpkg status, `DESCRIPTION`, `METADATA` headers): one map per
/// stanza, continuation lines joined to their field with a newline.
fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        // Only an empty line ends a stanza; one of blanks continues a value (a licence's text).
        if line.is_empty() {
            if !fields.is_empty() {
                out.push(std::mem::take(&mut fields));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if !fields.is_empty() {
        out.push(fields);
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

/// The packages dpkg has installed (status `... installed`; packages removed with their
/// configuration left are not installed).
pub fn parse_dpkg_status(text: &str) -> Vec<DebPackage> {
    stanzas(text)
        .iter()
        .filter(|s| field(s, "Status").is_some_and(|status| status.split_whitespace().last() == Some("installed")))
        .filter_map(|s| {
            let name = field(s, "Package")?.to_string();
            let source = field(s, "Source")
                .map(|source| source.split_whitespace().next().unwrap_or_default().to_string())
                .filter(|source| !source.is_empty() && *source != name);
            Some(DebPackage {
                version: field(s, "Version")?.to_string(),
                architecture: field(s, "Architecture").unwrap_or("all").to_string(),
                name,
                source,
                licenses: vec![],
            })
        })
        .collect()
}

/// The licence short names of a machine-readable copyright file (`License: GPL-2+`), in order,
/// once each; nothing for a file in another format.
pub fn copyright_licenses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(value) = line.strip_prefix("License:") else { continue };
        let name = value.trim();
        if !name.is_empty() && !out.iter().any(|seen| seen == name) {
            out.push(name.to_string());
        }
    }
    out
}

fn once(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        if !value.is_empty() && !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// A distribution's `METADATA` headers.
pub fn parse_python_metadata(text: &str, path: &str) -> Option<PyPackage> {
    let fields = stanzas(text).into_iter().next()?;
    let expression = field(&fields, "License-Expression").map(str::to_string);
    // A `License` of one short line names the licence; a longer one is the licence's text.
    let license = field(&fields, "License")
        .map(str::trim)
        .filter(|text| {
            !text.is_empty() && !text.contains('\n') && text.len() <= 80 && !text.eq_ignore_ascii_case("UNKNOWN")
        })
        .map(str::to_string);
    let classifiers = fields
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Classifier"))
        .filter_map(|(_, v)| v.strip_prefix("License ::"))
        .filter_map(|v| v.rsplit("::").next().map(|s| s.trim().to_string()));
    let licenses = match (expression, license) {
        (Some(expression), _) => vec![expression],
        (None, Some(license)) => vec![license],
        (None, None) => once(classifiers),
    };
    Some(PyPackage {
        name: field(&fields, "Name")?.to_string(),
        version: field(&fields, "Version")?.to_string(),
        licenses,
        path: path.to_string(),
    })
}

/// An R package's `DESCRIPTION`; `None` for one R never installed (no `Built` field, such as
/// R's own `translations` folder), which `installed.packages()` does not list either.
pub fn parse_r_description(text: &str, path: &str) -> Option<RPackage> {
    let fields = stanzas(text).into_iter().next()?;
    field(&fields, "Built")?;
    let license = field(&fields, "License").map(|l| l.replace('\n', " "));
    Some(RPackage {
        name: field(&fields, "Package")?.to_string(),
        version: field(&fields, "Version")?.to_string(),
        licenses: license.into_iter().collect(),
        path: path.to_string(),
    })
}

/// PEP 503's normal form of a Python name (`Jupyter_Server` and `jupyter-server` are one).
pub fn normalize_python_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const STATUS: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u7\nDescription: GNU C Library\n shared libraries\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: amd64\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\nPackage: libssl3\nStatus: hold ok installed\nArchitecture: amd64\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\n";

    #[test]
    fn reads_installed_debian_packages_with_their_source() {
        let packages = parse_dpkg_status(STATUS);
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["libc6", "base-files", "libssl3"],
            "a package with only its configuration left is not installed"
        );
        assert_eq!(packages[0].source.as_deref(), Some("glibc"));
        assert_eq!(packages[0].version, "2.36-9+deb12u7");
        assert_eq!(packages[1].source, None);
        assert_eq!(packages[2].source.as_deref(), Some("openssl"), "the source's own version is not its name");
    }

    #[test]
    fn reads_every_section_and_gives_debian_packages_their_licences() {
        let output = format!(
            "@@@ dpkg /var/lib/dpkg/status\n{STATUS}@@@ copyright libc6\nLicense: LGPL-2.1+\nLicense: GPL-2+\nLicense: LGPL-2.1+\n@@@ python /opt/venv/lib/python3.11/site-packages/Jinja2-3.1.4.dist-info/METADATA\nMetadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.4\nClassifier: License :: OSI Approved :: BSD License\n@@@ python /opt/venv/lib/python3.11/site-packages/attrs-24.2.0.dist-info/METADATA\nName: attrs\nVersion: 24.2.0\nLicense-Expression: MIT\nLicense: MIT License\n  and more\n@@@ python /opt/venv/lib/python3.11/site-packages/jupyterlab-4.2.5.dist-info/METADATA\nName: jupyterlab\nVersion: 4.2.5\nLicense: Copyright (c) 2015-2022 Project Jupyter Contributors\n        All rights reserved.\n        \n        Redistribution...\nClassifier: License :: OSI Approved :: BSD License\n@@@ r /usr/lib/R/library/stats/DESCRIPTION\nPackage: stats\nVersion: 4.2.2\nLicense: Part of R 4.2.2\nBuilt: R 4.2.2; x86_64-pc-linux-gnu; 2022-11-10 17:50:26 UTC; unix\n@@@ r /usr/lib/R/library/translations/DESCRIPTION\nPackage: translations\nVersion: 4.2.2\n"
        );
        let inventory = parse(&output);
        assert_eq!(inventory.debian.len(), 3);
        let libc = inventory.debian.iter().find(|p| p.name == "libc6").unwrap();
        assert_eq!(libc.licenses, ["LGPL-2.1+", "GPL-2+"]);
        assert!(inventory.debian.iter().find(|p| p.name == "base-files").unwrap().licenses.is_empty());
        let python: Vec<(&str, &str, &[String])> =
            inventory.python.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.licenses.as_slice())).collect();
        let bsd = ["BSD License".to_string()];
        assert_eq!(
            python,
            [
                ("Jinja2", "3.1.4", &bsd[..]),
                ("attrs", "24.2.0", &["MIT".to_string()][..]),
                ("jupyterlab", "4.2.5", &bsd[..]),
            ],
            "a licence's text is not its name: the classifier names it"
        );
        assert_eq!(inventory.r.len(), 1, "an R folder that was never installed is no package");
        assert_eq!(inventory.r[0].name, "stats");
        assert_eq!(inventory.r[0].licenses, ["Part of R 4.2.2"]);
        assert_eq!(inventory.len(), 7);
    }

    #[test]
    fn nothing_found_is_an_empty_inventory() {
        assert!(parse("").is_empty());
        assert!(parse("@@@ dpkg /var/lib/dpkg/status\n").is_empty());
    }

    #[rstest::rstest]
    #[case("Jupyter_Server", "jupyter-server")]
    #[case("zope.interface", "zope-interface")]
    #[case("a__b", "a-b")]
    fn normalizes_python_names(#[case] name: &str, #[case] normal: &str) {
        assert_eq!(normalize_python_name(name), normal);
    }
}
