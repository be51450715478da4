//! Answers a server gives the same way whatever its runtime: RFC 6241 kill-session
//! (section 7.9) and recognising an RFC 5277 subscription.

use crate::message::{ErrorTag, ErrorType, Reply, Request, RpcError};
use crate::xml::NS_NOTIFICATION;

/// Answers `<kill-session>` received by session `own_session_id`. `kill` ends the named
/// session and says whether it existed.
pub fn answer_kill_session(
    request: &Request,
    own_session_id: u32,
    kill: impl FnOnce(u32) -> bool,
) -> Reply {
    let invalid = |msg: String| {
        Reply::error(RpcError::new(ErrorType::Protocol, ErrorTag::InvalidValue).with_message(msg))
    };
    let Some(target) = request
        .body
        .child_text("session-id")
        .and_then(|t| t.trim().parse::<u32>().ok())
    else {
        return Reply::error(
            RpcError::new(ErrorType::Protocol, ErrorTag::MissingElement)
                .with_message("kill-session needs a <session-id>"),
        );
    };
    if target == own_session_id {
        // RFC 6241 section 7.9: a session cannot kill itself.
        return invalid("a session cannot kill itself; use close-session".into());
    }
    if kill(target) {
        Reply::Ok
    } else {
        invalid(format!("no session {target}"))
    }
}

/// True when `reply` accepted an RFC 5277 `<create-subscription>`: from then on the session
/// receives notifications.
pub fn starts_subscription(request: &Request, reply: &Reply) -> bool {
    request.operation.name == "create-subscription"
        && request.operation.namespace == NS_NOTIFICATION
        && *reply == Reply::Ok
}
