//! Known causes recognised in the output of a failed build step, each with its fix: today, a
//! TLS certificate the step could not verify, which behind a TLS-intercepting proxy is what
//! `pip install`, `curl` or `git clone` run bare in a `RUN` step meet first, as pages of retries
//! that never name the stack's CA bundle. Pure: the caller gives the lines.

/// Words that only a certificate verification failure prints (compared in lower case): Python
/// and OpenSSL, curl, GnuTLS (git, apt, wget), Go, npm and Java.
const CERTIFICATE_ERRORS: &[&str] = &[
    "certificate_verify_failed",
    "certificate verify failed",
    "certificate verification failed",
    "ssl certificate problem",
    "unable to get local issuer certificate",
    "self-signed certificate in certificate chain",
    "self signed certificate in certificate chain",
    "x509: certificate signed by unknown authority",
    "unable_to_get_issuer_cert_locally",
    "self_signed_cert_in_chain",
    "pkix path building failed",
    "is not trusted",
];

/// What to do about a certificate the build could not verify.
pub const CERTIFICATE_FIX: &str = "the step could not verify a TLS certificate: this network likely intercepts HTTPS with its own CA (a proxy). Give the build that CA with `--ca-bundle PATH` or `stack.ca_bundle` in the spec, and let the step trust it: mount it with `RUN --mount=type=bind,source=.stack/ca-bundle.crt,target=/run/stack/ca-bundle.crt ...` and install Python packages with `pip-install-pinned` (it reads the bundle), or point the tool at it (`PIP_CERT`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` or `GIT_SSL_CAINFO` = /run/stack/ca-bundle.crt); docs/building.md, \"CA certificates for builds\", shows a whole step. `cargo xtask new` writes Dockerfiles that do this";

/// The fix for a failed step whose error `message` or output `lines` show a known cause.
pub fn for_failed_step(message: &str, lines: &[String]) -> Option<&'static str> {
    let certificate = std::iter::once(message).chain(lines.iter().map(String::as_str)).any(|line| {
        let line = line.to_ascii_lowercase();
        CERTIFICATE_ERRORS.iter().any(|words| line.contains(words))
            && (line.contains("certificate") || line.contains("cert_") || line.contains("pkix"))
    });
    certificate.then_some(CERTIFICATE_FIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Lines as the tools print them; the pip ones were captured here, behind this network's
    /// proxy, from `pip install polars` in base-notebook without the CA bundle.
    #[rstest]
    #[case::pip_retry("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))': /simple/polars/")]
    #[case::pip_skipping("Could not fetch URL https://pypi.org/simple/polars/: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/polars/ (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))) - skipping")]
    #[case::python_urllib("urllib.error.URLError: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:992)>")]
    #[case::curl("curl: (60) SSL certificate problem: unable to get local issuer certificate")]
    #[case::git_gnutls("fatal: unable to access 'https://github.com/x/y.git/': server certificate verification failed. CAfile: none CRLfile: none")]
    #[case::apt("Err:1 https://deb.example.org bookworm InRelease\n  Certificate verification failed: The certificate is NOT trusted. The certificate issuer is unknown.")]
    #[case::wget("ERROR: The certificate of 'pypi.org' is not trusted.")]
    #[case::go("go: github.com/x/y@v1: Get \"https://proxy.golang.org/...\": tls: failed to verify certificate: x509: certificate signed by unknown authority")]
    #[case::npm("npm ERR! code UNABLE_TO_GET_ISSUER_CERT_LOCALLY")]
    #[case::java("sun.security.validator.ValidatorException: PKIX path building failed")]
    fn recognises_certificate_errors(#[case] line: &str) {
        let lines = vec!["Collecting polars".to_string(), line.to_string(), "exit code: 1".to_string()];
        assert_eq!(
            for_failed_step("process did not complete successfully: exit code: 1", &lines),
            Some(CERTIFICATE_FIX)
        );
    }

    #[rstest]
    #[case::missing_package("ERROR: No matching distribution found for polarz")]
    #[case::network_down("curl: (6) Could not resolve host: pypi.org")]
    #[case::untrusted_user("The user is not trusted to run sudo")]
    #[case::a_certificate_file_listed("COPY ca-certificates.crt /etc/ssl/certs/")]
    fn leaves_other_failures_alone(#[case] line: &str) {
        assert_eq!(for_failed_step("exit code: 1", &[line.to_string()]), None);
    }

    #[test]
    fn reads_the_error_message_too() {
        let message = "failed to solve: failed to fetch https://x: x509: certificate signed by unknown authority";
        assert!(for_failed_step(message, &[]).is_some());
    }
}
