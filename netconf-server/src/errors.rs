//! The `<rpc-error>`s the handlers answer with (RFC 6241 appendix A).

use netconf_proto::message::{ErrorTag, ErrorType, RpcError};

/// A protocol-layer error: the request was understood but cannot be carried out.
pub(crate) fn protocol(tag: ErrorTag, message: impl Into<String>) -> RpcError {
    RpcError::new(ErrorType::Protocol, tag).with_message(message)
}

/// An error naming the session that holds what was asked for, in `<error-info>` as RFC
/// 6241 section 7.5 shows for `lock-denied` (0 when no NETCONF session holds it).
pub(crate) fn held_by(e: RpcError, holder: u32) -> RpcError {
    let info = format!("<session-id>{holder}</session-id>");
    e.clone().with_info_xml(&info).unwrap_or(e)
}

/// An element a request needs is missing (`<error-info><bad-element>`).
pub(crate) fn missing(element: &str, parent: &str) -> RpcError {
    let e = protocol(
        ErrorTag::MissingElement,
        format!("<{parent}> needs <{element}>"),
    );
    let info = format!("<bad-element>{element}</bad-element>");
    e.clone().with_info_xml(&info).unwrap_or(e)
}

pub(crate) fn invalid(message: impl Into<String>) -> RpcError {
    protocol(ErrorTag::InvalidValue, message)
}

pub(crate) fn not_supported(message: impl Into<String>) -> RpcError {
    protocol(ErrorTag::OperationNotSupported, message)
}
