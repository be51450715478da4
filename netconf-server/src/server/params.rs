//! Reading an operation's parameters: `<target>`, `<source>`, and the wire values of
//! netconf-proto's enums (which have no `FromStr` of their own yet).

use netconf_proto::message::{ErrorTag, RpcError};
use netconf_proto::operations::{DefaultOperation, ErrorOption, TestOption};

use crate::datastore::Datastore;
use crate::errors::{invalid, missing, not_supported, protocol};
use crate::tree::Element;

/// A `<source>`: a datastore, or a configuration given inline (as a root).
pub(crate) enum Source {
    Datastore(Datastore),
    Config(Element),
}

/// The datastore named in `<wrapper>` of `op` (a URL or inline config is refused).
pub(crate) fn datastore_in(op: &Element, wrapper: &str) -> Result<Datastore, Vec<RpcError>> {
    match source_in(op, wrapper)? {
        Source::Datastore(ds) => Ok(ds),
        Source::Config(_) => Err(vec![invalid(format!(
            "<{wrapper}> must name a datastore here"
        ))]),
    }
}

/// The datastore or inline `<config>` in `<wrapper>` of `op`.
pub(crate) fn source_in(op: &Element, wrapper: &str) -> Result<Source, Vec<RpcError>> {
    let inner = op
        .child(wrapper)
        .ok_or_else(|| vec![missing(wrapper, &op.name)])?;
    let first = inner
        .children
        .first()
        .ok_or_else(|| vec![missing("datastore", wrapper)])?;
    if let Ok(ds) = first.name.parse::<Datastore>() {
        return Ok(Source::Datastore(ds));
    }
    match first.name.as_str() {
        "config" => Ok(Source::Config(first.content_as_root())),
        "url" => Err(vec![no_url()]),
        other => Err(vec![protocol(
            ErrorTag::BadElement,
            format!("unknown datastore <{other}>"),
        )]),
    }
}

pub(crate) fn no_url() -> RpcError {
    not_supported("this server has no :url capability")
}

/// An RFC 8342 datastore identity (`ds:running`) as a datastore of this server.
pub(crate) fn identity(text: &str) -> &str {
    text.rsplit(':').next().unwrap_or_default()
}

/// Reads an optional parameter whose values are the wire names of `known`.
fn choice<T: Copy>(
    op: &Element,
    name: &str,
    known: &[T],
    wire: impl Fn(T) -> &'static str,
) -> Result<Option<T>, Vec<RpcError>> {
    let Some(value) = op.child_text(name) else {
        return Ok(None);
    };
    known
        .iter()
        .copied()
        .find(|k| wire(*k) == value)
        .map(Some)
        .ok_or_else(|| vec![invalid(format!("unknown {name} {value:?}"))])
}

pub(crate) fn default_operation(op: &Element) -> Result<DefaultOperation, Vec<RpcError>> {
    let known = [
        DefaultOperation::Merge,
        DefaultOperation::Replace,
        DefaultOperation::None,
    ];
    Ok(
        choice(op, "default-operation", &known, DefaultOperation::as_str)?
            .unwrap_or(DefaultOperation::Merge),
    )
}

pub(crate) fn test_option(op: &Element) -> Result<TestOption, Vec<RpcError>> {
    let known = [
        TestOption::TestThenSet,
        TestOption::Set,
        TestOption::TestOnly,
    ];
    Ok(choice(op, "test-option", &known, TestOption::as_str)?.unwrap_or(TestOption::TestThenSet))
}

pub(crate) fn error_option(op: &Element) -> Result<ErrorOption, Vec<RpcError>> {
    let known = [
        ErrorOption::StopOnError,
        ErrorOption::ContinueOnError,
        ErrorOption::RollbackOnError,
    ];
    Ok(
        choice(op, "error-option", &known, ErrorOption::as_str)?
            .unwrap_or(ErrorOption::StopOnError),
    )
}
