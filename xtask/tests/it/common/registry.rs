//! A real registry for tests: Debian's `docker-registry` (the open-source distribution
//! registry), started on a free loopback port with its own storage, optionally behind htpasswd
//! authentication, and stopped when dropped. It can be killed and started again on the same
//! port and storage, as a registry that goes away mid-push and comes back.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct Registry {
    /// `127.0.0.1:<port>`: the engine allows plain HTTP to loopback registries.
    pub host: String,
    child: Child,
    dir: TempDir,
}

const BINARY: &str = "/usr/bin/docker-registry";

/// Starts the registry; its access log (one line per request) is appended to `access.log`.
fn spawn(dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("access.log")).unwrap();
    Command::new(BINARY)
        .args(["serve", dir.join("config.yml").to_str().unwrap()])
        .stdout(Stdio::from(log))
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(host: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(host).is_err() {
        assert!(Instant::now() < deadline, "the registry did not start on {host}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Registry {
    /// Starts a registry; with `auth`, only that user and password may push or pull.
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        Registry::start_with(auth, false)
    }

    /// A registry in read-only maintenance mode: it answers and serves, and refuses every push.
    pub fn start_read_only() -> Registry {
        Registry::start_with(None, true)
    }

    fn start_with(auth: Option<(&str, &str)>, read_only: bool) -> Registry {
        assert!(
            std::path::Path::new(BINARY).is_file(),
            "these tests need Debian's `docker-registry` package (.ci/run installs it)"
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if read_only {
            config = config.replace("http:\n", "  maintenance:\n    readonly:\n      enabled: true\nhttp:\n");
        }
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", htpasswd.display()));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = spawn(dir.path());
        let host = format!("127.0.0.1:{port}");
        wait_for(&host);
        Registry { host, child, dir }
    }

    /// Where the registry keeps repositories: `<namespace>/<image>/_uploads` appears when an
    /// upload starts.
    pub fn repositories(&self) -> std::path::PathBuf {
        self.dir.path().join("data/docker/registry/v2/repositories")
    }

    /// Every request the registry has answered so far, one line each (`"POST /v2/... HTTP/1.1" 202`).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Kills the registry at once, as a crash or a network cut would stop it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.child = spawn(self.dir.path());
        wait_for(&self.host);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
