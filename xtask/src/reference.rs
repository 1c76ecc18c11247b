//! Docker image references (`registry:5000/team/name:tag@sha256:...`), checked against the
//! grammar of the distribution project (`distribution/reference`), so a bad name in the spec is
//! refused before any engine or registry sees it.
//!
//! Pure: parses strings, touches nothing.

use std::fmt;

/// The longest repository name (domain and path) the grammar allows.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

// The grammar is given as regular expressions; these small matchers follow it exactly (the
// regexes cost more to compile than a whole plan takes to make).

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, joined by `.`, or `[ipv6]`; then `:port`.
fn is_domain(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (text, None),
    };
    if port.is_some_and(|port| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(text: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    bytes
        .split(alnum)
        .filter(|separator| !separator.is_empty())
        .all(|separator| matches!(separator, b"." | b"_" | b"__") || separator.iter().all(|b| *b == b'-'))
}

/// `[\w][\w.-]{0,127}` with `\w` = `[A-Za-z0-9_]`.
fn is_tag(text: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let component_ok = |c: &str| {
        c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && c.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    algorithm.split(['-', '_', '+', '.']).all(component_ok)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `registry.example.org:5000`, when the reference names one.
    pub domain: Option<String>,
    /// `team/name`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// The repository: domain and path, without tag or digest.
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Why a string is not a valid reference, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

/// Parses `text` as Docker does.
pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
    fn err<T>(why: String) -> Result<T, ReferenceError> {
        Err(ReferenceError(why))
    }
    if text.is_empty() {
        return err("the reference is empty".into());
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            if !is_digest(digest) {
                return err(format!("`{digest}` is not a digest (expected `sha256:` and at least 32 hex digits)"));
            }
            (rest, Some(digest.to_string()))
        }
        None => (text, None),
    };
    // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).or_else(err)?;
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return err(format!(
            "the repository name is {} characters long; the limit is {NAME_TOTAL_LENGTH_MAX}",
            name.len()
        ));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if !is_domain(first) {
                return err(format!("`{first}` is not a valid registry host"));
            }
            (Some(first.to_string()), path)
        }
        _ => (None, name),
    };
    if path.is_empty() {
        return err("the repository name is empty".into());
    }
    for component in path.split('/') {
        check_path_component(component).or_else(err)?;
    }
    Ok(Reference { domain, path: path.to_string(), tag: tag.map(str::to_string), digest })
}

/// Checks one `/`-separated part of a repository name.
pub fn check_path_component(component: &str) -> Result<(), String> {
    if is_path_component(component) {
        return Ok(());
    }
    if component.is_empty() {
        Err("the repository name has an empty part (`//` or a trailing `/`)".into())
    } else if component.chars().any(|c| c.is_ascii_uppercase()) {
        Err(format!("`{component}` has uppercase letters; repository names must be lowercase"))
    } else {
        Err(format!(
            "`{component}` is not a valid repository name part: use lowercase letters and digits, separated by `.`, `_`, `__` or dashes, not at either end"
        ))
    }
}

/// Checks a tag: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if is_tag(tag) {
        Ok(())
    } else if tag.len() > 128 {
        Err(format!("the tag `{tag}` is {} characters long; the limit is 128", tag.len()))
    } else {
        Err(format!("`{tag}` is not a valid tag: use letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("debian", None, "debian", None)]
    #[case("debian:bookworm-slim", None, "debian", Some("bookworm-slim"))]
    #[case("ghcr.io/org/base-notebook:2026.11", Some("ghcr.io"), "org/base-notebook", Some("2026.11"))]
    #[case("localhost:5000/stack/a_b__c", Some("localhost:5000"), "stack/a_b__c", None)]
    #[case("localhost/debian:bookworm", Some("localhost"), "debian", Some("bookworm"))]
    #[case(
        "quay.io/jupyter/scipy-notebook:python-3.11",
        Some("quay.io"),
        "jupyter/scipy-notebook",
        Some("python-3.11")
    )]
    fn accepts(#[case] text: &str, #[case] domain: Option<&str>, #[case] path: &str, #[case] tag: Option<&str>) {
        let reference = parse(text).unwrap();
        assert_eq!(reference.domain.as_deref(), domain);
        assert_eq!(reference.path, path);
        assert_eq!(reference.tag.as_deref(), tag);
        assert_eq!(reference.to_string(), text);
    }

    #[test]
    fn accepts_a_digest() {
        let text = format!("debian@sha256:{}", "a".repeat(64));
        assert_eq!(parse(&text).unwrap().digest.unwrap(), format!("sha256:{}", "a".repeat(64)));
    }

    #[rstest]
    #[case("", "empty")]
    #[case("Debian", "uppercase")]
    #[case("debian:", "not a valid tag")]
    #[case("debian:-x", "not a valid tag")]
    #[case("team//name", "empty part")]
    #[case("name-", "not a valid repository name part")]
    #[case("a/b@sha256:abc", "not a digest")]
    #[case("bad_host.io:port/x", "not a valid registry host")]
    fn refuses(#[case] text: &str, #[case] why: &str) {
        let error = parse(text).unwrap_err();
        assert!(error.0.contains(why), "{text}: {error}");
    }

    #[rstest]
    #[case("a", true)]
    #[case("a.b_c__d---e", true)]
    #[case("a..b", false)]
    #[case("a___b", false)]
    #[case("_a", false)]
    #[case("a-", false)]
    fn path_components(#[case] text: &str, #[case] valid: bool) {
        assert_eq!(is_path_component(text), valid);
    }

    #[rstest]
    #[case("localhost:5000", true)]
    #[case("my-registry.example.org", true)]
    #[case("[::1]:5000", true)]
    #[case("-bad.org", false)]
    #[case("host:", false)]
    fn domains(#[case] text: &str, #[case] valid: bool) {
        assert_eq!(is_domain(text), valid);
    }

    #[test]
    fn refuses_long_names_and_tags() {
        assert!(parse(&"a".repeat(256)).unwrap_err().0.contains("limit is 255"));
        assert!(parse(&format!("a:{}", "t".repeat(129))).unwrap_err().0.contains("limit is 128"));
    }
}
