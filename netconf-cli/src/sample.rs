//! The built-in sample: the configuration `demo` (and `serve` without `--data`) starts
//! with, and the small YANG module describing it, served by `get-schema`.

use netconf_server::{tree, MemoryBackend, Schema};

/// The sample module's namespace.
pub const NS: &str = "urn:example:netconf-cli-demo";
pub const MODULE: &str = "netconf-cli-demo";
pub const REVISION: &str = "2025-01-01";
/// The module's prefix, also used in notification paths.
pub const PREFIX: &str = "demo";

/// The starting configuration.
pub const DATA: &str = r#"<interfaces xmlns="urn:example:netconf-cli-demo">
  <interface>
    <name>eth0</name>
    <description>uplink</description>
    <enabled>true</enabled>
    <mtu>1500</mtu>
  </interface>
  <interface>
    <name>eth1</name>
    <description>spare</description>
    <enabled>false</enabled>
    <mtu>1500</mtu>
  </interface>
</interfaces>
<system xmlns="urn:example:netconf-cli-demo">
  <hostname>demo-router</hostname>
</system>
"#;

/// The YANG module of [`DATA`].
pub const YANG: &str = r#"module netconf-cli-demo {
  yang-version 1.1;
  namespace "urn:example:netconf-cli-demo";
  prefix demo;

  description
    "The sample configuration of `netconf demo` and `netconf serve`.";

  revision 2025-01-01 {
    description "Initial revision.";
  }

  container interfaces {
    list interface {
      key "name";
      leaf name { type string; }
      leaf description { type string; }
      leaf enabled { type boolean; default "true"; }
      leaf mtu { type uint16 { range "68..9216"; } }
    }
  }

  container system {
    leaf hostname { type string; }
  }
}
"#;

/// The defaults of [`YANG`], as a with-defaults template (see `netconf_server::defaults`).
pub const DEFAULTS: &str = r#"<interfaces xmlns="urn:example:netconf-cli-demo">
  <interface><enabled>true</enabled></interface>
</interfaces>"#;

/// In-memory datastores seeded with `seed` that serve the sample module and its defaults.
pub fn backend(seed: tree::Element) -> MemoryBackend {
    let defaults = tree::parse(DEFAULTS, &[], 8).expect("the built-in template is well-formed");
    MemoryBackend::new(seed)
        .with_schema(Schema::yang(MODULE, REVISION, NS, PREFIX, YANG))
        .with_defaults(defaults)
}
