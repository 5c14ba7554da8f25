//! The workloads W1-W8 on bevy_ecs with its relationships, written as a competent bevy_ecs
//! user would: each row an entity with one component holding its fields, each relation a
//! `#[relationship]` component on the "many" side whose `#[relationship_target]` on the
//! "one" side bevy_ecs keeps in step (its hooks), the built-in `ChildOf`/`Children`
//! hierarchy for the tree, the kinds of W8 as components (a query for one kind touches
//! only its entities), `spawn_batch` for bulk inserts and `QueryState`s made once per
//! workload (what a system's `Query` parameters are).
//!
//! bevy_ecs relationships are one-to-many; the many-to-many with a grade (W5) is written
//! the usual way, as an enrollment entity with two relationships and the grade. The cascade
//! (W7) is `linked_spawn` on the target: despawning a user despawns its posts. Each function
//! computes its checksum exactly as the baseline's `base_w*` function of relgraph-bench
//! (`bench/src/lib.rs`) does.

use bevy_ecs::prelude::*;
use bevy_ecs::relationship::RelationshipTarget;

use relgraph_bench::{
    BlogData, Course, Email, Employee, Kept, NotifData, NotifKind, Notification, OrgData, Post,
    Push, SchoolData, Sms, Student, User,
};

/// A user's fields.
#[derive(Component)]
pub struct UserRow(pub User);

/// A post's fields.
#[derive(Component)]
pub struct PostRow(pub Post);

/// On a post: its author.
#[derive(Component)]
#[relationship(relationship_target = Posts)]
pub struct AuthoredBy(pub Entity);

/// On a user: its posts, kept by bevy_ecs; despawning the user despawns them.
#[derive(Component)]
#[relationship_target(relationship = AuthoredBy, linked_spawn)]
pub struct Posts(Vec<Entity>);

/// The W1 state: the world and the entity of every generated user and post.
pub struct Blog {
    world: World,
    users: Vec<Entity>,
    posts: Vec<Entity>,
}

/// W1: spawn the users, then the posts, each with its `AuthoredBy`; the checksum is the
/// baseline's: post counts weighted by user index.
pub fn w1(d: BlogData) -> (Blog, u64) {
    let mut world = World::new();
    let users: Vec<Entity> = world
        .spawn_batch(d.users.into_iter().map(UserRow))
        .collect();
    let bundles = d
        .posts
        .into_iter()
        .zip(&d.author)
        .map(|(p, &a)| (PostRow(p), AuthoredBy(users[a as usize])));
    let posts = world.spawn_batch(bundles).collect();
    let mut state = Blog {
        world,
        users,
        posts,
    };
    let sum = counts(&mut state).0;
    (state, sum)
}

/// Post counts weighted by user index (users without posts have no `Posts`), and the
/// total count.
fn counts(b: &mut Blog) -> (u64, u64) {
    let mut posts = b.world.query::<&Posts>();
    let posts = posts.query(&b.world);
    let (mut sum, mut total) = (0, 0);
    for (i, &u) in b.users.iter().enumerate() {
        let n = posts.get(u).map_or(0, |p| p.len()) as u64;
        sum += (i as u64 + 1) * n;
        total += n;
    }
    (sum, total)
}

/// W2: for every user with posts (one query over them), its posts' scores summed.
pub fn w2(b: &mut Blog) -> u64 {
    let mut users = b.world.query::<&Posts>();
    let mut rows = b.world.query::<&PostRow>();
    let rows = rows.query(&b.world);
    let mut sum = 0u64;
    for posts in users.iter(&b.world) {
        for p in posts.iter() {
            sum += u64::from(rows.get(p).expect("a post").0.score);
        }
    }
    sum
}

/// W3: for every post in the shuffled order, its `AuthoredBy` and the author's score.
pub fn w3(b: &mut Blog, shuffled: &[u32]) -> u64 {
    let mut authors = b.world.query::<&AuthoredBy>();
    let mut rows = b.world.query::<&UserRow>();
    let (authors, rows) = (authors.query(&b.world), rows.query(&b.world));
    let mut sum = 0u64;
    for &i in shuffled {
        if let Ok(a) = authors.get(b.posts[i as usize]) {
            sum += u64::from(rows.get(a.0).expect("a user").0.score);
        }
    }
    sum
}

/// W4: move posts to other users by inserting a new `AuthoredBy` (bevy_ecs takes the post
/// out of the old author's `Posts` and into the new one's), then check that the post
/// counts add up; the checksum is W1's.
pub fn w4(b: &mut Blog, moves: &[(u32, u32)]) -> u64 {
    for &(p, u) in moves {
        let (p, u) = (b.posts[p as usize], b.users[u as usize]);
        b.world.entity_mut(p).insert(AuthoredBy(u));
    }
    let (sum, total) = counts(b);
    assert_eq!(total, b.posts.len() as u64);
    sum
}

/// W7: despawn users, their posts despawned with them (`linked_spawn`); then count the
/// remaining posts.
pub fn w7(b: &mut Blog, deletes: &[u32]) -> u64 {
    for &u in deletes {
        b.world.despawn(b.users[u as usize]);
    }
    let mut posts = b.world.query::<&PostRow>();
    posts.query(&b.world).count() as u64
}

/// A student's fields.
#[derive(Component)]
pub struct StudentRow(#[allow(dead_code)] pub Student);

/// A course's fields.
#[derive(Component)]
pub struct CourseRow(#[allow(dead_code)] pub Course);

/// On an enrollment: its student.
#[derive(Component)]
#[relationship(relationship_target = StudentEnrollments)]
pub struct EnrollmentOf(pub Entity);

/// On a student: its enrollments.
#[derive(Component)]
#[relationship_target(relationship = EnrollmentOf, linked_spawn)]
pub struct StudentEnrollments(Vec<Entity>);

/// On an enrollment: its course.
#[derive(Component)]
#[relationship(relationship_target = CourseEnrollments)]
pub struct EnrolledIn(pub Entity);

/// On a course: its enrollments.
#[derive(Component)]
#[relationship_target(relationship = EnrolledIn, linked_spawn)]
pub struct CourseEnrollments(Vec<Entity>);

/// On an enrollment: the grade.
#[derive(Component)]
pub struct GradeRow(pub u8);

/// W5: students and courses as entities, each enrollment an entity with its student, its
/// course and its grade; per-course enrollment counts weighted by course index, per-student
/// grade sums, the unlinks (the student's enrollment in that course found among its
/// enrollments and despawned, each counted when found), plus the enrollments left: the
/// baseline's checksum.
pub fn w5(d: SchoolData) -> (Kept, u64) {
    let mut world = World::new();
    let students: Vec<Entity> = world
        .spawn_batch(d.students.into_iter().map(StudentRow))
        .collect();
    let courses: Vec<Entity> = world
        .spawn_batch(d.courses.into_iter().map(CourseRow))
        .collect();
    let bundles = students.iter().zip(&d.enrollments).flat_map(|(&s, cs)| {
        let courses = &courses;
        cs.iter().map(move |&(c, g)| {
            (
                EnrollmentOf(s),
                EnrolledIn(courses[c as usize]),
                GradeRow(g),
            )
        })
    });
    world.spawn_batch(bundles).for_each(drop);

    let mut sum = 0u64;
    let mut of_course = world.query::<&CourseEnrollments>();
    let mut of_student = world.query::<&StudentEnrollments>();
    let mut enrollment = world.query::<(&EnrolledIn, &GradeRow)>();
    {
        let of_course = of_course.query(&world);
        for (i, &c) in courses.iter().enumerate() {
            let n = of_course.get(c).map_or(0, |e| e.len());
            sum += (i as u64 + 1) * n as u64;
        }
        let of_student = of_student.query(&world);
        let enrollment = enrollment.query(&world);
        for &s in &students {
            for e in of_student.get(s).into_iter().flat_map(|e| e.iter()) {
                sum += u64::from(enrollment.get(e).expect("an enrollment").1 .0);
            }
        }
    }
    for &(s, c) in &d.unlinks {
        let (s, c) = (students[s as usize], courses[c as usize]);
        let found = {
            let enrollment = enrollment.query(&world);
            let mut mine = of_student.get(&world, s).into_iter().flat_map(|e| e.iter());
            mine.find(|&e| enrollment.get(e).is_ok_and(|(to, _)| to.0 == c))
        };
        if let Some(e) = found {
            world.despawn(e);
            sum += 1;
        }
    }
    let links = enrollment.query(&world).count() as u64;
    (Box::new((world, students, courses)), sum + links)
}

/// An employee's fields.
#[derive(Component)]
pub struct EmployeeRow(#[allow(dead_code)] pub Employee);

/// W6's tree in bevy_ecs's own hierarchy: each report a `ChildOf` its manager.
pub struct Org {
    world: World,
    keys: Vec<Entity>,
}

/// W6 build: the root, then every other employee spawned as a child of its manager (a
/// manager always comes before its reports).
pub fn w6_build(d: OrgData) -> Org {
    let mut world = World::new();
    let mut keys: Vec<Entity> = Vec::with_capacity(d.employees.len());
    for (i, (e, &m)) in d.employees.into_iter().zip(&d.manager).enumerate() {
        let k = if i == 0 {
            world.spawn(EmployeeRow(e)).id()
        } else {
            world
                .spawn((EmployeeRow(e), ChildOf(keys[m as usize])))
                .id()
        };
        keys.push(k);
    }
    Org { world, keys }
}

/// W6: the root's descendants by `iter_descendants` (breadth first over `Children`), and
/// each sampled employee's depth by `iter_ancestors` (up the `ChildOf`s).
pub fn w6(o: &mut Org, samples: &[u32]) -> u64 {
    let mut children = o.world.query::<&Children>();
    let children = children.query(&o.world);
    let count = children.iter_descendants(o.keys[0]).count() as u64;
    let mut parents = o.world.query::<&ChildOf>();
    let parents = parents.query(&o.world);
    let depths: usize = samples
        .iter()
        .map(|&i| parents.iter_ancestors(o.keys[i as usize]).count())
        .sum();
    count * 1_000_003 + depths as u64
}

/// A notification's base fields.
#[derive(Component)]
pub struct NotificationRow(#[allow(dead_code)] pub Notification);

/// The email kind's fields.
#[derive(Component)]
pub struct EmailRow(#[allow(dead_code)] pub Email);

/// The SMS kind's fields.
#[derive(Component)]
pub struct SmsRow(pub Sms);

/// The push kind's fields.
#[derive(Component)]
pub struct PushRow(#[allow(dead_code)] pub Push);

/// On a notification: its user.
#[derive(Component)]
#[relationship(relationship_target = Inbox)]
pub struct NotifiedUser(pub Entity);

/// On a user: its notifications.
#[derive(Component)]
#[relationship_target(relationship = NotifiedUser)]
pub struct Inbox(Vec<Entity>);

/// The W8 state.
pub struct Notifs {
    world: World,
    users: Vec<Entity>,
}

/// W8 build: the users, then the notifications, one `spawn_batch` per kind (a batch spawns
/// one bundle type).
pub fn w8_build(d: NotifData) -> Notifs {
    let mut world = World::new();
    let users: Vec<Entity> = world
        .spawn_batch(d.users.into_iter().map(UserRow))
        .collect();
    let (mut emails, mut sms, mut push) = (Vec::new(), Vec::new(), Vec::new());
    for ((base, kind), &o) in d.notifications.into_iter().zip(&d.owner) {
        let (base, user) = (NotificationRow(base), NotifiedUser(users[o as usize]));
        match kind {
            NotifKind::Email(e) => emails.push((base, user, EmailRow(e))),
            NotifKind::Sms(s) => sms.push((base, user, SmsRow(s))),
            NotifKind::Push(p) => push.push((base, user, PushRow(p))),
        }
    }
    world.spawn_batch(emails).for_each(drop);
    world.spawn_batch(sms).for_each(drop);
    world.spawn_batch(push).for_each(drop);
    Notifs { world, users }
}

/// W8 query: the SMS rows by a query for the SMS component (only those entities), and
/// the sampled users' email notifications: each of the user's `Inbox` checked for the
/// email component.
pub fn w8_query(n: &mut Notifs, samples: &[u32]) -> u64 {
    let mut sms = n.world.query::<&SmsRow>();
    let sms = sms.query(&n.world);
    let phones: u64 = sms.iter().map(|s| s.0.phone.len() as u64).sum();
    let count = sms.count() as u64;
    let mut inboxes = n.world.query::<&Inbox>();
    let mut is_email = n.world.query_filtered::<(), With<EmailRow>>();
    let (inboxes, is_email) = (inboxes.query(&n.world), is_email.query(&n.world));
    let mut emails = 0u64;
    for &u in samples {
        if let Ok(inbox) = inboxes.get(n.users[u as usize]) {
            emails += inbox.iter().filter(|&k| is_email.contains(k)).count() as u64;
        }
    }
    phones * 1_000_003 + count * 1_009 + emails
}
