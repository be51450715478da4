//! Where configuration lives: the [`Backend`] trait and the in-memory [`MemoryBackend`].
//!
//! The [`Server`](crate::Server) keeps the protocol state (locks, the pending confirmed
//! commit, whether candidate was changed) and calls the backend only to read and replace
//! whole datastores, so a backend that pushes running to a device, or checks a
//! configuration against its YANG modules, implements a few methods and gets every
//! operation.

use std::borrow::Cow;

use netconf_proto::message::RpcError;

use crate::datastore::Datastore;
use crate::session::SessionInfo;
use crate::tree::Element;

/// A YANG module the server can hand out with `<get-schema>` (RFC 6022) and lists in
/// `/netconf-state/schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Schema {
    pub identifier: String,
    /// The revision date.
    pub version: String,
    pub namespace: String,
    /// The module's prefix, also used in notification paths.
    pub prefix: String,
    /// The YANG source.
    pub text: String,
}

impl Schema {
    pub fn yang(
        identifier: impl Into<String>,
        version: impl Into<String>,
        namespace: impl Into<String>,
        prefix: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Schema {
            identifier: identifier.into(),
            version: version.into(),
            namespace: namespace.into(),
            prefix: prefix.into(),
            text: text.into(),
        }
    }

    /// The capability URI that announces the module (RFC 6020 section 5.6.4).
    pub fn capability(&self) -> String {
        format!(
            "{}?module={}&revision={}",
            self.namespace, self.identifier, self.version
        )
    }
}

/// The storage behind a [`Server`](crate::Server).
///
/// Datastores are whole trees (roots whose children are the top-level elements). Every
/// method but [`load`](Backend::load) and [`store`](Backend::store) has a default.
pub trait Backend {
    /// The content of `datastore`.
    fn load(&self, datastore: Datastore) -> Result<Cow<'_, Element>, Vec<RpcError>>;

    /// Replaces the content of `datastore`. For running this is where a device applies the
    /// configuration; an error means nothing was applied, and is sent to the client.
    fn store(&mut self, datastore: Datastore, content: Element) -> Result<(), Vec<RpcError>>;

    /// Checks a configuration before it takes effect: `<validate>`, edit-config's
    /// test-then-set and test-only, commit and copy-config. Accepts everything by default.
    fn validate(&self, content: &Element) -> Result<(), Vec<RpcError>> {
        let _ = content;
        Ok(())
    }

    /// State data `<get>` and the operational datastore add to running (a root). The
    /// server adds `/netconf-state/schemas` itself.
    fn state(&self) -> Element {
        Element::root()
    }

    /// The YANG modules to announce and serve.
    fn schemas(&self) -> &[Schema] {
        &[]
    }

    /// The defaults template for with-defaults (see [`crate::defaults`]); `None` when the
    /// data has no defaults, which makes every mode the same.
    fn defaults(&self) -> Option<&Element> {
        None
    }

    /// Answers an operation the server does not know (a YANG `rpc` of the backend's
    /// modules); `None` makes it `operation-not-supported`.
    fn rpc(&mut self, session: &SessionInfo, operation: &Element) -> Option<netconf_proto::Reply> {
        let _ = (session, operation);
        None
    }
}

/// Running, candidate and startup held in memory: the default backend.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    running: Element,
    candidate: Element,
    startup: Element,
    schemas: Vec<Schema>,
    defaults: Option<Element>,
}

impl MemoryBackend {
    /// Three datastores that all start as `seed` (a root).
    pub fn new(seed: Element) -> Self {
        MemoryBackend {
            running: seed.clone(),
            candidate: seed.clone(),
            startup: seed,
            schemas: Vec::new(),
            defaults: None,
        }
    }

    /// Adds a YANG module to announce and serve.
    pub fn with_schema(mut self, schema: Schema) -> Self {
        self.schemas.push(schema);
        self
    }

    /// Sets the defaults template (see [`crate::defaults`]).
    pub fn with_defaults(mut self, template: Element) -> Self {
        self.defaults = Some(template);
        self
    }

    fn slot(&mut self, datastore: Datastore) -> &mut Element {
        match datastore {
            Datastore::Running => &mut self.running,
            Datastore::Candidate => &mut self.candidate,
            Datastore::Startup => &mut self.startup,
        }
    }
}

impl Backend for MemoryBackend {
    fn load(&self, datastore: Datastore) -> Result<Cow<'_, Element>, Vec<RpcError>> {
        Ok(Cow::Borrowed(match datastore {
            Datastore::Running => &self.running,
            Datastore::Candidate => &self.candidate,
            Datastore::Startup => &self.startup,
        }))
    }

    fn store(&mut self, datastore: Datastore, content: Element) -> Result<(), Vec<RpcError>> {
        *self.slot(datastore) = content;
        Ok(())
    }

    fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    fn defaults(&self) -> Option<&Element> {
        self.defaults.as_ref()
    }
}
