//! Many-to-many through an association with a payload: `Student.courses` <->
//! `Course.students`, each enrollment carrying a grade.
//!
//! Both collections keep the order links were made in; linking a pair twice keeps one
//! link (`link_with` replaces its grade); replacing a student's courses unlinks and links
//! only the difference.
//!
//! Run with `cargo run --example enrollment`.

use std::fmt;

use relgraph::{Key, ManyToMany, Schema, Store};
use serde::{Deserialize, Serialize};

/// A student.
#[derive(Clone, Serialize, Deserialize)]
pub struct Student {
    name: String,
}

/// A course.
#[derive(Clone, Serialize, Deserialize)]
pub struct Course {
    name: String,
}

/// The association's payload: one per (student, course) link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    grade: Option<char>,
}

impl fmt::Debug for Student {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Student(name='{}')", self.name)
    }
}

impl fmt::Debug for Course {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Course(name='{}')", self.name)
    }
}

fn courses_of(
    store: &Store,
    rel: ManyToMany<Student, Course, Enrollment>,
    s: Key<Student>,
) -> Vec<&Course> {
    store.targets(rel, s).rows().collect()
}

/// Runs the enrollment pattern and prints what it shows.
pub fn run() -> relgraph::Result<()> {
    println!("== many-to-many with payload: Student.courses <-> Course.students ==");
    let mut schema = Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let enrollments = schema.relate_with(students.many("courses"), courses.many("students"));
    let mut store = Store::new(schema);

    let john = store.insert(Student {
        name: "John".into(),
    });
    let mary = store.insert(Student {
        name: "Mary".into(),
    });
    let python = store.insert(Course {
        name: "Python Programming".into(),
    });
    let databases = store.insert(Course {
        name: "Database Systems".into(),
    });
    let algebra = store.insert(Course {
        name: "Linear Algebra".into(),
    });

    store.link_with(enrollments, john, python, Enrollment { grade: Some('A') })?;
    store.link_with(enrollments, john, databases, Enrollment { grade: None })?;
    store.link_with(
        enrollments,
        mary,
        databases,
        Enrollment { grade: Some('B') },
    )?;

    println!(
        "John's courses: {:?}",
        courses_of(&store, enrollments, john)
    );
    let students_of_db: Vec<&Student> = store
        .sources(enrollments, databases)
        .map(|s| &store[s])
        .collect();
    println!("Database Systems' students: {students_of_db:?}");

    // linking the same pair again keeps one link; link_with replaces the grade in place
    store.link(enrollments, john, python)?;
    store.link_with(
        enrollments,
        john,
        databases,
        Enrollment { grade: Some('A') },
    )?;
    let grades: Vec<(String, Option<char>)> = store
        .targets_with(enrollments, john)
        .map(|(c, e)| (store[c].name.clone(), e.grade))
        .collect();
    println!("John's grades: {grades:?}");
    store.update_payload(enrollments, mary, databases, |e| e.grade = Some('A'))?;
    println!(
        "Mary's grade in Database Systems: {:?}",
        store
            .payload(enrollments, mary, databases)
            .and_then(|e| e.grade)
    );

    // replace John's courses: Python stays (with its grade), Databases goes, Algebra comes
    store.set_targets(enrollments, john, &[algebra, python])?;
    println!(
        "John's courses after replacing them: {:?}",
        courses_of(&store, enrollments, john)
    );
    println!(
        "Python grade kept: {:?}; Database Systems now has {} student(s)",
        store
            .payload(enrollments, john, python)
            .and_then(|e| e.grade),
        store.source_count(enrollments, databases)
    );
    store.check_integrity()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
