//! Printing replies: `<data>` content (raw or indented), capabilities grouped for people,
//! notifications, rpc-errors as readable lines, and the size of large replies.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use netconf_blocking::{Capabilities, Capability, Notification, RpcError};
use netconf_proto::capabilities::ModuleCapability;
use netconf_proto::xml::{escape_text, NS_BASE, NS_NOTIFICATION};
use netconf_proto::Framing;

use crate::args::Format;
use crate::pretty;

/// Replies at least this large get a size and rate line on a terminal.
const LARGE_REPLY: usize = 1 << 20;

const CAP_PREFIX: &str = "urn:ietf:params:netconf:capability:";

/// Writes to stdout; a closed pipe (`netconf get | head`) ends the program quietly.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("netconf: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// The format in effect: as asked, else pretty on a terminal and xml otherwise.
pub fn effective_format(asked: Option<Format>) -> Format {
    asked.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Pretty
    } else {
        Format::Xml
    })
}

/// XML content (`<data>` or any reply content) in the chosen format.
pub fn xml(format: Format, xml: &str) -> String {
    match format {
        Format::Pretty => pretty::indent_or_raw(xml),
        Format::Xml if xml.is_empty() => String::new(),
        Format::Xml => format!("{xml}\n"),
    }
}

/// An `<ok/>` reply.
pub fn ok(format: Format) -> &'static str {
    match format {
        Format::Pretty => "ok\n",
        Format::Xml => "<ok/>\n",
    }
}

/// Each rpc-error as one line: severity, tag, type, path, message, error-info.
pub fn rpc_error_lines(errors: &[RpcError]) -> String {
    let mut out = String::new();
    for e in errors {
        let _ = write!(out, "rpc-error: {e}");
        if let Some(info) = e.info.as_ref().and_then(|i| info_summary(i.as_str())) {
            let _ = write!(out, " ({info})");
        }
        out.push('\n');
    }
    out
}

/// `<session-id>3</session-id><bad-element>x</bad-element>` as `session-id 3, bad-element x`.
fn info_summary(xml: &str) -> Option<String> {
    let root = netconf_server::tree::parse(xml, &[], 8).ok()?;
    let parts: Vec<String> = root
        .children
        .iter()
        .map(|c| format!("{} {}", c.name, c.text.trim()).trim().to_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The hello summary: session-id, framing and capabilities grouped for people, or the
/// `<hello>` as XML.
pub fn hello(format: Format, session_id: u32, framing: Framing, caps: &Capabilities) -> String {
    if format == Format::Xml {
        let mut out = format!("<hello xmlns=\"{NS_BASE}\"><capabilities>");
        for uri in caps.uris() {
            let _ = write!(out, "<capability>{}</capability>", escape_text(uri));
        }
        let _ = writeln!(
            out,
            "</capabilities><session-id>{session_id}</session-id></hello>"
        );
        return out;
    }
    let framing = match framing {
        Framing::Chunked => "chunked (base:1.1)",
        Framing::EndOfMessage => "end-of-message ]]>]]> (base:1.0)",
        _ => "unknown",
    };
    let mut out = format!("session-id: {session_id}\nframing:    {framing}\n");
    out.push_str(&capabilities(caps));
    out
}

/// Capabilities in three groups (base, standard, modules with revision) plus any others.
pub fn capabilities(caps: &Capabilities) -> String {
    let (mut base, mut standard, mut modules, mut other) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (uri, cap) in caps.uris().zip(caps.iter()) {
        match cap {
            Capability::Base(v) => base.push(format!("{v}  {uri}")),
            Capability::Module(m) => modules.push(m),
            _ => match uri.strip_prefix(CAP_PREFIX) {
                Some(short) => standard.push(format!(":{short}")),
                None => other.push(uri.to_owned()),
            },
        }
    }
    let mut out = String::new();
    section(&mut out, "base", &base);
    section(&mut out, "standard", &standard);
    section(&mut out, "modules", &module_lines(&modules));
    section(&mut out, "other", &other);
    out
}

fn module_lines(modules: &[&ModuleCapability]) -> Vec<String> {
    let width = modules.iter().map(|m| m.module.len()).max().unwrap_or(0);
    modules
        .iter()
        .map(|m| {
            let mut line = format!(
                "{:width$}  {:10}  {}",
                m.module,
                m.revision.as_deref().unwrap_or("-"),
                m.namespace
            );
            if !m.features.is_empty() {
                let _ = write!(line, "  features: {}", m.features.join(","));
            }
            if !m.deviations.is_empty() {
                let _ = write!(line, "  deviations: {}", m.deviations.join(","));
            }
            line
        })
        .collect()
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title} ({}):", lines.len());
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

/// One notification: its event time and content.
pub fn notification(format: Format, n: &Notification) -> String {
    match format {
        Format::Pretty => format!(
            "notification at {}\n{}",
            n.event_time.trim(),
            pretty::indent_or_raw(n.content.as_str())
        ),
        Format::Xml => format!(
            "<notification xmlns=\"{NS_NOTIFICATION}\"><eventTime>{}</eventTime>{}</notification>\n",
            escape_text(n.event_time.trim()),
            n.content.as_str()
        ),
    }
}

/// A live progress line on stderr while a large reply arrives (the caller installs it only
/// when stderr is a terminal): bytes so far and the rate, redrawn at most ten times a second
/// and erased when the message is complete.
pub fn progress_reporter() -> impl Fn(netconf_blocking::Progress) + Send + Sync + 'static {
    use std::io::Write as _;
    let state = std::sync::Mutex::new(None::<(std::time::Instant, std::time::Instant)>);
    move |progress| {
        if STREAMING.load(std::sync::atomic::Ordering::Relaxed) {
            // A streamed reply draws its own line (see StreamProgress).
            return;
        }
        let received = progress.received;
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if received == 0 {
            if state.take().is_some() {
                eprint!("\r\x1b[K");
                let _ = std::io::stderr().flush();
            }
            return;
        }
        let (started, last) = state.get_or_insert((now, now - Duration::from_secs(1)));
        if received < LARGE_REPLY || now.duration_since(*last) < Duration::from_millis(100) {
            return;
        }
        *last = now;
        let line =
            size_line(received, now.duration_since(*started)).replacen("received", "receiving", 1);
        eprint!("\r\x1b[K{line}");
        let _ = std::io::stderr().flush();
    }
}

/// Set while a streamed reply is being copied out: the session's own progress callback
/// stands down, [`StreamProgress`] draws the line.
static STREAMING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The live progress line of a streamed reply on stderr, drawn only when stderr is a
/// terminal: the content received so far and the rate, redrawn at most ten times a second
/// (the first time a quarter of a second in, so short replies draw nothing), erased at the
/// end, when a reply of 1 MiB or more leaves its size line.
#[derive(Debug)]
pub struct StreamProgress {
    started: std::time::Instant,
    last: Option<std::time::Instant>,
    terminal: bool,
    drawn: bool,
}

impl StreamProgress {
    /// Starts timing (call it before sending the request).
    pub fn start() -> StreamProgress {
        STREAMING.store(true, std::sync::atomic::Ordering::Relaxed);
        StreamProgress {
            started: std::time::Instant::now(),
            last: None,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// `total` bytes of content have arrived.
    pub fn update(&mut self, total: u64) {
        if !self.terminal {
            return;
        }
        let now = std::time::Instant::now();
        let due = match self.last {
            Some(last) => now.duration_since(last) >= Duration::from_millis(100),
            None => now.duration_since(self.started) >= Duration::from_millis(250),
        };
        if !due {
            return;
        }
        self.last = Some(now);
        self.drawn = true;
        let line = progress_line(total, now.duration_since(self.started));
        eprint!("\r\x1b[K{line}");
        let _ = std::io::stderr().flush();
    }

    /// The reply is complete: erase the line, and report the size of a large one.
    pub fn finish(mut self, total: u64) {
        self.erase();
        report_size(
            usize::try_from(total).unwrap_or(usize::MAX),
            self.started.elapsed(),
        );
    }

    fn erase(&mut self) {
        if std::mem::take(&mut self.drawn) {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Drop for StreamProgress {
    fn drop(&mut self) {
        self.erase();
        STREAMING.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `receiving 12.3 MiB (4.1 MiB/s)`.
fn progress_line(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!(
        "receiving {} ({}/s)",
        human_bytes(bytes),
        human_bytes((bytes as f64 / secs) as u64)
    )
}

/// 512 B, 12.0 KiB, 3.5 MiB, 1.2 GiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// After a large reply, its size and rate on stderr, when stderr is a terminal.
pub fn report_size(bytes: usize, elapsed: Duration) {
    if bytes < LARGE_REPLY || !std::io::stderr().is_terminal() {
        return;
    }
    eprintln!("{}", size_line(bytes, elapsed));
}

fn size_line(bytes: usize, elapsed: Duration) -> String {
    let mib = bytes as f64 / f64::from(1 << 20);
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!(
        "received {mib:.1} MiB in {secs:.2} s ({:.1} MiB/s)",
        mib / secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use netconf_blocking::RpcError;
    use netconf_proto::message::{ErrorTag, ErrorType};

    #[test]
    fn rpc_errors_are_one_line_each() {
        let e = RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied)
            .with_message("locked by session 3")
            .with_path("/a")
            .with_info_xml("<session-id>3</session-id>")
            .unwrap();
        assert_eq!(
            rpc_error_lines(&[e]),
            "rpc-error: error lock-denied (protocol) at /a: locked by session 3 (session-id 3)\n"
        );
    }

    #[test]
    fn capabilities_are_grouped() {
        let caps = Capabilities::new([
            "urn:ietf:params:netconf:base:1.1",
            "urn:ietf:params:netconf:capability:candidate:1.0",
            "urn:x:m?module=m&revision=2020-01-01",
            "http://example.com/other",
        ]);
        let text = capabilities(&caps);
        assert_eq!(
            text,
            "base (1):\n  1.1  urn:ietf:params:netconf:base:1.1\nstandard (1):\n  :candidate:1.0\n\
             modules (1):\n  m  2020-01-01  urn:x:m\nother (1):\n  http://example.com/other\n"
        );
    }

    #[test]
    fn progress_in_human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12 << 10), "12.0 KiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(
            progress_line(3 << 20, Duration::from_secs(2)),
            "receiving 3.0 MiB (1.5 MiB/s)"
        );
    }

    #[test]
    fn size_and_rate() {
        assert_eq!(
            size_line(3 << 20, Duration::from_millis(1500)),
            "received 3.0 MiB in 1.50 s (2.0 MiB/s)"
        );
    }
}
