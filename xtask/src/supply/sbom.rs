//! Software bills of materials from an [`Inventory`]: CycloneDX 1.5 JSON (through the
//! `cyclonedx-bom` crate, whose model follows the published schema and validates) and SPDX 2.3
//! JSON (a few serde structs: the format is small and the crates for it are not kept up). Each
//! package carries its package URL (`pkg:deb/debian/...`, `pkg:pypi/...`, `pkg:cran/...`) and
//! the image is the document's subject, named by its manifest digest. Pure: the same inventory
//! and subject give the same bytes (the serial number and namespace come from the digest, the
//! time from the image's `created` label).

use std::str::FromStr;

use cyclonedx_bom::models::component::Classification;
use cyclonedx_bom::models::license::{License, LicenseChoice, Licenses};
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::{Tool, Tools};
use cyclonedx_bom::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::inventory::Inventory;

pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// The image a document describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `host/path` (`ghcr.io/org/notebooks/base-notebook`).
    pub repository: String,
    /// The manifest digest (`sha256:...`) when the image is in a registry; else its image ID.
    pub digest: String,
    /// The node (`base-notebook`, `base-notebook@gpu`).
    pub node: String,
    /// When the image was built (RFC 3339, its `created` label).
    pub created: String,
}

impl Subject {
    /// `pkg:oci/<name>@<digest>?repository_url=<repository>`.
    pub fn purl(&self) -> String {
        let name = self.repository.rsplit('/').next().unwrap_or(&self.repository);
        format!("pkg:oci/{}@{}?repository_url={}", encode(name), encode(&self.digest), encode(&self.repository))
    }
}

/// The document formats `sbom` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CycloneDX 1.5 JSON
    Cyclonedx,
    /// SPDX 2.3 JSON
    Spdx,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Cyclonedx => CYCLONEDX_MEDIA_TYPE,
            Format::Spdx => SPDX_MEDIA_TYPE,
        }
    }

    /// The file name's ending (`base-notebook.cdx.json`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Cyclonedx => "cdx.json",
            Format::Spdx => "spdx.json",
        }
    }

    pub fn render(self, inventory: &Inventory, subject: &Subject) -> Result<String, SbomError> {
        match self {
            Format::Cyclonedx => cyclonedx(inventory, subject),
            Format::Spdx => Ok(spdx(inventory, subject)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("{node}: the CycloneDX document does not validate: {reason}")]
    Invalid { node: String, reason: String },
}

/// Percent-encodes a package URL part (everything but unreserved characters).
pub fn encode(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One package of any ecosystem, as both formats list it.
struct Entry {
    ecosystem: &'static str,
    name: String,
    version: String,
    purl: String,
    licenses: Vec<String>,
    properties: Vec<(&'static str, String)>,
}

fn entries(inventory: &Inventory) -> Vec<Entry> {
    let mut out = Vec::new();
    for p in &inventory.debian {
        let mut qualifiers = format!("arch={}", encode(&p.architecture));
        if let Some(source) = &p.source {
            qualifiers.push_str(&format!("&upstream={}", encode(source)));
        }
        let mut properties = vec![("xtask:deb:architecture", p.architecture.clone())];
        properties.extend(p.source.iter().map(|s| ("xtask:deb:source", s.clone())));
        out.push(Entry {
            ecosystem: "deb",
            purl: format!("pkg:deb/debian/{}@{}?{qualifiers}", encode(&p.name), encode(&p.version)),
            name: p.name.clone(),
            version: p.version.clone(),
            licenses: p.licenses.clone(),
            properties,
        });
    }
    for p in &inventory.python {
        let name = super::inventory::normalize_python_name(&p.name);
        out.push(Entry {
            ecosystem: "pypi",
            purl: format!("pkg:pypi/{}@{}", encode(&name), encode(&p.version)),
            name: p.name.clone(),
            version: p.version.clone(),
            licenses: p.licenses.clone(),
            properties: vec![("xtask:python:metadata", p.path.clone())],
        });
    }
    for p in &inventory.r {
        out.push(Entry {
            ecosystem: "cran",
            purl: format!("pkg:cran/{}@{}", encode(&p.name), encode(&p.version)),
            name: p.name.clone(),
            version: p.version.clone(),
            licenses: p.licenses.clone(),
            properties: vec![("xtask:r:description", p.path.clone())],
        });
    }
    out
}

/// A valid SPDX license expression as written, or `None` (Debian's `GPL-2+` is a name, not one).
fn spdx_expression(license: &str) -> Option<String> {
    spdx::Expression::parse(license).ok().map(|_| license.to_string())
}

/// CycloneDX allows one expression or a list of licences, not both: a single valid SPDX
/// expression is that; otherwise each licence is an SPDX identifier when it is one, else a name.
fn licenses(names: &[String]) -> Option<Licenses> {
    match names {
        [] => None,
        [one] if spdx::license_id(one).is_none() && spdx_expression(one).is_some() => {
            Some(Licenses(vec![LicenseChoice::Expression(SpdxExpression::new(one))]))
        }
        _ => Some(Licenses(
            names
                .iter()
                .map(|name| match spdx::license_id(name) {
                    Some(id) => LicenseChoice::License(License::license_id(id.name)),
                    None => LicenseChoice::License(License::named_license(name)),
                })
                .collect(),
        )),
    }
}

/// A UUID (version 4 layout) from the first bytes of `digest`'s hash: the same subject, the
/// same serial number.
fn uuid_from(seed: &str) -> String {
    let hash = Sha256::digest(seed.as_bytes());
    let mut b: [u8; 16] = hash[..16].try_into().unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn tool() -> Tool {
    Tool {
        vendor: None,
        name: Some(NormalizedString::new("cargo xtask")),
        version: Some(NormalizedString::new(env!("CARGO_PKG_VERSION"))),
        hashes: None,
        external_references: None,
    }
}

/// The CycloneDX 1.5 JSON document.
pub fn cyclonedx(inventory: &Inventory, subject: &Subject) -> Result<String, SbomError> {
    let invalid = |reason: String| SbomError::Invalid { node: subject.node.clone(), reason };
    let mut image = Component::new(Classification::Container, &subject.repository, &subject.digest, None);
    image.bom_ref = Some(subject.purl());
    image.purl = Purl::from_str(&subject.purl()).ok();
    let components = entries(inventory)
        .into_iter()
        .map(|entry| {
            let mut component = Component::new(Classification::Library, &entry.name, &entry.version, None);
            component.bom_ref = Some(entry.purl.clone());
            component.purl = Purl::from_str(&entry.purl).ok();
            component.licenses = licenses(&entry.licenses);
            let mut properties = vec![Property::new("xtask:ecosystem", entry.ecosystem)];
            properties.extend(entry.properties.iter().map(|(k, v)| Property::new(*k, v)));
            component.properties = Some(Properties(properties));
            component
        })
        .collect();
    let metadata = Metadata {
        timestamp: DateTime::try_from(subject.created.clone()).ok(),
        tools: Some(Tools::List(vec![tool()])),
        component: Some(image),
        properties: Some(Properties(vec![Property::new("xtask:node", &subject.node)])),
        ..Default::default()
    };
    let bom = Bom {
        serial_number: Some(
            UrnUuid::new(format!("urn:uuid:{}", uuid_from(&subject.digest))).map_err(|e| invalid(format!("{e:?}")))?,
        ),
        metadata: Some(metadata),
        components: Some(Components(components)),
        ..Bom::default()
    };
    let validation = bom.validate_version(SpecVersion::V1_5);
    if !validation.passed() {
        return Err(invalid(format!("{validation:?}")));
    }
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out).map_err(|e| invalid(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxDocument {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    document_describes: Vec<String>,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: String,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

fn purl_ref(purl: String) -> Vec<ExternalRef> {
    vec![ExternalRef { reference_category: "PACKAGE-MANAGER", reference_type: "purl", reference_locator: purl }]
}

/// An RFC 3339 time in UTC to whole seconds (`2026-11-21T10:00:00Z`), as SPDX requires.
fn whole_seconds(time: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::parse(time, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// The SPDX 2.3 JSON document.
pub fn spdx(inventory: &Inventory, subject: &Subject) -> String {
    const IMAGE: &str = "SPDXRef-Image";
    let mut packages = vec![SpdxPackage {
        spdx_id: IMAGE.into(),
        name: subject.repository.clone(),
        version_info: subject.digest.clone(),
        download_location: "NOASSERTION",
        files_analyzed: false,
        license_concluded: "NOASSERTION",
        license_declared: "NOASSERTION".into(),
        license_comments: None,
        primary_package_purpose: Some("CONTAINER"),
        external_refs: purl_ref(subject.purl()),
    }];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: IMAGE.into(),
    }];
    for (n, entry) in entries(inventory).into_iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{n}", entry.ecosystem);
        let declared = match &entry.licenses[..] {
            [] => None,
            [one] => spdx_expression(one),
            _ => None,
        };
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            license_comments: (declared.is_none() && !entry.licenses.is_empty())
                .then(|| format!("as the package states it: {}", entry.licenses.join("; "))),
            license_declared: declared.unwrap_or_else(|| "NOASSERTION".into()),
            name: entry.name,
            version_info: entry.version,
            download_location: "NOASSERTION",
            files_analyzed: false,
            license_concluded: "NOASSERTION",
            primary_package_purpose: Some("LIBRARY"),
            external_refs: purl_ref(entry.purl),
        });
        relationships.push(Relationship {
            spdx_element_id: IMAGE.into(),
            relationship_type: "CONTAINS",
            related_spdx_element: id,
        });
    }
    let hex = subject.digest.strip_prefix("sha256:").unwrap_or(&subject.digest);
    let document = SpdxDocument {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: format!("{}@{}", subject.repository, subject.digest),
        document_namespace: format!("https://{}/spdx/{hex}", subject.repository),
        creation_info: CreationInfo {
            created: whole_seconds(&subject.created),
            creators: vec![format!("Tool: cargo-xtask-{}", env!("CARGO_PKG_VERSION"))],
        },
        document_describes: vec![IMAGE.into()],
        packages,
        relationships,
    };
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::super::inventory::{DebPackage, PyPackage, RPackage};
    use super::*;

    pub fn inventory() -> Inventory {
        Inventory {
            debian: vec![DebPackage {
                name: "libc6".into(),
                version: "1:2.36-9+deb12u7".into(),
                architecture: "amd64".into(),
                source: Some("glibc".into()),
                licenses: vec!["GPL-2+".into(), "GPL-2.0-or-later".into()],
            }],
            python: vec![PyPackage {
                name: "Jupyter_Server".into(),
                version: "2.14.2".into(),
                licenses: vec!["BSD-3-Clause".into()],
                path: "/opt/venv/x/METADATA".into(),
            }],
            r: vec![RPackage { name: "stats".into(), version: "4.2.2".into(), licenses: vec![], path: "/d".into() }],
        }
    }

    pub fn subject() -> Subject {
        Subject {
            repository: "ghcr.io/org/notebooks/base-notebook".into(),
            digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            node: "base-notebook".into(),
            created: "2026-11-21T10:00:00Z".into(),
        }
    }

    #[test]
    fn cyclonedx_lists_every_package_with_its_purl_and_names_the_image() {
        let text = cyclonedx(&inventory(), &subject()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["bomFormat"], "CycloneDX");
        assert_eq!(json["specVersion"], "1.5");
        assert_eq!(json["metadata"]["component"]["version"], subject().digest);
        assert_eq!(json["metadata"]["component"]["type"], "container");
        assert_eq!(json["metadata"]["timestamp"], "2026-11-21T10:00:00Z");
        let purls: Vec<&str> =
            json["components"].as_array().unwrap().iter().map(|c| c["purl"].as_str().unwrap()).collect();
        assert_eq!(
            purls,
            [
                "pkg:deb/debian/libc6@1%3A2.36-9%2Bdeb12u7?arch=amd64&upstream=glibc",
                "pkg:pypi/jupyter-server@2.14.2",
                "pkg:cran/stats@4.2.2"
            ]
        );
        let libc = &json["components"][0];
        assert_eq!(libc["version"], "1:2.36-9+deb12u7", "the version exactly as dpkg has it");
        assert_eq!(libc["licenses"][0]["license"]["name"], "GPL-2+", "not an SPDX identifier: a name");
        assert_eq!(libc["licenses"][1]["license"]["id"], "GPL-2.0-or-later");
        let python = &json["components"][1];
        assert_eq!(python["licenses"][0]["license"]["id"], "BSD-3-Clause");
        assert_eq!(text, cyclonedx(&inventory(), &subject()).unwrap(), "the same inputs give the same bytes");
    }

    #[test]
    fn spdx_describes_the_image_which_contains_every_package() {
        let json: serde_json::Value = serde_json::from_str(&spdx(&inventory(), &subject())).unwrap();
        assert_eq!(json["spdxVersion"], "SPDX-2.3");
        let packages = json["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 4);
        assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
        assert_eq!(packages[2]["licenseDeclared"], "BSD-3-Clause");
        assert_eq!(packages[1]["licenseDeclared"], "NOASSERTION");
        assert!(packages[1]["licenseComments"].as_str().unwrap().contains("GPL-2+"));
        let contains = json["relationships"].as_array().unwrap().iter().filter(|r| r["relationshipType"] == "CONTAINS");
        assert_eq!(contains.count(), 3);
    }

    #[test]
    fn spdx_times_are_whole_seconds_in_utc() {
        assert_eq!(whole_seconds("2026-11-22T05:15:08.507013249Z"), "2026-11-22T05:15:08Z");
        assert_eq!(whole_seconds("2026-11-22T06:15:08+01:00"), "2026-11-22T05:15:08Z");
    }

    #[test]
    fn the_image_purl_names_its_digest() {
        assert_eq!(
            subject().purl(),
            "pkg:oci/base-notebook@sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef?repository_url=ghcr.io%2Forg%2Fnotebooks%2Fbase-notebook"
        );
    }
}
