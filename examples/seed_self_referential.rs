//! SQLAlchemy's self-referential relationship example, written with relgraph: `Employee.manager`
//! <-> `Employee.subordinates`.
//!
//! Prints `[Employee(name='Bob'), Employee(name='Charlie')]` and `Alice`, as the Python does. Lines
//! (non-blank, non-comment, imports and printing impls left out, rustfmt defaults; the Python with
//! its models and its query): Rust 22, Python 17, 1.29x.
//!
//! Run with `cargo run --example seed_self_referential`.

use std::fmt;

use relgraph::{Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Employee {
    name: String,
}

impl fmt::Debug for Employee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Employee(name='{}')", self.name)
    }
}

fn main() -> relgraph::Result<()> {
    let mut schema = Schema::new();
    let employees = schema.table::<Employee>("employees");
    let reports = schema.relate(employees.many("subordinates"), employees.one("manager"));
    let mut store = Store::new(schema);

    // create employees: each subordinate inserted under its manager at once
    let manager = store.insert(Employee {
        name: "Alice".into(),
    });
    for name in ["Bob", "Charlie"] {
        store.insert_child(reports, manager, Employee { name: name.into() })?;
    }

    // fetch manager and subordinates
    let manager = store.find::<Employee>(|e| e.name == "Alice").unwrap();
    let subordinates: Vec<&Employee> = store.children(reports, manager).rows().collect();
    println!("{subordinates:?}");
    let employee = store.find::<Employee>(|e| e.name == "Bob").unwrap();
    println!("{}", store.parent_row(reports, employee).unwrap().name);
    Ok(())
}
