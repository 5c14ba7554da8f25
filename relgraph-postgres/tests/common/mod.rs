//! The test model (every relation kind, delete rule, kind, polymorphic parent and payload
//! shape) and a PostgreSQL server shared by the tests of one binary while any runs.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, Weak};

use relgraph::{DeleteRule, Kind, ManyToMany, OneToMany, OneToOne, Schema, Store, Table};
use relgraph_postgres::TempServer;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Role {
    Admin,
    Member,
    Guest,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Lang {
    En,
    Other(String),
    Pair { a: u8, b: i16 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Meta {
    pub words: u32,
    pub lang: Option<Lang>,
    pub scores: Vec<(u8, f64)>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Score(pub i32);

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct User {
    pub name: String,
    pub age: u8,
    pub score: f64,
    pub ratio: f32,
    pub nick: Option<String>,
    pub big: u64,
    pub huge: i128,
    pub initial: char,
    pub role: Role,
    pub level: Score,
    pub extra: Option<Option<u8>>,
    pub tags: Vec<String>,
    pub active: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Post {
    pub title: String,
    pub meta: Meta,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Note {
    pub text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Badge {
    pub label: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Photo {
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
    /// a recursive type, as jsonb
    pub replies: Vec<Reply>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    pub replies: Vec<Reply>,
}

/// A comment with a thread of replies two deep.
pub fn comment(text: String) -> Comment {
    let leaf = |t: &str| Reply {
        text: t.to_string(),
        replies: Vec::new(),
    };
    Comment {
        replies: vec![Reply {
            text: format!("re: {text}"),
            replies: vec![leaf("agreed"), leaf("tab\there")],
        }],
        text,
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Profile {
    pub bio: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Course {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Enrollment {
    pub grade: f64,
    pub note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Employee {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Notification {
    pub created_at: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Email {
    pub to: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Sms {
    pub number: String,
}

/// The model's handles.
#[derive(Clone, Copy)]
pub struct M {
    pub users: Table<User>,
    pub posts: Table<Post>,
    pub notes: Table<Note>,
    pub badges: Table<Badge>,
    pub photos: Table<Photo>,
    pub comments: Table<Comment>,
    pub profiles: Table<Profile>,
    pub courses: Table<Course>,
    pub employees: Table<Employee>,
    pub notifications: Table<Notification>,
    pub email: Kind<Notification, Email>,
    pub sms: Kind<Notification, Sms>,
    /// cascade
    pub authored: OneToMany<User, Post>,
    /// nullify
    pub noted: OneToMany<User, Note>,
    /// restrict
    pub badged: OneToMany<User, Badge>,
    /// delete-orphan
    pub shot: OneToMany<User, Photo>,
    pub profile: OneToOne<User, Profile>,
    pub enrolled: ManyToMany<User, Course, Enrollment>,
    pub follows: ManyToMany<User, User>,
    pub manages: OneToMany<Employee, Employee>,
    pub inbox: OneToMany<User, Notification>,
    pub post_comments: OneToMany<Post, Comment>,
    pub photo_comments: OneToMany<Photo, Comment>,
}

pub fn model() -> (Schema, M) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let notes = s.table::<Note>("notes");
    let badges = s.table::<Badge>("badges");
    let photos = s.table::<Photo>("photos");
    let comments = s.table::<Comment>("comments");
    let profiles = s.table::<Profile>("profiles");
    let courses = s.table::<Course>("courses");
    let employees = s.table::<Employee>("employees");
    let notifications = s.table::<Notification>("notifications");
    let email = s.kind::<Notification, Email>(notifications, "email");
    let sms = s.kind::<Notification, Sms>(notifications, "sms");
    s.plain_kind(notifications, "notification");
    let authored = s.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let noted = s.relate(users.many("notes"), notes.one("owner"));
    let badged = s.relate(
        users.many("badges").on_delete(DeleteRule::Restrict),
        badges.one("holder"),
    );
    let shot = s.relate(
        users.many("photos").on_delete(DeleteRule::DeleteOrphan),
        photos.one("owner"),
    );
    let profile = s.relate(
        users.one("profile").on_delete(DeleteRule::Cascade),
        profiles.one("user"),
    );
    let enrolled =
        s.relate_with::<User, Course, Enrollment>(users.many("courses"), courses.many("students"));
    let follows = s.relate(users.many("follows"), users.many("followers"));
    let manages = s.relate(
        employees.many("subordinates").acyclic(),
        employees.one("manager"),
    );
    let inbox = s.relate(
        users.many("notifications").on_delete(DeleteRule::Cascade),
        notifications.one("recipient"),
    );
    let target = s.poly_parent(comments, "target");
    let post_comments = s.relate(
        posts.many("comments").on_delete(DeleteRule::Cascade),
        target,
    );
    let photo_comments = s.relate(photos.many("comments"), target);
    (
        s,
        M {
            users,
            posts,
            notes,
            badges,
            photos,
            comments,
            profiles,
            courses,
            employees,
            notifications,
            email,
            sms,
            authored,
            noted,
            badged,
            shot,
            profile,
            enrolled,
            follows,
            manages,
            inbox,
            post_comments,
            photo_comments,
        },
    )
}

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const AWKWARD: [&str; 6] = [
    "plain",
    "tab\tand\nnewline\r",
    "back\\slash \\N",
    "quote ' and \" and ünïcödé ☃",
    "",
    "comma, semicolon; {brace} [bracket]",
];

pub fn user(r: &mut Rng) -> User {
    let i = r.next();
    User {
        name: format!("{} {}", AWKWARD[r.below(AWKWARD.len())], i % 1000),
        age: (i % 256) as u8,
        score: match i % 7 {
            0 => f64::NAN,
            1 => -0.0,
            2 => f64::INFINITY,
            3 => 1e300,
            4 => 5e-324,
            _ => (i % 10_000) as f64 / 7.0,
        },
        ratio: (i % 1000) as f32 / 3.0,
        nick: r
            .chance(50)
            .then(|| AWKWARD[r.below(AWKWARD.len())].to_string()),
        big: if i.is_multiple_of(3) { u64::MAX } else { i },
        huge: if i.is_multiple_of(2) {
            i128::MIN
        } else {
            i128::from(i) * -3
        },
        initial: ['a', 'é', '☃', '\t'][r.below(4)],
        role: [Role::Admin, Role::Member, Role::Guest][r.below(3)].clone(),
        level: Score(-(i as i32 % 500)),
        extra: [None, Some(None), Some(Some(7))][r.below(3)],
        tags: (0..r.below(3)).map(|k| format!("t{k}")).collect(),
        active: r.chance(50),
    }
}

pub fn post(r: &mut Rng) -> Post {
    Post {
        title: format!("post {}", r.next() % 1000),
        meta: Meta {
            words: r.next() as u32,
            lang: [
                None,
                Some(Lang::En),
                Some(Lang::Other("tab\there".into())),
                Some(Lang::Pair { a: 1, b: -2 }),
            ][r.below(4)]
            .clone(),
            scores: (0..r.below(3)).map(|k| (k as u8, k as f64 / 3.0)).collect(),
        },
    }
}

/// A server for this test binary, shared while tests overlap; stopped when the last
/// holder drops it.
pub fn server() -> Arc<TempServer> {
    static SHARED: Mutex<Weak<TempServer>> = Mutex::new(Weak::new());
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.upgrade() {
        return s;
    }
    let s = Arc::new(TempServer::start().expect("start a PostgreSQL server"));
    *g = Arc::downgrade(&s);
    s
}

/// A fresh database on the shared server.
pub fn fresh_db(server: &TempServer, name: &str) -> postgres::Client {
    server.create_db(name).expect("create a database")
}

/// A store with some of everything, including removals (vacant slots, a free list out
/// of order) and kind rows removed out of order.
pub fn populated(seed: u64) -> (Store, M) {
    let (schema, m) = model();
    let mut s = Store::new(schema);
    let mut r = Rng(seed);
    let users: Vec<_> = (0..12).map(|_| s.insert(user(&mut r))).collect();
    let courses: Vec<_> = (0..4)
        .map(|i| {
            s.insert(Course {
                name: format!("course {i}"),
            })
        })
        .collect();
    for (i, &u) in users.iter().enumerate() {
        for _ in 0..r.below(5) {
            s.insert_child(m.authored, u, post(&mut r)).unwrap();
        }
        for k in 0..r.below(3) {
            s.insert_child(
                m.noted,
                u,
                Note {
                    text: format!("note {k}"),
                },
            )
            .unwrap();
        }
        if i % 3 == 0 {
            s.insert_child(
                m.badged,
                u,
                Badge {
                    label: "gold".into(),
                },
            )
            .unwrap();
        }
        if i % 2 == 0 {
            let p = s
                .insert_child(
                    m.shot,
                    u,
                    Photo {
                        url: format!("http://x/{i}"),
                    },
                )
                .unwrap();
            s.insert_child(m.photo_comments, p, comment("nice".into()))
                .unwrap();
        }
        if i % 4 != 1 {
            let p = s.insert(Profile {
                bio: format!("bio {i}"),
            });
            s.link(m.profile, u, p).unwrap();
        }
        for &c in &courses {
            if r.chance(60) {
                let e = Enrollment {
                    grade: r.below(100) as f64 / 4.0,
                    note: r.chance(30).then(|| "late\tjoin".to_string()),
                };
                s.link_with(m.enrolled, u, c, e).unwrap();
            }
        }
        for &v in &users {
            if v != u && r.chance(20) {
                s.link(m.follows, u, v).unwrap();
            }
        }
        let n = match i % 3 {
            0 => m.email.upcast(s.insert_kind(
                m.email,
                Notification {
                    created_at: i as i64,
                },
                Email {
                    to: format!("u{i}@x"),
                },
            )),
            1 => m.sms.upcast(s.insert_kind(
                m.sms,
                Notification {
                    created_at: -(i as i64),
                },
                Sms {
                    number: format!("+{i}"),
                },
            )),
            _ => s.insert(Notification { created_at: 0 }),
        };
        s.link(m.inbox, u, n).unwrap();
    }
    let posts: Vec<_> = s.keys::<Post>().collect();
    for (i, &p) in posts.iter().enumerate() {
        if i % 2 == 0 {
            s.insert_child(m.post_comments, p, comment(format!("c{i}")))
                .unwrap();
        }
    }
    let emps: Vec<_> = (0..6)
        .map(|i| {
            s.insert(Employee {
                name: format!("e{i}"),
            })
        })
        .collect();
    for i in 1..emps.len() {
        s.link(m.manages, emps[(i - 1) / 2], emps[i]).unwrap();
    }
    // removals: vacant slots, reused slots, a kind row swapped into a hole
    s.remove(users[5]).unwrap();
    s.remove(courses[1]).unwrap();
    let notes: Vec<_> = s.keys::<Note>().collect();
    for n in notes.iter().step_by(3) {
        s.remove(*n).unwrap();
    }
    s.insert(Note {
        text: "reused".into(),
    });
    let first_email = s.keys::<Email>().next().unwrap();
    let u = s.parent(m.inbox, m.email.upcast(first_email)).unwrap();
    s.unlink(m.inbox, u, m.email.upcast(first_email)).unwrap();
    s.remove(m.email.upcast(first_email)).unwrap();
    // reorder a list
    let u0 = users[0];
    let mut kids: Vec<_> = s.children(m.authored, u0).collect();
    kids.reverse();
    s.set_children(m.authored, u0, &kids).unwrap();
    s.check_integrity().unwrap();
    (s, m)
}

fn pick<T: Copy>(r: &mut Rng, v: &[T]) -> Option<T> {
    (!v.is_empty()).then(|| v[r.below(v.len())])
}

/// One random change of the store: a call, a transaction of a few calls, an undo or a
/// redo (history must be on). Refused changes (restrict, acyclic) are fine.
pub fn random_step(s: &mut Store, m: &M, r: &mut Rng) {
    match r.below(10) {
        0 => {
            let _ = s.undo();
        }
        1 => {
            let _ = s.redo();
        }
        2 => {
            let _ = s.transaction(|s| {
                for _ in 0..1 + r.below(4) {
                    one_change(s, m, r);
                }
                Ok::<(), ()>(())
            });
        }
        _ => one_change(s, m, r),
    }
}

fn one_change(s: &mut Store, m: &M, r: &mut Rng) {
    let users: Vec<_> = s.keys::<User>().collect();
    let posts: Vec<_> = s.keys::<Post>().collect();
    let photos: Vec<_> = s.keys::<Photo>().collect();
    let courses: Vec<_> = s.keys::<Course>().collect();
    let comments: Vec<_> = s.keys::<Comment>().collect();
    let notes: Vec<_> = s.keys::<Note>().collect();
    let emps: Vec<_> = s.keys::<Employee>().collect();
    let notifs: Vec<_> = s.keys::<Notification>().collect();
    match r.below(24) {
        0 => {
            s.insert(user(r));
        }
        1 => {
            if let Some(u) = pick(r, &users) {
                let v = user(r);
                let _ = s.replace(u, v);
            }
        }
        2 => {
            if let Some(u) = pick(r, &users) {
                let _ = s.remove(u);
            }
        }
        3 | 4 => {
            if let Some(u) = pick(r, &users) {
                let _ = s.insert_child(m.authored, u, post(r));
            }
        }
        5 => {
            if let (Some(u), Some(p)) = (pick(r, &users), pick(r, &posts)) {
                let _ = s.link(m.authored, u, p); // a move when linked
            }
        }
        6 => {
            if let Some(p) = pick(r, &posts) {
                let _ = s.remove(p);
            }
        }
        7 => {
            if let (Some(u), Some(c)) = (pick(r, &users), pick(r, &courses)) {
                let e = Enrollment {
                    grade: r.below(400) as f64 / 4.0,
                    note: r.chance(30).then(|| "x\ty".into()),
                };
                let _ = s.link_with(m.enrolled, u, c, e);
            }
        }
        8 => {
            if let (Some(u), Some(c)) = (pick(r, &users), pick(r, &courses)) {
                let _ = s.unlink(m.enrolled, u, c);
            }
        }
        9 => {
            if let (Some(u), Some(c)) = (pick(r, &users), pick(r, &courses)) {
                let g = r.below(100) as f64;
                let _ = s.update_payload(m.enrolled, u, c, |e| e.grade = g);
            }
        }
        10 => {
            if let Some(u) = pick(r, &users) {
                let mut kids: Vec<_> = s.children(m.authored, u).collect();
                if kids.len() > 1 {
                    let i = r.below(kids.len());
                    kids.swap(0, i);
                    kids.rotate_left(1);
                    let _ = s.set_children(m.authored, u, &kids);
                }
            }
        }
        11 => {
            if let Some(u) = pick(r, &users) {
                let mut t: Vec<_> = s.targets(m.enrolled, u).collect();
                t.reverse();
                if let Some(c) = pick(r, &courses) {
                    if !t.contains(&c) {
                        t.push(c);
                    }
                }
                let _ = s.set_targets(m.enrolled, u, &t);
            }
        }
        12 => {
            if let (Some(a), Some(b)) = (pick(r, &users), pick(r, &users)) {
                if r.chance(60) {
                    let _ = s.link(m.follows, a, b);
                } else {
                    let _ = s.unlink(m.follows, a, b);
                }
            }
        }
        13 => {
            if let Some(u) = pick(r, &users) {
                let p = s.insert(Profile {
                    bio: format!("b{}", r.next() % 100),
                });
                let _ = s.link(m.profile, u, p); // evicts the old profile
            }
        }
        14 => {
            if let Some(u) = pick(r, &users) {
                let n = match r.below(3) {
                    0 => m.email.upcast(s.insert_kind(
                        m.email,
                        Notification {
                            created_at: r.next() as i64,
                        },
                        Email { to: "a@b".into() },
                    )),
                    1 => m.sms.upcast(s.insert_kind(
                        m.sms,
                        Notification { created_at: 1 },
                        Sms {
                            number: "+1".into(),
                        },
                    )),
                    _ => s.insert(Notification { created_at: 2 }),
                };
                let _ = s.link(m.inbox, u, n);
            }
        }
        15 => {
            if let Some(n) = pick(r, &notifs) {
                let _ = s.remove(n);
            }
        }
        16 => {
            if let Some(n) = pick(r, &notifs) {
                if let Some(u) = s.parent(m.inbox, n) {
                    let _ = s.unlink(m.inbox, u, n);
                }
                let _ = if r.chance(50) {
                    s.change_kind(n, m.email, Email { to: "new@x".into() })
                        .map(|_| ())
                } else {
                    s.change_kind(
                        n,
                        m.sms,
                        Sms {
                            number: "+9".into(),
                        },
                    )
                    .map(|_| ())
                };
            }
        }
        17 => {
            let c = s.insert(comment(format!("c{}", r.next() % 50)));
            if r.chance(50) {
                if let Some(p) = pick(r, &posts) {
                    let _ = s.link(m.post_comments, p, c);
                }
            } else if let Some(p) = pick(r, &photos) {
                let _ = s.link(m.photo_comments, p, c);
            }
        }
        18 => {
            // moves a comment across the polymorphic parent end
            if let (Some(c), Some(p), Some(ph)) =
                (pick(r, &comments), pick(r, &posts), pick(r, &photos))
            {
                let _ = if r.chance(50) {
                    s.link(m.post_comments, p, c)
                } else {
                    s.link(m.photo_comments, ph, c)
                };
            }
        }
        19 => {
            if let Some(u) = pick(r, &users) {
                let _ = s.insert_child(m.shot, u, Photo { url: "u".into() });
            }
        }
        20 => {
            if let Some(u) = pick(r, &users) {
                let _ = s.insert_child(m.noted, u, Note { text: "n".into() });
            }
            if let Some(n) = pick(r, &notes) {
                let _ = s.remove(n);
            }
        }
        21 => {
            if let (Some(a), Some(b)) = (pick(r, &emps), pick(r, &emps)) {
                let _ = s.link(m.manages, a, b);
            } else {
                s.insert(Employee { name: "e".into() });
            }
        }
        22 => {
            s.insert(Employee {
                name: format!("e{}", r.next() % 9),
            });
            if let Some(e) = pick(r, &emps) {
                if r.chance(30) {
                    let _ = s.remove(e);
                }
            }
        }
        _ => {
            if let Some(c) = pick(r, &courses) {
                if r.chance(30) {
                    let _ = s.remove(c);
                }
            } else {
                s.insert(Course { name: "new".into() });
            }
            if r.chance(50) {
                s.insert(Course { name: "c".into() });
            }
        }
    }
}
