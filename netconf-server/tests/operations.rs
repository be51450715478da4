//! Every operation the server implements, one test each, through `handle_operation`.

mod common;

use common::{edit, get_config, Harness, NC, NS};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::Reply;
use netconf_server::{Backend, Datastore, MemoryBackend, Schema, Server};

const SEED: &str = "<system><hostname>r1</hostname></system>";

fn seeded() -> Harness {
    Harness::new(SEED)
}

#[test]
fn get_config_of_each_datastore() {
    let mut h = seeded();
    for ds in ["running", "candidate", "startup"] {
        assert_eq!(
            h.data(1, &get_config(ds)),
            format!("<system xmlns=\"{NS}\"><hostname>r1</hostname></system>")
        );
    }
    assert_eq!(h.error_tag(1, "<get-config/>"), ErrorTag::MissingElement);
    assert_eq!(
        h.error_tag(
            1,
            "<get-config><source><url>file:///x</url></source></get-config>"
        ),
        ErrorTag::OperationNotSupported
    );
    assert_eq!(
        h.error_tag(1, "<get-config><source><nowhere/></source></get-config>"),
        ErrorTag::BadElement
    );
}

#[test]
fn get_adds_state_and_filters() {
    let backend = MemoryBackend::new(common::doc(SEED)).with_schema(Schema::yang(
        "example",
        "2025-01-01",
        NS,
        "ex",
        "module example { namespace \"urn:example:config\"; prefix ex; }",
    ));
    let mut h = Harness::with_server(Server::new(backend));
    let all = h.data(1, "<get/>");
    assert!(all.contains("<hostname>r1</hostname>"));
    assert!(all.contains("<identifier>example</identifier>"), "{all}");
    let state = h.data(
        1,
        "<get><filter type=\"subtree\"><netconf-state xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\"/></filter></get>",
    );
    assert!(!state.contains("hostname") && state.contains("<schemas>"));
    assert_eq!(
        h.error_tag(1, "<get><filter type=\"xpath\" select=\"/x\"/></get>"),
        ErrorTag::OperationNotSupported
    );
    assert!(h
        .server
        .capabilities()
        .contains(&format!("{NS}?module=example&revision=2025-01-01")));
}

#[test]
fn get_schema_serves_the_backend_modules() {
    let text = "module example { prefix ex; description \"a < b\"; }";
    let backend = MemoryBackend::new(common::doc(SEED)).with_schema(Schema::yang(
        "example",
        "2025-01-01",
        NS,
        "ex",
        text,
    ));
    let mut h = Harness::with_server(Server::new(backend));
    let mon = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
    let data = h.data(
        1,
        &format!("<get-schema xmlns=\"{mon}\"><identifier>example</identifier></get-schema>"),
    );
    assert_eq!(
        data,
        "module example { prefix ex; description \"a &lt; b\"; }"
    );
    let e = h.errors(
        1,
        &format!("<get-schema xmlns=\"{mon}\"><identifier>example</identifier><version>1999-01-01</version></get-schema>"),
    );
    assert_eq!(e[0].tag, ErrorTag::InvalidValue);
    assert!(e[0]
        .message
        .as_ref()
        .unwrap()
        .text
        .contains("example@2025-01-01"));
}

#[test]
fn get_data_and_edit_data_name_datastores_by_identity() {
    let mut h = seeded();
    let nmda = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
    let ds = "urn:ietf:params:xml:ns:yang:ietf-datastores";
    h.ok(
        1,
        &format!(
            "<edit-data xmlns=\"{nmda}\" xmlns:ds=\"{ds}\"><datastore>ds:candidate</datastore>\
             <config><system xmlns=\"{NS}\"><hostname>c</hostname></system></config></edit-data>"
        ),
    );
    let data = h.data(
        1,
        &format!("<get-data xmlns=\"{nmda}\" xmlns:ds=\"{ds}\"><datastore>ds:candidate</datastore></get-data>"),
    );
    assert!(data.contains("<hostname>c</hostname>"));
    let op = h.data(
        1,
        &format!("<get-data xmlns=\"{nmda}\" xmlns:ds=\"{ds}\"><datastore>ds:operational</datastore><subtree-filter><system/></subtree-filter></get-data>"),
    );
    assert!(op.contains("<hostname>r1</hostname>"), "{op}");
    assert_eq!(
        h.error_tag(
            1,
            &format!("<get-data xmlns=\"{nmda}\"><datastore>ds:nowhere</datastore></get-data>")
        ),
        ErrorTag::InvalidValue
    );
}

#[test]
fn edit_config_on_running_and_candidate() {
    let mut h = seeded();
    let change = format!("<system xmlns=\"{NS}\"><hostname>r2</hostname></system>");
    h.ok(1, &edit("candidate", &change));
    assert!(h.config(Datastore::Candidate).contains("r2"));
    assert!(h.config(Datastore::Running).contains("r1"));
    assert!(
        h.notifications().is_empty(),
        "candidate changes notify nobody"
    );
    h.ok(1, &edit("running", &change));
    let notes = h.notifications();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains(
        "<username>user1</username><session-id>1</session-id><source-host>192.0.2.1</source-host>"
    ));
    assert_eq!(
        h.error_tag(1, &edit("startup", &change)),
        ErrorTag::OperationNotSupported
    );
    assert_eq!(
        h.error_tag(1, "<edit-config><target><running/></target></edit-config>"),
        ErrorTag::MissingElement
    );
    assert_eq!(
        h.error_tag(
            1,
            "<edit-config><target><running/></target><default-operation>bogus</default-operation><config/></edit-config>"
        ),
        ErrorTag::InvalidValue
    );
}

#[test]
fn test_option_and_error_option() {
    let mut h = seeded();
    let good = format!("<system xmlns=\"{NS}\"><hostname>t</hostname></system>");
    h.ok(
        1,
        &format!("<edit-config><target><running/></target><test-option>test-only</test-option><config>{good}</config></edit-config>"),
    );
    assert!(h.config(Datastore::Running).contains("r1"));
    let mixed = format!(
        "<system xmlns=\"{NS}\"><hostname>r2</hostname></system><system xmlns=\"{NS}\" nc:operation=\"create\"/><ntp xmlns=\"{NS}\"/>"
    );
    let with = |option: &str| {
        format!("<edit-config><target><running/></target><error-option>{option}</error-option><config>{mixed}</config></edit-config>")
    };
    // rollback-on-error: nothing of the edit stays.
    let e = h.errors(1, &with("rollback-on-error"));
    assert_eq!(
        (e[0].tag.clone(), e[0].error_type.clone()),
        (ErrorTag::DataExists, ErrorType::Application)
    );
    assert_eq!(e[0].path.as_deref(), Some("/system"));
    assert_eq!(
        h.config(Datastore::Running),
        format!("<system xmlns=\"{NS}\"><hostname>r1</hostname></system>")
    );
    // stop-on-error: what came before the error stays, nothing after it.
    h.errors(1, &with("stop-on-error"));
    let running = h.config(Datastore::Running);
    assert!(
        running.contains("r2") && !running.contains("ntp"),
        "{running}"
    );
    // continue-on-error: everything but the failing part.
    h.errors(1, &with("continue-on-error"));
    assert!(h.config(Datastore::Running).contains("<ntp "));
}

#[test]
fn copy_config_and_delete_config() {
    let mut h = seeded();
    h.ok(
        1,
        "<delete-config><target><startup/></target></delete-config>",
    );
    assert_eq!(h.config(Datastore::Startup), "");
    assert_eq!(
        h.notifications().len(),
        1,
        "startup changes are notified too"
    );
    h.ok(
        1,
        "<copy-config><target><startup/></target><source><running/></source></copy-config>",
    );
    assert!(h.config(Datastore::Startup).contains("r1"));
    h.ok(
        1,
        &format!("<copy-config><target><candidate/></target><source><config><only xmlns=\"{NS}\"/></config></source></copy-config>"),
    );
    assert_eq!(
        h.config(Datastore::Candidate),
        format!("<only xmlns=\"{NS}\"/>")
    );
    assert_eq!(
        h.error_tag(
            1,
            "<copy-config><target><running/></target><source><running/></source></copy-config>"
        ),
        ErrorTag::InvalidValue
    );
    assert_eq!(
        h.error_tag(
            1,
            "<delete-config><target><running/></target></delete-config>"
        ),
        ErrorTag::OperationNotSupported
    );
    assert_eq!(
        h.error_tag(1, "<copy-config><target><running/></target><source><url>ftp://x</url></source></copy-config>"),
        ErrorTag::OperationNotSupported
    );
}

#[test]
fn validate_uses_the_backend_check() {
    struct Picky(MemoryBackend);
    impl netconf_server::Backend for Picky {
        fn load(
            &self,
            ds: Datastore,
        ) -> Result<std::borrow::Cow<'_, netconf_server::Element>, Vec<netconf_proto::RpcError>>
        {
            self.0.load(ds)
        }
        fn store(
            &mut self,
            ds: Datastore,
            content: netconf_server::Element,
        ) -> Result<(), Vec<netconf_proto::RpcError>> {
            self.0.store(ds, content)
        }
        fn validate(
            &self,
            content: &netconf_server::Element,
        ) -> Result<(), Vec<netconf_proto::RpcError>> {
            if content.to_xml().contains("forbidden") {
                Err(vec![netconf_proto::RpcError::new(
                    ErrorType::Application,
                    ErrorTag::InvalidValue,
                )])
            } else {
                Ok(())
            }
        }
    }
    let mut h = Harness::new(SEED);
    let picky = Server::new(Picky(MemoryBackend::new(common::doc(SEED))));
    let scope = [(String::new(), NC.to_owned())];
    let who = netconf_server::SessionInfo::new(1);
    let mut picky = picky;
    let bad = format!("<system xmlns=\"{NS}\"><hostname>forbidden</hostname></system>");
    for op in [
        format!("<validate><source><config>{bad}</config></source></validate>"),
        edit("running", &bad),
        format!("<copy-config><target><startup/></target><source><config>{bad}</config></source></copy-config>"),
    ] {
        let reply = picky.handle_operation(&who, &op, &scope, h.now);
        assert!(matches!(reply, Reply::Errors(_)), "{op}: {reply:?}");
    }
    assert!(picky
        .backend()
        .load(Datastore::Running)
        .unwrap()
        .to_xml()
        .contains("r1"));
    h.ok(1, "<validate><source><candidate/></source></validate>");
}

#[test]
fn discard_changes_takes_candidate_back_to_running() {
    let mut h = seeded();
    h.ok(
        1,
        &edit(
            "candidate",
            &format!("<system xmlns=\"{NS}\"><hostname>x</hostname></system>"),
        ),
    );
    h.ok(1, "<discard-changes/>");
    assert_eq!(h.config(Datastore::Candidate), h.config(Datastore::Running));
}

#[test]
fn with_defaults_modes_follow_the_template() {
    let template = common::doc("<system><mtu>1500</mtu><hostname>none</hostname></system>");
    let backend = MemoryBackend::new(common::doc(
        "<system><hostname>r1</hostname><mtu>1500</mtu></system>",
    ))
    .with_defaults(template);
    let mut h = Harness::with_server(Server::new(backend));
    let wd = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";
    let get = |mode: &str| {
        format!("<get-config><source><running/></source><with-defaults xmlns=\"{wd}\">{mode}</with-defaults></get-config>")
    };
    assert_eq!(
        h.data(1, &get_config("running")),
        format!("<system xmlns=\"{NS}\"><hostname>r1</hostname><mtu>1500</mtu></system>")
    );
    assert_eq!(
        h.data(1, &get("trim")),
        format!("<system xmlns=\"{NS}\"><hostname>r1</hostname></system>")
    );
    assert!(h
        .data(1, &get("report-all-tagged"))
        .contains("<mtu wd:default=\"true\">1500</mtu>"));
    assert_eq!(h.error_tag(1, &get("everything")), ErrorTag::InvalidValue);
}

#[test]
fn create_subscription_and_unknown_operations() {
    let mut h = seeded();
    let ncn = "urn:ietf:params:xml:ns:netconf:notification:1.0";
    h.ok(1, &format!("<create-subscription xmlns=\"{ncn}\"/>"));
    assert_eq!(
        h.error_tag(
            1,
            &format!(
                "<create-subscription xmlns=\"{ncn}\"><stream>OTHER</stream></create-subscription>"
            )
        ),
        ErrorTag::InvalidValue
    );
    assert_eq!(
        h.error_tag(1, "<frobnicate xmlns=\"urn:x\"/>"),
        ErrorTag::OperationNotSupported
    );
    assert_eq!(
        h.error_tag(1, "<get-config><source>"),
        ErrorTag::MalformedMessage
    );
}
