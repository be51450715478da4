//! Operations that change a datastore: `<edit-config>` (RFC 6241 section 7.2),
//! `<edit-data>` (RFC 8526), `<copy-config>` (7.3), `<delete-config>` (7.4) and
//! `<validate>` (8.6).

use netconf_proto::message::{ErrorType, RpcError};
use netconf_proto::operations::{DefaultOperation, ErrorOption, TestOption};
use netconf_proto::Reply;

use super::params::{self, Source};
use super::{Answer, Server};
use crate::backend::Backend;
use crate::datastore::Datastore;
use crate::errors::{invalid, missing, not_supported};
use crate::session::SessionInfo;
use crate::tree::Element;

impl<B: Backend> Server<B> {
    pub(super) fn edit(
        &mut self,
        session: &SessionInfo,
        op: &Element,
        target: Datastore,
    ) -> Answer {
        let default = params::default_operation(op)?;
        let test = params::test_option(op)?;
        let on_error = params::error_option(op)?;
        let config = edit_content(op)?;
        self.apply_edit(session, target, &config, default, test, on_error)
    }

    pub(super) fn edit_data(&mut self, session: &SessionInfo, op: &Element) -> Answer {
        let name = op.child_text("datastore").unwrap_or_default();
        let target = params::identity(name)
            .parse::<Datastore>()
            .map_err(|_| vec![invalid(format!("cannot edit datastore {name:?}"))])?;
        let default = params::default_operation(op)?;
        let config = edit_content(op)?;
        self.apply_edit(
            session,
            target,
            &config,
            default,
            TestOption::TestThenSet,
            ErrorOption::StopOnError,
        )
    }

    fn apply_edit(
        &mut self,
        session: &SessionInfo,
        target: Datastore,
        config: &Element,
        default: DefaultOperation,
        test: TestOption,
        on_error: ErrorOption,
    ) -> Answer {
        if target == Datastore::Startup {
            return Err(vec![not_supported(
                "startup cannot be edited; copy-config to it",
            )]);
        }
        let me = session.session_id;
        self.locks.check(target, me)?;
        let mut work = self.backend.load(target)?.into_owned();
        let outcome = crate::edit::apply(&mut work, config, default, on_error);
        let errors: Vec<RpcError> = outcome
            .errors
            .into_iter()
            .map(|e| {
                RpcError::new(ErrorType::Application, e.tag)
                    .with_message(e.message)
                    .with_path(e.path)
            })
            .collect();
        let failed = !errors.is_empty();
        if failed && on_error == ErrorOption::RollbackOnError {
            return Err(errors);
        }
        if test != TestOption::Set {
            self.backend.validate(&work)?;
        }
        if test != TestOption::TestOnly {
            let by = self.changed_by(me);
            self.store(&by, target, work)?;
        }
        if failed {
            Err(errors)
        } else {
            Ok(Reply::Ok)
        }
    }

    pub(super) fn copy_config(&mut self, session: &SessionInfo, op: &Element) -> Answer {
        let target = params::datastore_in(op, "target")?;
        let source = params::source_in(op, "source")?;
        let me = session.session_id;
        self.locks.check(target, me)?;
        let content = match source {
            Source::Datastore(ds) if ds == target => {
                return Err(vec![invalid(format!("source and target are both {ds}"))])
            }
            Source::Datastore(ds) => self.backend.load(ds)?.into_owned(),
            Source::Config(c) => c,
        };
        self.backend.validate(&content)?;
        let by = self.changed_by(me);
        self.store(&by, target, content)
    }

    pub(super) fn delete_config(&mut self, session: &SessionInfo, op: &Element) -> Answer {
        let target = params::datastore_in(op, "target")?;
        if target == Datastore::Running {
            return Err(vec![not_supported(
                "the running datastore cannot be deleted",
            )]);
        }
        let me = session.session_id;
        self.locks.check(target, me)?;
        let by = self.changed_by(me);
        self.store(&by, target, Element::root())
    }

    pub(super) fn validate(&mut self, op: &Element) -> Answer {
        let content = match params::source_in(op, "source")? {
            Source::Datastore(ds) => self.backend.load(ds)?.into_owned(),
            Source::Config(c) => c,
        };
        self.backend.validate(&content)?;
        Ok(Reply::Ok)
    }
}

/// The `<config>` of an edit, as a root (`<url>` is refused: no :url capability).
fn edit_content(op: &Element) -> Result<Element, Vec<RpcError>> {
    match op.child("config") {
        Some(c) => Ok(c.content_as_root()),
        None if op.child("url").is_some() => Err(vec![params::no_url()]),
        None => Err(vec![missing("config", &op.name)]),
    }
}
