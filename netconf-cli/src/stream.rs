//! Streamed replies: `get`, `get-config` and `get-data` copy the content of `<data>` to
//! stdout or `-o FILE` as it arrives (`Client::call_streamed`), so a reply of any size
//! costs the window of the session (4 MiB) plus a few buffers; `--format pretty` indents
//! on the way, one XML event at a time.
//!
//! `-o FILE` is written to a temporary file beside it and renamed over FILE once the reply
//! is complete: a reply that breaks off leaves FILE as it was, never a truncated file that
//! looks whole.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use netconf_blocking::operations::Operation;
use netconf_blocking::{Client, DataReader, Error};

use crate::args::Format;
use crate::errors::{self, CliError, Target};
use crate::output::{human_bytes, StreamProgress};
use crate::pretty::{self, IndentError};

/// How much is written to the output at a time.
const OUT_BUFFER: usize = 64 * 1024;

/// The output of `-o FILE`: a temporary file next to FILE until [`OutFile::commit`]
/// renames it into place; dropped before that, it is removed. A FILE that exists and is
/// not a regular file (`/dev/null`, a FIFO) is written directly.
#[derive(Debug)]
pub struct OutFile {
    /// FILE, as given (for messages).
    shown: PathBuf,
    /// FILE, symlinks resolved: what the temporary file is renamed to.
    target: PathBuf,
    /// Where the content goes until it is complete (`None`: straight into FILE).
    temp: Option<PathBuf>,
    file: File,
}

impl OutFile {
    /// Opens the output for `-o path` (`option` names it in errors).
    pub fn create(option: &str, path: &Path) -> Result<OutFile, CliError> {
        let cannot = |e: io::Error| {
            CliError::fatal(format!("cannot write {option} {}: {e}", path.display()))
        };
        // Write through a symlink to where it points, as a plain open would.
        let resolved = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        if let Ok(meta) = fs::metadata(&resolved) {
            if !meta.is_file() {
                if meta.is_dir() {
                    return Err(CliError::fatal(format!(
                        "cannot write {option} {}: it is a directory",
                        path.display()
                    )));
                }
                let file = File::options()
                    .write(true)
                    .open(&resolved)
                    .map_err(cannot)?;
                return Ok(OutFile {
                    shown: path.to_owned(),
                    target: resolved,
                    temp: None,
                    file,
                });
            }
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = resolved
            .file_name()
            .ok_or_else(|| {
                CliError::fatal(format!("{option} {}: not a file name", path.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let temp = resolved.with_file_name(format!(
            ".{name}.netconf-{}-{}.partial",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(cannot)?;
        Ok(OutFile {
            shown: path.to_owned(),
            target: resolved,
            temp: Some(temp),
            file,
        })
    }

    /// FILE as given.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// The content is complete: FILE takes it (keeping the permissions of a FILE that
    /// existed).
    fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        let result = (|| {
            if let Ok(meta) = fs::metadata(&self.target) {
                fs::set_permissions(&temp, meta.permissions())?;
            }
            fs::rename(&temp, &self.target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Writes `content` whole and commits (for replies that are not streamed).
    pub fn write_all(mut self, content: &[u8]) -> io::Result<()> {
        self.file.write_all(content)?;
        self.commit()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Why copying a streamed reply out stopped.
enum CopyError {
    /// The reply broke off (the session ended, timed out...): the io::Error carries the
    /// NETCONF error inside.
    Read(io::Error),
    Write(io::Error),
    NotWellFormed {
        what: String,
        offset: u64,
    },
}

/// Sends `op`, a data operation, and copies the content of its reply to `out` (stdout when
/// `None`) as it arrives, in `format`. On stdout a final newline follows the content; a
/// file holds the content of `<data>` byte for byte (xml) or indented (pretty).
pub fn fetch(
    client: &Client,
    op: &(impl Operation + ?Sized),
    format: Format,
    out: Option<OutFile>,
    target: &Target<'_>,
) -> Result<(), CliError> {
    let mut progress = StreamProgress::start();
    let reader = client
        .call_streamed(op)
        .map_err(|e| errors::from_error(e, target))?;
    let mut received = 0u64;
    let copied = match &out {
        None => {
            let stdout = io::stdout().lock();
            let mut w = BufWriter::with_capacity(OUT_BUFFER, stdout);
            copy(reader, format, &mut w, true, &mut progress, &mut received)
        }
        Some(file) => {
            let mut w = BufWriter::with_capacity(OUT_BUFFER, &file.file);
            copy(reader, format, &mut w, false, &mut progress, &mut received)
        }
    };
    let where_to = |out: &Option<OutFile>| match out {
        Some(f) => format!("-o {}", f.path().display()),
        None => "stdout".to_owned(),
    };
    match copied {
        Ok(()) => {}
        Err(CopyError::Read(e)) => {
            let message = match errors::from_error(netconf_error(e), target) {
                CliError::Fatal(m) => m,
                other => return Err(other),
            };
            let file = match &out {
                Some(f) => format!("; {} left as it was", f.path().display()),
                None => String::new(),
            };
            return Err(CliError::fatal(format!(
                "{message} (the reply broke off after {} of <data>{file})",
                human_bytes(received)
            )));
        }
        Err(CopyError::Write(e)) if out.is_none() && e.kind() == io::ErrorKind::BrokenPipe => {
            // `netconf get | head`: the reader has what it wanted.
            std::process::exit(0);
        }
        Err(CopyError::Write(e)) => {
            return Err(CliError::fatal(format!(
                "cannot write to {}: {e}",
                where_to(&out)
            )))
        }
        Err(CopyError::NotWellFormed { what, offset }) => {
            return Err(CliError::fatal(format!(
                "the reply is not well-formed XML at byte {offset} of <data>: {what} \
                 (--format xml prints it as received)"
            )))
        }
    }
    if let Some(file) = out {
        let path = file.path().to_owned();
        file.commit()
            .map_err(|e| CliError::fatal(format!("cannot write -o {}: {e}", path.display())))?;
    }
    progress.finish(received);
    Ok(())
}

/// Copies the content of `reader` to `w`: piece by piece as received (xml), or indented.
fn copy(
    mut reader: DataReader,
    format: Format,
    w: &mut impl Write,
    newline: bool,
    progress: &mut StreamProgress,
    received: &mut u64,
) -> Result<(), CopyError> {
    match format {
        Format::Xml => {
            while let Some(piece) = reader.next_piece() {
                let piece = piece.map_err(CopyError::Read)?;
                w.write_all(&piece).map_err(CopyError::Write)?;
                *received += piece.len() as u64;
                progress.update(*received);
            }
            if newline && *received > 0 {
                w.write_all(b"\n").map_err(CopyError::Write)?;
            }
        }
        Format::Pretty => {
            let counted = Counted {
                inner: reader,
                received,
                progress,
                error: None,
            };
            let mut input = BufReader::with_capacity(OUT_BUFFER, counted);
            match pretty::indent_to(&mut input, &mut *w) {
                Ok(()) => {}
                Err(IndentError::Read(e)) => {
                    return Err(CopyError::Read(
                        input.into_inner().error.take().unwrap_or(e),
                    ))
                }
                Err(IndentError::Write(e)) => return Err(CopyError::Write(e)),
                Err(IndentError::NotWellFormed { what, offset }) => {
                    return Err(CopyError::NotWellFormed { what, offset })
                }
            }
        }
    }
    w.flush().map_err(CopyError::Write)
}

/// The reply's reader, counting what passes and keeping its error (which carries the
/// NETCONF error inside; the XML reader gets a copy).
struct Counted<'a> {
    inner: DataReader,
    received: &'a mut u64,
    progress: &'a mut StreamProgress,
    error: Option<io::Error>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                *self.received += n as u64;
                self.progress.update(*self.received);
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

/// The NETCONF error inside a streamed reply's read error.
fn netconf_error(e: io::Error) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::Io(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(netconf)) => *netconf,
        Some(Err(other)) => Error::Io(io::Error::new(kind, other)),
        None => Error::Io(kind.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_output_file_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xml");
        fs::write(&path, "old").unwrap();
        let mut out = OutFile::create("-o", &path).unwrap();
        out.file.write_all(b"new, but cut off").unwrap();
        drop(out);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left"
        );

        let out = OutFile::create("-o", &path).unwrap();
        out.write_all(b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn output_file_errors_name_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let e = OutFile::create("-o", dir.path()).unwrap_err();
        assert!(
            matches!(&e, CliError::Fatal(m) if m.contains("is a directory")),
            "{e:?}"
        );
        let e = OutFile::create("-o", &dir.path().join("no/such/dir/x.xml")).unwrap_err();
        assert!(
            matches!(&e, CliError::Fatal(m) if m.starts_with("cannot write -o ")),
            "{e:?}"
        );
    }

    #[test]
    fn read_errors_give_back_the_netconf_error() {
        let e = io::Error::new(
            io::ErrorKind::TimedOut,
            Error::Timeout(netconf_blocking::TimeoutKind::Rpc),
        );
        assert!(matches!(netconf_error(e), Error::Timeout(_)));
        let e = io::Error::other("plain");
        assert!(matches!(netconf_error(e), Error::Io(_)));
    }
}
