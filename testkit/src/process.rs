//! The `bridge` binary as a child process, listening on a port it chose itself.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// What the bridge logs (at INFO, target `bridge`) once it listens: `bridge serving POST
/// http://127.0.0.1:PORT/token`.
const SERVING: &str = "bridge serving POST ";

/// Why a bridge did not start serving.
#[derive(Debug)]
pub struct NotServing {
    /// Its exit status when it exited; `None` when it fell silent for 30 s (it is killed).
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stderr, one line per line.
    pub log: String,
}

/// A running bridge whose stderr is read line by line as it comes; killed when dropped.
pub struct BridgeProcess {
    child: Child,
    base: String,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl BridgeProcess {
    /// Spawns `command` (the bridge binary with `--listen 127.0.0.1:0` among its arguments, and
    /// a `RUST_LOG` that keeps the `bridge` target's INFO lines, or none) with stderr piped, and
    /// waits up to 30 s for the line that says where it serves. Port 0 is chosen by the bridge
    /// itself, so no other test can take it between a probe and the bind.
    ///
    /// `Err` when the bridge exited (or said nothing for 30 s) before serving.
    pub fn spawn(command: &mut Command) -> Result<BridgeProcess, NotServing> {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("the bridge starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Once nobody reads, keep draining all the same: the bridge never blocks on
                // a full stderr pipe.
                let _ = tx.send(line);
            }
        });
        let mut bridge = BridgeProcess {
            child,
            base: String::new(),
            lines,
            log: Vec::new(),
        };
        let Some(serving) = bridge.wait_for(SERVING) else {
            // Its stderr closed: it exited (or is exiting), so waiting for it is short.
            let exited = matches!(
                bridge.lines.try_recv(),
                Err(mpsc::TryRecvError::Disconnected)
            );
            return Err(NotServing {
                status: if exited {
                    bridge.child.wait().ok()
                } else {
                    None
                },
                log: bridge.log.join("\n"),
            });
        };
        let url: String = serving
            .split(SERVING)
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        bridge.base = url
            .strip_suffix("/token")
            .unwrap_or_else(|| panic!("a URL in {serving:?}"))
            .to_string();
        Ok(bridge)
    }

    /// Like [`spawn`](Self::spawn), panicking with the log when the bridge does not start.
    pub fn start(command: &mut Command) -> BridgeProcess {
        Self::spawn(command).unwrap_or_else(|failed| {
            panic!(
                "the bridge did not start serving ({:?}):\n{}",
                failed.status, failed.log
            )
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.base.split("://").nth(1).unwrap_or(&self.base)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself (its stdout, if piped; waiting for its exit).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Every stderr line read so far.
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Reads stderr up to the next line containing `needle` (within 30 s) and returns it; every
    /// line read is kept in [`log`](Self::log). `None` when the bridge exited or fell silent.
    pub fn wait_for(&mut self, needle: &str) -> Option<String> {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).ok()?;
            self.log.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// [`wait_for`](Self::wait_for), panicking with the log when no such line comes.
    pub fn expect_line(&mut self, needle: &str) -> String {
        self.wait_for(needle)
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{}", self.log.join("\n")))
    }

    /// Kills the bridge (dropping does the same).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
