//! The workloads W1-W8 on petgraph's `StableGraph`, written as a competent petgraph user
//! would: one graph per workload whose node weight is an enum of the entity types, a
//! directed edge from the "one" side to the "many" side (user to post, student to course
//! with the grade as the edge weight, manager to employee, user to notification), room
//! reserved with `with_capacity` where the sizes are known, and the library's own calls
//! (`neighbors_directed`, `find_edge`, `remove_node`, `visit::Bfs`).
//!
//! `StableGraph` keeps node and edge indices valid across removals (as relgraph's keys and
//! the baseline's slot map keys are); its adjacency is one linked list of edges per node
//! and direction, stored in one edge vector. petgraph has no delete rules: W7's cascade is
//! written by hand. Each function computes its checksum exactly as the baseline's `base_w*`
//! function of relgraph-bench (`bench/src/lib.rs`) does.

use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::{Bfs, EdgeRef};
use petgraph::Direction::Incoming;

use relgraph_bench::{
    BlogData, Course, Employee, Kept, NotifData, NotifKind, Notification, OrgData, Post,
    SchoolData, Student, User,
};

/// A node of the blog graph.
pub enum BlogNode {
    /// A user: the source of its posts' edges.
    User(User),
    /// A post: the target of one edge, from its author.
    Post(Post),
}

/// The W1 state: the graph and the node of every generated user and post.
pub struct Blog {
    graph: StableGraph<BlogNode, ()>,
    users: Vec<NodeIndex>,
    posts: Vec<NodeIndex>,
    /// users not deleted yet: the graph's other nodes are posts
    users_left: usize,
}

impl Blog {
    fn user(&self, n: NodeIndex) -> &User {
        match &self.graph[n] {
            BlogNode::User(u) => u,
            BlogNode::Post(_) => unreachable!("a post where a user was expected"),
        }
    }

    fn post(&self, n: NodeIndex) -> &Post {
        match &self.graph[n] {
            BlogNode::Post(p) => p,
            BlogNode::User(_) => unreachable!("a user where a post was expected"),
        }
    }
}

/// W1: add the users, then each post with an edge from its author; the checksum is the
/// baseline's: post counts weighted by user index.
pub fn w1(d: BlogData) -> (Blog, u64) {
    let nodes = d.users.len() + d.posts.len();
    let mut graph = StableGraph::with_capacity(nodes, d.posts.len());
    let users: Vec<NodeIndex> = d
        .users
        .into_iter()
        .map(|u| graph.add_node(BlogNode::User(u)))
        .collect();
    let posts = d
        .posts
        .into_iter()
        .zip(&d.author)
        .map(|(p, &a)| {
            let p = graph.add_node(BlogNode::Post(p));
            graph.add_edge(users[a as usize], p, ());
            p
        })
        .collect();
    let users_left = users.len();
    let state = Blog {
        graph,
        users,
        posts,
        users_left,
    };
    let sum = counts_checksum(&state);
    (state, sum)
}

/// Post counts (out-degrees) weighted by user index, and the total count.
fn counts(b: &Blog) -> (u64, u64) {
    let (mut sum, mut total) = (0, 0);
    for (i, &u) in b.users.iter().enumerate() {
        let n = b.graph.neighbors(u).count() as u64;
        sum += (i as u64 + 1) * n;
        total += n;
    }
    (sum, total)
}

fn counts_checksum(b: &Blog) -> u64 {
    counts(b).0
}

/// W2: for every user, its posts' scores summed.
pub fn w2(b: &Blog) -> u64 {
    let mut sum = 0u64;
    for &u in &b.users {
        for p in b.graph.neighbors(u) {
            sum += u64::from(b.post(p).score);
        }
    }
    sum
}

/// W3: for every post in the shuffled order, its author (the one incoming edge's source)
/// and the author's score.
pub fn w3(b: &Blog, shuffled: &[u32]) -> u64 {
    let mut sum = 0u64;
    for &i in shuffled {
        let p = b.posts[i as usize];
        if let Some(a) = b.graph.neighbors_directed(p, Incoming).next() {
            sum += u64::from(b.user(a).score);
        }
    }
    sum
}

/// W4: move posts to other users (the author's edge removed, one from the new author
/// added), then check that the post counts add up; the checksum is W1's.
pub fn w4(b: &mut Blog, moves: &[(u32, u32)]) -> u64 {
    for &(p, u) in moves {
        let (p, u) = (b.posts[p as usize], b.users[u as usize]);
        let edge = b
            .graph
            .edges_directed(p, Incoming)
            .next()
            .expect("every post has an author");
        if edge.source() == u {
            continue;
        }
        let id = edge.id();
        b.graph.remove_edge(id);
        b.graph.add_edge(u, p, ());
    }
    let (sum, total) = counts(b);
    assert_eq!(total, b.posts.len() as u64);
    sum
}

/// W7: delete users and, by hand (petgraph has no delete rules), their posts; then count
/// the remaining posts (the nodes that are not users).
pub fn w7(b: &mut Blog, deletes: &[u32]) -> u64 {
    let mut posts = Vec::new();
    for &u in deletes {
        let u = b.users[u as usize];
        posts.clear();
        posts.extend(b.graph.neighbors(u));
        // the user first: its edges go with it, each found at the head of its lists
        b.graph.remove_node(u);
        for &p in &posts {
            b.graph.remove_node(p);
        }
        b.users_left -= 1;
    }
    (b.graph.node_count() - b.users_left) as u64
}

/// A node of the school graph.
enum SchoolNode {
    Student(#[allow(dead_code)] Student),
    Course(#[allow(dead_code)] Course),
}

/// W5: students and courses as nodes, each enrollment an edge from the student to the
/// course weighted by the grade; per-course in-degrees weighted by course index, per-student
/// grade sums, the unlinks (`find_edge` then `remove_edge`, each counted when it found the
/// edge), plus the edges left: the baseline's checksum.
pub fn w5(d: SchoolData) -> (Kept, u64) {
    let links: usize = d.enrollments.iter().map(Vec::len).sum();
    let nodes = d.students.len() + d.courses.len();
    let mut graph: StableGraph<SchoolNode, u8> = StableGraph::with_capacity(nodes, links);
    let students: Vec<NodeIndex> = d
        .students
        .into_iter()
        .map(|s| graph.add_node(SchoolNode::Student(s)))
        .collect();
    let courses: Vec<NodeIndex> = d
        .courses
        .into_iter()
        .map(|c| graph.add_node(SchoolNode::Course(c)))
        .collect();
    for (&s, cs) in students.iter().zip(&d.enrollments) {
        for &(c, g) in cs {
            graph.add_edge(s, courses[c as usize], g);
        }
    }
    let mut sum = 0u64;
    for (i, &c) in courses.iter().enumerate() {
        sum += (i as u64 + 1) * graph.neighbors_directed(c, Incoming).count() as u64;
    }
    for &s in &students {
        for e in graph.edges(s) {
            sum += u64::from(*e.weight());
        }
    }
    for &(s, c) in &d.unlinks {
        let (s, c) = (students[s as usize], courses[c as usize]);
        if let Some(e) = graph.find_edge(s, c) {
            graph.remove_edge(e);
            sum += 1;
        }
    }
    let sum = sum + graph.edge_count() as u64;
    (Box::new((graph, students, courses)), sum)
}

/// W6's tree: every employee a node, an edge from each manager to each report.
pub struct Org {
    graph: StableGraph<Employee, ()>,
    keys: Vec<NodeIndex>,
}

/// W6 build: the employees, then one edge from each one's manager.
pub fn w6_build(d: OrgData) -> Org {
    let n = d.employees.len();
    let mut graph = StableGraph::with_capacity(n, n.saturating_sub(1));
    let keys: Vec<NodeIndex> = d.employees.into_iter().map(|e| graph.add_node(e)).collect();
    for (i, &m) in d.manager.iter().enumerate().skip(1) {
        graph.add_edge(keys[m as usize], keys[i], ());
    }
    Org { graph, keys }
}

/// W6: the root's descendants counted by the library's breadth-first search (`Bfs`, which
/// marks visited nodes in a bit set), and each sampled employee's depth by following the
/// one incoming edge up to the root.
pub fn w6(o: &Org, samples: &[u32]) -> u64 {
    let mut bfs = Bfs::new(&o.graph, o.keys[0]);
    let mut reached = 0u64;
    while bfs.next(&o.graph).is_some() {
        reached += 1;
    }
    let count = reached - 1; // not the root itself
    let mut depths = 0u64;
    for &i in samples {
        let mut at = o.keys[i as usize];
        while let Some(up) = o.graph.neighbors_directed(at, Incoming).next() {
            depths += 1;
            at = up;
        }
    }
    count * 1_000_003 + depths
}

/// A node of the notifications graph: the kind is the enum's variant.
pub enum NotifNode {
    /// A user: the source of its notifications' edges.
    User(#[allow(dead_code)] User),
    /// A notification and its kind's fields.
    Notification(#[allow(dead_code)] Notification, NotifKind),
}

/// The W8 state.
pub struct Notifs {
    graph: StableGraph<NotifNode, ()>,
    users: Vec<NodeIndex>,
}

/// W8 build: the users, then every notification with an edge from its user.
pub fn w8_build(d: NotifData) -> Notifs {
    let nodes = d.users.len() + d.notifications.len();
    let mut graph = StableGraph::with_capacity(nodes, d.notifications.len());
    let users: Vec<NodeIndex> = d
        .users
        .into_iter()
        .map(|u| graph.add_node(NotifNode::User(u)))
        .collect();
    for ((base, kind), &o) in d.notifications.into_iter().zip(&d.owner) {
        let n = graph.add_node(NotifNode::Notification(base, kind));
        graph.add_edge(users[o as usize], n, ());
    }
    Notifs { graph, users }
}

/// W8 query: the SMS rows by a scan of every node (petgraph has one node type per graph),
/// and the sampled users' email notifications by their out-edges.
pub fn w8_query(n: &Notifs, samples: &[u32]) -> u64 {
    let (mut sms, mut count) = (0u64, 0u64);
    for node in n.graph.node_weights() {
        if let NotifNode::Notification(_, NotifKind::Sms(s)) = node {
            sms += s.phone.len() as u64;
            count += 1;
        }
    }
    let mut emails = 0u64;
    for &u in samples {
        emails += n
            .graph
            .neighbors(n.users[u as usize])
            .filter(|&k| matches!(n.graph[k], NotifNode::Notification(_, NotifKind::Email(_))))
            .count() as u64;
    }
    sms * 1_000_003 + count * 1_009 + emails
}
