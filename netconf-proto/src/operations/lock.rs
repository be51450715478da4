//! RFC 6241 `<lock>` and `<unlock>` (sections 7.5 and 7.6).

use crate::operations::XmlWriter;

use super::{Datastore, Operation};

/// `<lock>`: keeps other sessions (and non-NETCONF managers) from changing a datastore
/// until this session unlocks it or ends (RFC 6241 section 7.5). A URL cannot be locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    target: Datastore,
}

impl Lock {
    /// Locks `target`.
    pub fn new(target: Datastore) -> Self {
        Lock { target }
    }
}

impl Operation for Lock {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<lock>");
        self.target.write_in("target", out);
        out.push_str("</lock>");
    }
}

/// `<unlock>`: releases a lock this session holds (RFC 6241 section 7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    target: Datastore,
}

impl Unlock {
    /// Unlocks `target`.
    pub fn new(target: Datastore) -> Self {
        Unlock { target }
    }
}

impl Operation for Unlock {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<unlock>");
        self.target.write_in("target", out);
        out.push_str("</unlock>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 6241 sections 7.5 and 7.6 examples.
    #[test]
    fn rfc6241_7_5_and_7_6() {
        assert_renders(
            &Lock::new(Datastore::Running),
            r#"<lock>
                 <target>
                   <running/>
                 </target>
               </lock>"#,
        );
        assert_renders(
            &Unlock::new(Datastore::Running),
            r#"<unlock>
                 <target>
                   <running/>
                 </target>
               </unlock>"#,
        );
    }
}
