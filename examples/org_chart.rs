//! Self-referential relations: a hierarchy (`Employee.manager` <-> `Employee.subordinates`,
//! declared acyclic) and a graph (`User.follows` <-> `User.followers`, no self-links).
//!
//! Shows parent and children, ancestors, root, depth, descendants breadth-first with
//! depth, a refused cycle, and cascade through a subtree.
//!
//! Run with `cargo run --example org_chart`.

use std::fmt;

use relgraph::{DeleteRule, LinkError, Schema, Store};
use serde::{Deserialize, Serialize};

/// An employee; managers are employees too.
#[derive(Clone, Serialize, Deserialize)]
pub struct Employee {
    name: String,
}

/// A user of a social graph.
#[derive(Clone, Serialize, Deserialize)]
pub struct Member {
    name: String,
}

impl fmt::Debug for Employee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Employee(name='{}')", self.name)
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Member(name='{}')", self.name)
    }
}

/// Runs the self-referential patterns and prints what they show.
pub fn run() -> relgraph::Result<()> {
    println!("== self-referential hierarchy: Employee.manager <-> Employee.subordinates ==");
    let mut schema = Schema::new();
    let employees = schema.table::<Employee>("employees");
    let members = schema.table::<Member>("members");
    // deleting a manager deletes the subordinates; a manager chain never loops
    let reports = schema.relate(
        employees
            .many("subordinates")
            .on_delete(DeleteRule::Cascade),
        employees.one("manager").acyclic(),
    );
    let follows = schema.relate(
        members.many("follows").forbid_self_links(),
        members.many("followers"),
    );
    let mut store = Store::new(schema);

    let name = |n: &str| Employee { name: n.into() };
    let alice = store.insert(name("Alice"));
    let bob = store.insert(name("Bob"));
    let charlie = store.insert(name("Charlie"));
    let dave = store.insert(name("Dave"));
    let erin = store.insert(name("Erin"));
    store.link(reports, alice, bob)?;
    store.link(reports, alice, charlie)?;
    store.link(reports, bob, dave)?;
    store.link(reports, dave, erin)?;

    let subs: Vec<&Employee> = store.children(reports, alice).rows().collect();
    println!("Alice's subordinates: {subs:?}");
    if let Some(m) = store.parent_row(reports, bob) {
        println!("Bob's manager: {}", m.name);
    }
    let chain: Vec<&str> = store
        .ancestors(reports, erin)
        .map(|e| store[e].name.as_str())
        .collect();
    println!(
        "Erin's chain of command: {chain:?} (depth {}, root {})",
        store.depth(reports, erin),
        store[store.root(reports, erin)].name
    );
    let below: Vec<(&str, usize)> = store
        .descendants(reports, alice)
        .map(|(e, d)| (store[e].name.as_str(), d))
        .collect();
    println!("everyone under Alice, breadth-first with depth: {below:?}");

    match store.link(reports, erin, alice) {
        Err(e @ LinkError::Cycle { .. }) => println!("making Erin Alice's manager: refused: {e}"),
        other => println!("unexpected: {other:?}"),
    }

    store.remove(bob)?;
    let left: Vec<&str> = store
        .iter::<Employee>()
        .map(|(_, e)| e.name.as_str())
        .collect();
    println!("after Bob leaves (cascade to his subtree): {left:?}");

    println!("== self-referential many-to-many: User.follows <-> User.followers ==");
    let ann = store.insert(Member { name: "Ann".into() });
    let ben = store.insert(Member { name: "Ben".into() });
    let cat = store.insert(Member { name: "Cat".into() });
    store.link(follows, ann, ben)?;
    store.link(follows, ann, cat)?;
    store.link(follows, ben, ann)?;
    let followed: Vec<&Member> = store.targets(follows, ann).rows().collect();
    let followers: Vec<&Member> = store.sources(follows, ann).rows().collect();
    println!("Ann follows {followed:?}; Ann's followers: {followers:?}");
    if let Err(e) = store.link(follows, cat, cat) {
        println!("Cat following herself: refused: {e}");
    }
    store.check_integrity()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
