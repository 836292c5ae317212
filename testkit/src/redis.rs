//! A real `redis-server` (Debian's package; `.ci/run` installs it) on a loopback port, killed
//! when dropped.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::start_until_bound;

/// A running `redis-server` with persistence off.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers. Redis can only
    /// be told a port, so the port is a guess: the server is accepted only when the `process_id`
    /// it reports is its own child's (another test's server may have taken the port meanwhile),
    /// and another port is tried otherwise.
    pub fn start() -> Self {
        start_until_bound(|port| {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (.ci/run installs it)");
            // Owned (killed when dropped) from here on, whichever way this attempt ends.
            let mut server = RedisServer { child, port };
            let mut listening = false;
            for _ in 0..500 {
                if let Ok(Some(status)) = server.child.try_wait() {
                    return Err(format!("redis-server exited on port {port}: {status}"));
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    listening = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !listening {
                return Err(format!("redis-server did not listen on {port} within 5 s"));
            }
            // Not through `cli` (`--no-raw` would print the answer as one quoted string).
            let info = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "INFO", "server"])
                .output()
                .expect("redis-cli runs");
            let info = String::from_utf8_lossy(&info.stdout);
            let own = format!("process_id:{}", server.child.id());
            if info.lines().any(|l| l.trim() == own) {
                Ok(server)
            } else {
                Err(format!("port {port} answered for another server"))
            }
        })
    }

    /// Its loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (an outage); dropping does the same.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs `redis-cli` against it and returns its standard output (`--no-raw`).
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--no-raw"])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(output.status.success(), "redis-cli {args:?}");
        output.stdout
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
