//! `cargo xtask verify REF --key PUB`: checks an image's signature in the registry (cosign's
//! format) with a public key, and lists its documents. The work is [`crate::supply::verify`].

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::Cli;
use crate::error::Error;
use crate::registry::Registry;
use crate::supply::sign::{self, KeyError};
use crate::supply::verify::{self, VerifyError};

#[derive(Debug, Args)]
pub struct Verify {
    /// The image: `host[:port]/path:tag` or `host[:port]/path@sha256:...`
    pub reference: String,
    /// The PEM public key (`cosign.pub`, or `openssl pkey -pubout` of the release key)
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
}

impl Verify {
    pub async fn run(&self, _cli: &Cli, out: &mut dyn Write) -> Result<(), Error> {
        let shown = self.key.display().to_string();
        let pem = std::fs::read_to_string(&self.key).map_err(|e| {
            VerifyError::from(KeyError::Unreadable {
                path: shown.clone(),
                reason: e.to_string(),
                hint: "check the path",
            })
        })?;
        let key = sign::verifying_key(&shown, &pem).map_err(VerifyError::from)?;
        let (host, _, _) = verify::split(&self.reference)?;
        let credentials = crate::credentials::lookup(&host);
        let registry = Registry::new(&host, credentials);
        let reference = self.reference.clone();
        let verified = tokio::task::spawn_blocking(move || verify::verify(&registry, &reference, &key, &shown))
            .await
            .map_err(|e| anyhow::anyhow!("verification stopped: {e}"))??;
        writeln!(
            out,
            "{}@{}: {} signature(s) verified with {}",
            verified.repository,
            verified.digest,
            verified.signatures,
            self.key.display()
        )?;
        for (kind, reference) in &verified.attachments {
            writeln!(out, "  {}: {reference}", kind.name())?;
        }
        match verified.provenance_signed {
            Some(true) => writeln!(out, "  the provenance is signed with the same key")?,
            Some(false) => writeln!(out, "  the provenance is NOT signed with this key")?,
            None => writeln!(out, "  no provenance attached")?,
        }
        Ok(())
    }
}
