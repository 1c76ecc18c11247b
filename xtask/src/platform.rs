//! Platforms an image is built for (`linux/amd64`, `linux/arm64`): parsing and naming, the
//! names other tools give an architecture (Debian's for debootstrap, the kernel's for
//! `uname -m` and QEMU's binfmt handlers), and whether this host runs a platform natively, under
//! QEMU through a registered binfmt handler, or not at all.
//!
//! Pure but for [`host_runs`], which reads `/proc/sys/fs/binfmt_misc` (a file, like the spec):
//! nothing here talks to an engine.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the kernel lists binfmt handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// One OS and architecture (and an architecture variant, `arm/v7`), as OCI names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// What each architecture is called elsewhere: `(OCI architecture, variant, Debian architecture,
/// kernel machine (`uname -m`), QEMU's name)`.
const ARCHITECTURES: &[(&str, Option<&str>, &str, &str, &str)] = &[
    ("amd64", None, "amd64", "x86_64", "x86_64"),
    ("arm64", None, "arm64", "aarch64", "aarch64"),
    ("arm", Some("v7"), "armhf", "armv7l", "arm"),
    ("arm", Some("v6"), "armel", "armv6l", "arm"),
    ("386", None, "i386", "i686", "i386"),
    ("ppc64le", None, "ppc64el", "ppc64le", "ppc64le"),
    ("s390x", None, "s390x", "s390x", "s390x"),
    ("riscv64", None, "riscv64", "riscv64", "riscv64"),
];

/// How a platform can run on a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    Native,
    /// Through QEMU: the binfmt handler (`/proc/sys/fs/binfmt_misc/qemu-aarch64`) is enabled.
    Emulated {
        handler: PathBuf,
    },
    /// Neither.
    No,
}

impl Platform {
    /// Reads `os/architecture[/variant]` (`linux/arm64`, `linux/arm/v7`); only Linux
    /// platforms of the architectures this tool knows how to make bases for.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, architecture] => (*os, *architecture, None),
            [os, architecture, variant] => (*os, *architecture, Some(*variant)),
            _ => return Err(format!("`{text}` is not a platform: write `os/architecture`, such as `linux/arm64`")),
        };
        if os != "linux" {
            return Err(format!("`{text}`: images are Linux images, so the platform starts with `linux/`"));
        }
        let known =
            ARCHITECTURES.iter().find(|(arch, v, ..)| *arch == architecture && (variant.is_none() || *v == variant));
        let Some((_, default_variant, ..)) = known else {
            return Err(format!("`{text}` is not a platform this tool knows; known: {}", known_list()));
        };
        let variant = variant.or(*default_variant).map(str::to_string);
        Ok(Platform { os: os.to_string(), architecture: architecture.to_string(), variant })
    }

    /// The platform of this machine (what the tool was compiled for).
    pub fn host() -> Platform {
        Platform::from_machine(std::env::consts::ARCH).unwrap_or_else(|| Platform::parse("linux/amd64").expect("known"))
    }

    /// The platform a kernel machine name (`x86_64`, `aarch64`, as `uname -m` and Rust say it) or
    /// a Go architecture (`amd64`, as an engine reports itself) names.
    pub fn from_machine(machine: &str) -> Option<Platform> {
        let (architecture, variant, ..) = ARCHITECTURES
            .iter()
            .find(|(arch, _, _, kernel, _)| *kernel == machine || (*arch == machine && *arch != "arm"))?;
        Some(Platform {
            os: "linux".into(),
            architecture: architecture.to_string(),
            variant: variant.map(String::from),
        })
    }

    fn known(&self) -> &'static (&'static str, Option<&'static str>, &'static str, &'static str, &'static str) {
        ARCHITECTURES
            .iter()
            .find(|(arch, variant, ..)| *arch == self.architecture && *variant == self.variant.as_deref())
            .unwrap_or(&ARCHITECTURES[0])
    }

    /// What node names and file names carry: `arm64`, `armv7`.
    pub fn suffix(&self) -> String {
        format!("{}{}", self.architecture, self.variant.as_deref().unwrap_or_default())
    }

    /// Debian's name for the architecture (`debootstrap --arch`): `arm64`, `armhf`.
    pub fn debian_architecture(&self) -> &'static str {
        self.known().2
    }

    /// What `uname -m` prints inside a container of this platform: `aarch64`.
    pub fn machine(&self) -> &'static str {
        self.known().3
    }

    /// The binfmt handler that runs this platform's programs under QEMU.
    pub fn binfmt_handler(&self) -> PathBuf {
        Path::new(BINFMT_DIR).join(format!("qemu-{}", self.known().4))
    }

    /// Whether this host runs the platform, and how.
    pub fn host_runs(&self) -> Runs {
        if *self == Platform::host() {
            return Runs::Native;
        }
        let handler = self.binfmt_handler();
        match std::fs::read_to_string(&handler) {
            Ok(text) if text.lines().next() == Some("enabled") => Runs::Emulated { handler },
            _ => Runs::No,
        }
    }

    /// What a platform that cannot run here needs, in words: both ways.
    pub fn how_to_run(&self) -> String {
        format!(
            "build on a native {self} engine (`--engine {self}=ssh://HOST`, or DOCKER_HOST on an {} runner such as GitHub's `ubuntu-24.04-arm`), or let this one emulate it: `apt-get install qemu-user-static binfmt-support` (then `update-binfmts --enable qemu-{}`; .ci/run does both)",
            self.architecture,
            self.known().4
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Every platform this tool knows, for messages.
pub fn known_list() -> String {
    ARCHITECTURES
        .iter()
        .map(|(arch, variant, ..)| match variant {
            Some(variant) => format!("linux/{arch}/{variant}"),
            None => format!("linux/{arch}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("linux/amd64", "linux/amd64", "amd64", "amd64", "x86_64")]
    #[case("linux/arm64", "linux/arm64", "arm64", "arm64", "aarch64")]
    #[case("linux/arm/v7", "linux/arm/v7", "armv7", "armhf", "armv7l")]
    #[case(" linux/386 ", "linux/386", "386", "i386", "i686")]
    fn reads_platforms(
        #[case] text: &str,
        #[case] shown: &str,
        #[case] suffix: &str,
        #[case] debian: &str,
        #[case] machine: &str,
    ) {
        let platform = Platform::parse(text).unwrap();
        assert_eq!(platform.to_string(), shown);
        assert_eq!(platform.suffix(), suffix);
        assert_eq!(platform.debian_architecture(), debian);
        assert_eq!(platform.machine(), machine);
    }

    #[rstest]
    #[case("arm64", "not a platform")]
    #[case("windows/amd64", "Linux images")]
    #[case("linux/mips", "known: linux/amd64")]
    #[case("linux/arm/v9", "known: ")]
    #[case("linux/arm64/v8/x", "not a platform")]
    fn refuses_what_it_cannot_build(#[case] text: &str, #[case] why: &str) {
        let error = Platform::parse(text).unwrap_err();
        assert!(error.contains(why), "{error}");
    }

    #[test]
    fn machines_and_engines_name_the_same_platforms() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(Platform::from_machine("aarch64"), Some(arm64.clone()));
        assert_eq!(Platform::from_machine("arm64"), Some(arm64));
        assert_eq!(Platform::from_machine("x86_64").unwrap().to_string(), "linux/amd64");
        assert_eq!(Platform::host().host_runs(), Runs::Native);
        assert!(Platform::parse("linux/arm64").unwrap().binfmt_handler().ends_with("qemu-aarch64"));
    }
}
