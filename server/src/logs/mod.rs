//! A log sink for a busy server: lines gathered in memory and written to stderr in batches.
//!
//! The bridge logs one line per exchange. Written straight to stderr, each line is a `write`
//! system call made while serving the request; handed to a writer thread one by one, each line
//! wakes that thread. Here a line is appended to a shared buffer under a mutex (a copy, no
//! system call); the first line of a batch wakes the writer thread, which waits
//! [`BATCH_WINDOW`] for more and writes them all at once. Nothing is dropped: when the buffer
//! holds [`MAX_BUFFERED`] bytes (stderr is slower than the logging), loggers wait for the
//! writer. Lines reach stderr at most about [`BATCH_WINDOW`] late; [`FlushOnDrop`] writes what
//! is left when the process ends normally.

mod setup;
pub mod text;

pub use setup::{init_lambda_logs, install_logs, is_lambda_runtime_payload, log_filter};

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer thread gathers lines before writing them.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Loggers wait for the writer thread beyond this many buffered bytes.
pub const MAX_BUFFERED: usize = 1 << 20;

/// Sets up `tracing` output on stderr for a long-running server, filtered by `RUST_LOG`
/// (default `info`), with the per-exchange records of `account_link_bridge::trace` on when
/// `trace_exchanges` is set (`--trace-exchanges`), whatever `RUST_LOG` says. Keep the guard
/// until the process ends: dropping it writes what is still buffered.
pub fn init(format: crate::config::LogFormat, trace_exchanges: bool) -> FlushOnDrop {
    let (sink, guard) = BatchedStderr::start();
    install_logs(format, log_filter(trace_exchanges), sink);
    guard
}

/// The logging side: a [`tracing_subscriber::fmt::MakeWriter`].
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch starts, and at shutdown.
    work: Condvar,
    /// Signalled when the writer thread has taken the buffer.
    drained: Condvar,
}

struct State {
    buffer: Vec<u8>,
    done: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes what is still buffered when dropped (keep it until the process ends).
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl BatchedStderr {
    /// Starts the writer thread.
    pub fn start() -> (BatchedStderr, FlushOnDrop) {
        Self::start_with(io::stderr())
    }

    /// [`BatchedStderr::start`], with the writer thread writing to `out` (a test's buffer).
    fn start_with(mut out: impl Write + Send + 'static) -> (BatchedStderr, FlushOnDrop) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: Vec::with_capacity(64 * 1024),
                done: false,
            }),
            work: Condvar::new(),
            drained: Condvar::new(),
        });
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("bridge-log".into())
                .spawn(move || write_batches(&shared, &mut out))
                .ok()
        };
        if writer.is_none() {
            // Without a writer thread, every line is written by its logger.
            shared.lock().done = true;
        }
        let sink = BatchedStderr {
            shared: Arc::clone(&shared),
        };
        (sink, FlushOnDrop { shared, writer })
    }
}

/// The writer thread: waits for a batch to start, lets it gather, writes it.
fn write_batches(shared: &Shared, out: &mut impl Write) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let mut state = shared.lock();
        while state.buffer.is_empty() && !state.done {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !state.done {
            drop(state);
            std::thread::sleep(BATCH_WINDOW);
            state = shared.lock();
        }
        std::mem::swap(&mut state.buffer, &mut batch);
        let done = state.done;
        drop(state);
        shared.drained.notify_all();
        // A failing stderr cannot be reported anywhere: the lines are dropped, not retried.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if done {
            // Lines logged after the last swap were written by their loggers (see `write`).
            return;
        }
    }
}

impl Write for &BatchedStderr {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &*self.shared;
        let mut state = shared.lock();
        while state.buffer.len() >= MAX_BUFFERED && !state.done {
            shared.work.notify_one();
            state = shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.done {
            // Shut down (or no writer thread could start): nobody would take the line.
            drop(state);
            return io::stderr().write(line);
        }
        let starts_batch = state.buffer.is_empty();
        state.buffer.extend_from_slice(line);
        drop(state);
        if starts_batch {
            shared.work.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = &'a BatchedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().done = true;
        self.shared.work.notify_one();
        self.shared.drained.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the writer thread wrote.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<u8>>>);

    impl Write for Collected {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A sink whose writer thread writes into `out`.
    fn sink(out: &Collected) -> (BatchedStderr, FlushOnDrop) {
        BatchedStderr::start_with(out.clone())
    }

    #[test]
    fn every_line_arrives_in_order_and_nothing_is_left_behind() {
        let out = Collected::default();
        let (sink, guard) = sink(&out);
        for i in 0..1000 {
            (&sink).write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone()).unwrap(),
            expected
        );
    }

    #[test]
    fn loggers_past_the_buffer_limit_wait_and_lose_nothing() {
        let out = Collected::default();
        let (sink, guard) = sink(&out);
        let line = |t: usize, i: usize| format!("{t}:{i:06}:{}\n", "x".repeat(90));
        // Two loggers, 3 MB in all: three times the limit.
        std::thread::scope(|scope| {
            for t in 0..2 {
                let mut sink = &sink;
                scope.spawn(move || {
                    for i in 0..15_000 {
                        sink.write_all(line(t, i).as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(guard);
        let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        for t in 0..2 {
            let mine: Vec<&str> = written
                .lines()
                .filter(|l| l.starts_with(&format!("{t}:")))
                .collect();
            let expected: Vec<String> = (0..15_000).map(|i| line(t, i)).collect();
            assert_eq!(mine.len(), expected.len());
            assert!(mine.iter().zip(&expected).all(|(a, b)| *a == b.trim_end()));
        }
    }
}
