//! The `bridge` binary as a child process, listening on a port it chose itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// What the bridge logs (at INFO, target `bridge`) once it listens: `bridge serving POST
/// http://127.0.0.1:PORT/token`.
const SERVING: &str = "bridge serving POST ";

/// A started bridge: the child, the `host:port` it serves on, and its later stderr lines.
pub struct SpawnedBridge {
    /// The process (killed by nobody here: the caller owns it).
    pub child: Child,
    /// `127.0.0.1:PORT`, read from the bridge's own log.
    pub addr: String,
    /// The stderr lines after the serving line, as they come.
    pub lines: Receiver<String>,
}

/// Spawns `command` (the bridge binary with `--listen 127.0.0.1:0` among its arguments, and a
/// `RUST_LOG` that keeps the `bridge` target's INFO lines, or none) with stderr piped, and waits
/// up to 30 s for the line that says where it serves. Port 0 is chosen by the bridge itself, so
/// no other test can take it between a probe and the bind. Panics with the lines read so far
/// when the bridge exits or says nothing in time.
pub fn spawn_bridge(command: &mut Command) -> SpawnedBridge {
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bridge starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                // Nobody reads any more: keep draining so the bridge never blocks on stderr.
                continue;
            }
        }
    });
    let mut before = Vec::new();
    loop {
        let line = match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the bridge did not say where it serves:\n{}",
                    before.join("\n")
                );
            }
        };
        if let Some(rest) = line.split(SERVING).nth(1) {
            let url = rest.split_whitespace().next().unwrap_or_default();
            let addr = url
                .split("://")
                .nth(1)
                .and_then(|r| r.strip_suffix("/token"))
                .unwrap_or_else(|| panic!("an address in {line:?}"))
                .to_string();
            return SpawnedBridge { child, addr, lines };
        }
        before.push(line);
    }
}
