//! The fixture stack (`xtask/tests/fixtures/stack`): four images on a busybox base, small
//! enough to build in seconds. Tests and `cargo xtask bench build` copy it to a temporary
//! folder and give it a busybox root file system, imported by the spec's `import` recipe.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The base image of a prepared fixture stack.
/// Versioned: bump it when the root file system below changes, so engines that have the old
/// one import the new one.
pub const BUSYBOX_BASE: &str = "localhost/xtask-fixture/busybox:5";

/// Where the fixture stack is kept in the repository.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stack")
}

/// Copies folder `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Writes a root file system with busybox, a few applets and a root user as a tar archive. Needs
/// `/bin/busybox` (Debian's `busybox-static`).
pub fn busybox_rootfs(target: &Path) -> io::Result<()> {
    let busybox = Path::new("/bin/busybox");
    let bytes = fs::read(busybox).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("{}: {error}; install the `busybox-static` package (.ci/run does)", busybox.display()),
        )
    })?;
    let mut tar = tar::Builder::new(fs::File::create(target)?);
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    tar.append_data(&mut header, "bin/busybox", bytes.as_slice())?;
    for applet in [
        "sh", "echo", "cat", "sleep", "true", "false", "ls", "id", "env", "stat", "pwd", "head", "wc", "mkdir", "httpd",
    ] {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_mode(0o777);
        tar.append_link(&mut link, format!("bin/{applet}"), "busybox")?;
    }
    let mut tmp = tar::Header::new_gnu();
    tmp.set_entry_type(tar::EntryType::Directory);
    tmp.set_mode(0o1777);
    tmp.set_size(0);
    tar.append_data(&mut tmp, "tmp/", io::empty())?;
    for (path, text) in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, text.as_bytes())?;
    }
    tar.finish()
}

/// Copies the fixture stack into `dir`, in namespace `namespace`, on base image `base` made by
/// an `import` recipe from a busybox root file system; returns the spec's path.
pub fn prepare(dir: &Path, namespace: &str, base: &str) -> io::Result<PathBuf> {
    copy_dir(&source_dir(), dir)?;
    let spec_path = dir.join("images/spec.yml");
    let text = fs::read_to_string(&spec_path)?;
    let text = text.replacen("namespace: fixture", &format!("namespace: {namespace}"), 1).replacen(
        "    image: localhost/debian:bookworm\n    recipe:\n      debootstrap:\n        suite: bookworm\n        mirror: http://deb.debian.org/debian\n",
        &format!("    image: {base}\n    recipe:\n      import: busybox.tar\n"),
        1,
    );
    if !text.contains("import: busybox.tar") {
        return Err(io::Error::other("the fixture spec's base block changed; update xtask::fixture::prepare"));
    }
    fs::write(&spec_path, text)?;
    busybox_rootfs(&dir.join("images/busybox.tar"))?;
    Ok(spec_path)
}
