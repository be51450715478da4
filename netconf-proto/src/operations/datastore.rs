//! The configuration datastores that RFC 6241 operations name in `<target>` and `<source>`.

use crate::operations::XmlWriter;

use crate::xml::write_leaf;

/// A conventional configuration datastore (RFC 6241 section 5.1), or a URL (section 8.8).
///
/// `Candidate` needs the server's `:candidate` capability, `Startup` its `:startup` and
/// `Url` its `:url`; not every operation accepts every datastore (`<lock>` takes no URL,
/// `<delete-config>` refuses `running`), which the server reports as an `rpc-error`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Datastore {
    /// `<running/>`: the configuration currently active on the device.
    Running,
    /// `<candidate/>`: a scratch configuration applied by `<commit>` (RFC 6241 section 8.3).
    Candidate,
    /// `<startup/>`: the configuration loaded at boot (RFC 6241 section 8.7).
    Startup,
    /// `<url>...</url>`: a configuration stored at a URL (RFC 6241 section 8.8); escaped when written.
    Url(String),
}

impl Datastore {
    /// Writes the datastore's own element (`<running/>`, `<url>...</url>`).
    pub(crate) fn write(&self, out: &mut XmlWriter) {
        match self {
            Datastore::Running => out.push_str("<running/>"),
            Datastore::Candidate => out.push_str("<candidate/>"),
            Datastore::Startup => out.push_str("<startup/>"),
            Datastore::Url(url) => write_leaf(out, "url", url),
        }
    }

    /// Writes `<wrapper>datastore</wrapper>`, e.g. `<target><running/></target>`.
    pub(crate) fn write_in(&self, wrapper: &str, out: &mut XmlWriter) {
        out.push('<');
        out.push_str(wrapper);
        out.push('>');
        self.write(out);
        out.push_str("</");
        out.push_str(wrapper);
        out.push('>');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_datastore() {
        let mut out = XmlWriter::new();
        for ds in [Datastore::Running, Datastore::Candidate, Datastore::Startup] {
            ds.write(&mut out);
        }
        Datastore::Url("file:///a&b<c>.xml".into()).write_in("source", &mut out);
        assert_eq!(
            out,
            "<running/><candidate/><startup/><source><url>file:///a&amp;b&lt;c&gt;.xml</url></source>"
        );
    }
}
