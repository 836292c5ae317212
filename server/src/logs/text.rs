//! The text log format: `tracing-subscriber`'s `Full` format, with the per-exchange line
//! written without going through `core::fmt`.
//!
//! The bridge writes one INFO line per token exchange. Through `Full`, that line cost about
//! 11 000 instructions (BENCHMARKS.md, "Lean path"): the timestamp's seven integers, the ANSI
//! styles (even when off), `Debug` of each string. [`TextFormat`] writes that one event, when
//! it is plain (its strings printable ASCII without `"` or `\`, no span, no colours), byte for
//! byte as `Full` would, from a timestamp prefix kept for the current second; every other
//! event, and any exchange line that is not plain, goes through `Full` itself. The tests
//! compare the two outputs.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use account_link_bridge::diagnostics::EXCHANGE_TARGET;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `Full`, with a lean path for the per-exchange line (see the module docs).
#[derive(Debug, Default)]
pub struct TextFormat {
    full: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() == EXCHANGE_TARGET
            && *meta.level() == Level::INFO
            && !writer.has_ansi_escapes()
            && ctx.lookup_current().is_none()
        {
            let mut line = Line {
                text: String::with_capacity(192),
                first: true,
                plain: true,
            };
            write_prefix(&mut line.text, SystemTime::now());
            event.record(&mut line);
            if line.plain {
                #[cfg(test)]
                tests::LEAN_LINES.with(|n| n.set(n.get() + 1));
                line.text.push('\n');
                return writer.write_str(&line.text);
            }
        }
        self.full.format_event(ctx, writer, event)
    }
}

/// `2026-12-07T03:11:23.176728Z  INFO account_link_bridge::exchange: `, as `Full` writes it
/// without colours; the part up to the second is formatted once a second per thread.
fn write_prefix(out: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            cached.1 = second_of(secs);
            cached.0 = secs;
        }
        out.push_str(&cached.1);
    });
    out.push('.');
    push_padded(out, u64::from(since_epoch.subsec_micros()), 6);
    out.push_str("Z  INFO ");
    out.push_str(EXCHANGE_TARGET);
    out.push_str(": ");
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix time, through the `time` crate.
fn second_of(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let start = at.min(digits.len() - width.min(digits.len()));
    out.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
}

fn plain_name(field: &Field) -> bool {
    let name = field.name();
    !name.starts_with("r#") && !name.starts_with("log.")
}

/// Printable ASCII: what `Full` writes unchanged as a message (its escaping touches only
/// control characters).
fn printable(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Printable ASCII without `"` or `\\`: what `Debug` writes unchanged between quotes.
fn plain_str(value: &str) -> bool {
    printable(value) && !value.contains(['"', '\\'])
}

/// Writes the fields as `Full`'s default visitor does: the message bare, then `name="text"`
/// and `name=123`, separated by one space. A field it cannot write exactly as `Full` would
/// (a float, a bool, `?value`, a string `Debug` would escape) clears `plain`: the caller then
/// leaves the whole event to `Full`.
struct Line {
    text: String,
    first: bool,
    plain: bool,
}

impl Line {
    fn pad(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.text.push(' ');
        }
    }

    fn name(&mut self, field: &Field) {
        self.pad();
        self.text.push_str(field.name());
        self.text.push('=');
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !plain_name(field) {
            self.plain = false;
        } else if field.name() == "message" && printable(value) {
            self.pad();
            self.text.push_str(value);
        } else if plain_str(value) {
            self.name(field);
            self.text.push('"');
            self.text.push_str(value);
            self.text.push('"');
        } else {
            self.plain = false;
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !plain_name(field) {
            self.plain = false;
            return;
        }
        self.name(field);
        push_padded(&mut self.text, value, 1);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !plain_name(field) {
            self.plain = false;
            return;
        }
        self.name(field);
        if value < 0 {
            self.text.push('-');
        }
        push_padded(&mut self.text, value.unsigned_abs(), 1);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message of `info!(..., "text")` arrives here as `fmt::Arguments`, whose `Debug`
        // is its text; every other value recorded this way is left to `Full`.
        if field.name() != "message" {
            self.plain = false;
            return;
        }
        self.pad();
        let start = self.text.len();
        if fmt::Write::write_fmt(&mut self.text, format_args!("{value:?}")).is_err()
            || !printable(&self.text[start..])
        {
            self.plain = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::io;
    use std::sync::{Arc, Mutex};

    thread_local! {
        /// Exchange lines written by the lean path on this thread.
        pub(super) static LEAN_LINES: Cell<usize> = const { Cell::new(0) };
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// What `emit` logs through `TextFormat` and through `Full`, with how many lines took the
    /// lean path.
    fn both(emit: impl Fn()) -> (String, String, usize) {
        let lean = Buffer::default();
        let full = Buffer::default();
        let before = LEAN_LINES.with(Cell::get);
        let writer = lean.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .event_format(TextFormat::default())
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let lean_lines = LEAN_LINES.with(Cell::get) - before;
        let writer = full.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, &emit);
        (lean.text(), full.text(), lean_lines)
    }

    /// The line without its timestamp, which is checked for its shape.
    fn untimed(line: &str) -> &str {
        let (stamp, rest) = line.split_at(27);
        let bytes = stamp.as_bytes();
        let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
        for (b, s) in bytes.iter().zip(shape.bytes()) {
            match s {
                b'd' => assert!(b.is_ascii_digit(), "{line}"),
                s => assert_eq!(*b, s, "{line}"),
            }
        }
        rest
    }

    fn assert_same(lean: &str, full: &str) {
        let lean: Vec<&str> = lean.lines().collect();
        let full: Vec<&str> = full.lines().collect();
        assert_eq!(lean.len(), full.len(), "{lean:?}\n{full:?}");
        for (l, f) in lean.iter().zip(&full) {
            assert_eq!(untimed(l), untimed(f));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange_line(
        grant_type: Option<&str>,
        upstream_status: Option<u16>,
        outcome: &str,
        error: Option<&str>,
        status: u16,
        latency_us: u64,
    ) {
        tracing::info!(
            target: EXCHANGE_TARGET,
            grant_type,
            upstream_status,
            outcome,
            error,
            status,
            latency_us,
            "token exchange"
        );
    }

    #[test]
    fn the_exchange_line_takes_the_lean_path_and_matches_full_byte_for_byte() {
        let (lean, full, lean_lines) = both(|| {
            exchange_line(
                Some("authorization_code"),
                Some(200),
                "token",
                None,
                200,
                65_926,
            );
            exchange_line(
                Some("refresh_token"),
                None,
                "refused",
                Some("invalid_grant"),
                400,
                0,
            );
            exchange_line(None, Some(503), "upstream_fault", None, 502, u64::MAX);
        });
        assert_eq!(lean_lines, 3);
        assert_same(&lean, &full);
        assert!(lean.contains(
            "  INFO account_link_bridge::exchange: token exchange grant_type=\"authorization_code\" \
             upstream_status=200 outcome=\"token\" status=200 latency_us=65926\n"
        ));
    }

    #[test]
    fn other_events_and_escaped_values_go_through_full() {
        let (lean, full, lean_lines) = both(|| {
            tracing::info!(target: "bridge", listen = "127.0.0.1:1", "bridge serving");
            tracing::warn!(target: EXCHANGE_TARGET, status = 500u64, "token exchange");
            exchange_line(Some("a\"quote"), None, "refused", None, 400, 1);
            exchange_line(Some("\u{1b}[31mred"), None, "refused", None, 400, 1);
            exchange_line(Some("caf\u{e9}"), None, "refused", None, 400, 1);
            tracing::info!(target: EXCHANGE_TARGET, ok = true, ratio = 0.5, "token exchange");
            tracing::info!(target: EXCHANGE_TARGET, "{} exchange", "token\u{7}");
            let span = tracing::info_span!("in_a_span", id = 7);
            let _entered = span.enter();
            exchange_line(Some("authorization_code"), None, "token", None, 200, 1);
        });
        assert_eq!(lean_lines, 0);
        assert_same(&lean, &full);
    }

    #[test]
    fn the_second_is_formatted_in_utc() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_796_601_083, "2026-12-06T23:51:23"),
            (4_102_444_799, "2099-12-31T23:59:59"),
        ] {
            assert_eq!(second_of(secs), text);
        }
        let mut out = String::new();
        push_padded(&mut out, 42, 6);
        push_padded(&mut out, 0, 1);
        push_padded(&mut out, u64::MAX, 1);
        assert_eq!(out, format!("0000420{}", u64::MAX));
    }

    proptest! {
        #[test]
        fn any_exchange_line_is_written_as_full_writes_it(
            grant_type in proptest::option::of(any::<String>()),
            upstream_status in proptest::option::of(any::<u16>()),
            outcome in "[ -~]{0,12}|\\PC{0,6}",
            error in proptest::option::of("[a-z_\"\\\\]{0,16}"),
            status in any::<u16>(),
            latency_us in any::<u64>(),
        ) {
            let (lean, full, _) = both(|| {
                exchange_line(
                    grant_type.as_deref(),
                    upstream_status,
                    &outcome,
                    error.as_deref(),
                    status,
                    latency_us,
                )
            });
            let lean: Vec<&str> = lean.lines().collect();
            let full: Vec<&str> = full.lines().collect();
            prop_assert_eq!(lean.len(), full.len());
            for (l, f) in lean.iter().zip(&full) {
                prop_assert_eq!(untimed(l), untimed(f));
            }
        }
    }
}
