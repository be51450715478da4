//! The subtree filter examples of RFC 6241 section 6.4 and the edit-config examples of
//! section 7.2, on data shaped like the RFC's (written here, not copied).

mod common;

use common::Harness;
use netconf_server::{tree, Datastore, MemoryBackend, Server};

const T: &str = "http://example.com/schema/1.2/config";

fn user(name: &str, kind: &str, full: &str, dept: u32, id: u32) -> String {
    format!(
        "<user><name>{name}</name><type>{kind}</type><full-name>{full}</full-name>\
         <company-info><dept>{dept}</dept><id>{id}</id></company-info></user>"
    )
}

fn users() -> String {
    format!(
        "<users>{}{}{}</users>",
        user("root", "superuser", "Charlie Root", 1, 1),
        user("fred", "admin", "Fred Flintstone", 2, 2),
        user("barney", "admin", "Barney Rubble", 2, 3),
    )
}

fn harness() -> Harness {
    let data = format!(
        "<top xmlns=\"{T}\">{}<interfaces>\
         <interface ifName=\"eth0\"><ifInOctets>45621</ifInOctets><ifOutOctets>774344</ifOutOctets></interface>\
         <interface ifName=\"eth1\"><ifInOctets>1</ifInOctets><ifOutOctets>2</ifOutOctets></interface>\
         </interfaces></top>",
        users()
    );
    let seed = tree::parse(&data, &[], 16).unwrap();
    Harness::with_server(Server::new(MemoryBackend::new(seed)))
}

fn filtered(h: &mut Harness, filter: &str) -> String {
    h.data(
        1,
        &format!("<get-config><source><running/></source><filter type=\"subtree\">{filter}</filter></get-config>"),
    )
}

fn top(inner: &str) -> String {
    format!("<top xmlns=\"{T}\">{inner}</top>")
}

#[test]
fn no_filter_returns_everything_and_an_empty_filter_nothing() {
    let mut h = harness();
    let all = h.data(1, "<get-config><source><running/></source></get-config>");
    assert!(all.starts_with(&format!("<top xmlns=\"{T}\"><users>")));
    assert_eq!(filtered(&mut h, ""), "");
}

#[test]
fn the_entire_users_subtree() {
    let mut h = harness();
    assert_eq!(filtered(&mut h, &top("<users/>")), top(&users()));
}

#[test]
fn all_name_elements_within_users() {
    let mut h = harness();
    assert_eq!(
        filtered(&mut h, &top("<users><user><name/></user></users>")),
        top("<users><user><name>root</name></user><user><name>fred</name></user><user><name>barney</name></user></users>")
    );
}

#[test]
fn one_specific_user_entry() {
    let mut h = harness();
    assert_eq!(
        filtered(
            &mut h,
            &top("<users><user><name>fred</name></user></users>")
        ),
        top(&format!(
            "<users>{}</users>",
            user("fred", "admin", "Fred Flintstone", 2, 2)
        ))
    );
}

#[test]
fn specific_elements_from_a_specific_user_entry() {
    let mut h = harness();
    assert_eq!(
        filtered(
            &mut h,
            &top("<users><user><name>fred</name><type/><full-name/></user></users>")
        ),
        top("<users><user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name></user></users>")
    );
}

#[test]
fn multiple_subtrees() {
    let mut h = harness();
    let filter = top("<users>\
         <user><name>root</name><company-info/></user>\
         <user><name>fred</name><company-info><id/></company-info></user>\
         <user><name>barney</name><type>superuser</type><company-info><dept/></company-info></user>\
         </users>");
    // barney is no superuser: its content match fails and the entry is left out.
    assert_eq!(
        filtered(&mut h, &filter),
        top("<users>\
             <user><name>root</name><company-info><dept>1</dept><id>1</id></company-info></user>\
             <user><name>fred</name><company-info><id>2</id></company-info></user>\
             </users>")
    );
}

#[test]
fn elements_with_attribute_naming() {
    let mut h = harness();
    assert_eq!(
        filtered(
            &mut h,
            &top("<interfaces><interface ifName=\"eth0\"/></interfaces>")
        ),
        top("<interfaces><interface ifName=\"eth0\"><ifInOctets>45621</ifInOctets><ifOutOctets>774344</ifOutOctets></interface></interfaces>")
    );
}

// Section 7.2's examples: interfaces by name, OSPF areas with interface lists.

fn edit_running(h: &mut Harness, default: Option<&str>, config: &str) {
    let default = default
        .map(|d| format!("<default-operation>{d}</default-operation>"))
        .unwrap_or_default();
    h.ok(
        1,
        &format!("<edit-config><target><running/></target>{default}<config>{config}</config></edit-config>"),
    );
}

fn example_7_2() -> Harness {
    let seed = tree::parse(
        &top("<interface><name>Ethernet0/0</name><mtu>9000</mtu><description>uplink</description></interface>\
              <interface><name>Ethernet0/1</name><mtu>1500</mtu></interface>\
              <protocols><ospf><area><name>0.0.0.0</name><interfaces>\
              <interface><name>192.0.2.4</name></interface><interface><name>192.0.2.1</name></interface>\
              </interfaces></area></ospf></protocols>"),
        &[],
        16,
    )
    .unwrap();
    Harness::with_server(Server::new(MemoryBackend::new(seed)))
}

#[test]
fn set_the_mtu_of_one_interface_by_merge() {
    let mut h = example_7_2();
    edit_running(
        &mut h,
        None,
        &top("<interface><name>Ethernet0/0</name><mtu>1500</mtu></interface>"),
    );
    let running = h.config(Datastore::Running);
    assert!(running.contains("<interface><name>Ethernet0/0</name><mtu>1500</mtu><description>uplink</description></interface>"), "{running}");
}

#[test]
fn replace_an_interface_whole() {
    let mut h = example_7_2();
    edit_running(
        &mut h,
        None,
        &format!(
            "<top xmlns=\"{T}\" xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
             <interface xc:operation=\"replace\"><name>Ethernet0/0</name><mtu>1500</mtu>\
             <address><name>192.0.2.4</name><prefix-length>24</prefix-length></address></interface></top>"
        ),
    );
    let running = h.config(Datastore::Running);
    assert!(running.contains("<interface><name>Ethernet0/0</name><mtu>1500</mtu><address><name>192.0.2.4</name><prefix-length>24</prefix-length></address></interface>"), "{running}");
    assert!(!running.contains("uplink"));
}

#[test]
fn delete_an_interface_with_default_operation_none() {
    let mut h = example_7_2();
    edit_running(
        &mut h,
        Some("none"),
        &format!(
            "<top xmlns=\"{T}\" xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
             <interface xc:operation=\"delete\"><name>Ethernet0/0</name></interface></top>"
        ),
    );
    let running = h.config(Datastore::Running);
    assert!(!running.contains("Ethernet0/0") && running.contains("Ethernet0/1"));
}

#[test]
fn delete_one_interface_from_an_ospf_area() {
    let mut h = example_7_2();
    edit_running(
        &mut h,
        Some("none"),
        &format!(
            "<top xmlns=\"{T}\" xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><protocols><ospf><area>\
             <name>0.0.0.0</name><interfaces><interface xc:operation=\"delete\"><name>192.0.2.4</name></interface>\
             </interfaces></area></ospf></protocols></top>"
        ),
    );
    let running = h.config(Datastore::Running);
    assert!(
        running.contains("<interfaces><interface><name>192.0.2.1</name></interface></interfaces>"),
        "{running}"
    );
}

#[test]
fn replace_the_interfaces_of_an_ospf_area() {
    let mut h = example_7_2();
    edit_running(
        &mut h,
        Some("none"),
        &format!(
            "<top xmlns=\"{T}\" xmlns:xc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><protocols><ospf><area>\
             <name>0.0.0.0</name><interfaces xc:operation=\"replace\"><interface><name>192.0.2.1</name></interface>\
             </interfaces></area></ospf></protocols></top>"
        ),
    );
    let running = h.config(Datastore::Running);
    assert!(running.contains("<area><name>0.0.0.0</name><interfaces><interface><name>192.0.2.1</name></interface></interfaces></area>"), "{running}");
}
