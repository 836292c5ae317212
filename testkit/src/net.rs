//! Loopback ports for tests that run side by side in one process.
//!
//! "Bind port 0, read the port, drop the listener, hand the port on" is a race: between the drop
//! and the next bind, another test (or another part of the same test) may be given the same
//! port, and the test then talks to the wrong server. Here a port stays held for as long as the
//! test needs it.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

/// A loopback port nothing listens on, held for the value's lifetime: a socket bound to it but
/// never listening, so connecting is refused at once and no other socket can take the port.
pub struct ClosedPort {
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Binds a fresh loopback port without listening on it.
    pub fn new() -> Self {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("a loopback port");
        let addr = socket.local_addr().expect("a bound address");
        ClosedPort {
            _socket: socket,
            addr,
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        ClosedPort::new()
    }
}

impl std::fmt::Debug for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosedPort")
            .field("addr", &self.addr)
            .field("socket", &"bound, not listening")
            .finish()
    }
}

/// A loopback port free a moment ago, for a child process that can only be told a port (not
/// asked for port 0). The port may be taken again before the child binds it: callers must check
/// that what answers there is their child (see `start_until_bound`).
pub fn free_port_guess() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port()
}

/// Starts a child on a guessed free port, up to five times: `start(port)` returns `Ok` once
/// what answers on `port` is known to be its own child, `Err` when the port turned out taken (so
/// another is tried). Panics with the last error after five attempts.
pub fn start_until_bound<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..5 {
        match start(free_port_guess()) {
            Ok(started) => return started,
            Err(error) => last = error,
        }
    }
    panic!("could not start on a free port after five attempts: {last}")
}
