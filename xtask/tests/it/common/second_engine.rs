//! Another machine, played on this one: a second `dockerd` with its own data root, exec root,
//! socket and bridge (created beforehand, so the first engine's `docker0` is left alone), empty
//! when it starts and removed with everything in it when dropped. Point a process at it with
//! `DOCKER_HOST` ([`SecondEngine::host`]).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct SecondEngine {
    /// `unix:///...sock`.
    pub host: String,
    child: Child,
    bridge: String,
    dir: TempDir,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

impl SecondEngine {
    /// Starts an empty engine; panics with the reason when this machine cannot (no root, no
    /// `dockerd`).
    pub fn start() -> SecondEngine {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // At most 15 characters; a private /24 of its own.
        let bridge = format!("xs{}n{n}", pid % 100_000);
        let subnet = format!("10.213.{}.1/24", (pid as usize * 7 + n) % 250 + 2);
        let _ = ip(&["link", "del", &bridge]);
        assert!(ip(&["link", "add", &bridge, "type", "bridge"]), "cannot create bridge {bridge} (root is needed)");
        assert!(ip(&["addr", "add", &subnet, "dev", &bridge]), "cannot address bridge {bridge}");
        assert!(ip(&["link", "set", &bridge, "up"]), "cannot bring bridge {bridge} up");
        let dir = tempfile::Builder::new().prefix("eng").tempdir_in("/tmp").unwrap();
        let socket = dir.path().join("d.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("x"))
            .arg("--pidfile")
            .arg(dir.path().join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!("--bridge={bridge}"))
            .args(["--iptables=false", "--ip-masq=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("dockerd starts (Debian's docker.io; .ci/run installs it)");
        let engine = SecondEngine { host: format!("unix://{}", socket.display()), child, bridge, dir };
        engine.wait_until_it_answers();
        engine
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A runtime of its own, on a thread of its own: the caller may be inside one.
            let host = self.host.clone();
            let answered = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    match xtask::engine::Engine::connect_to(&host).await {
                        Ok(engine) => engine.containers().await.is_ok(),
                        Err(_) => false,
                    }
                })
            })
            .join()
            .unwrap();
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the second engine did not answer within 60 s; its log:\n{}",
                std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The tags of every image on this engine.
    pub async fn tags(&self) -> Vec<String> {
        let engine = xtask::engine::Engine::connect_to(&self.host).await.unwrap();
        engine.tags().await.unwrap()
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = ip(&["link", "del", &self.bridge]);
        // Overlay mounts a killed engine left behind would keep the folder from going.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("grep -o ' {}[^ ]*' /proc/mounts | xargs -r -n1 umount -l", self.dir.path().display()))
            .status();
    }
}
