//! The fixed schema of the snapshot fuzz targets (`snapshot_bytes`, `snapshot_payload`) and
//! of the seed generator (`examples/snapshot_seeds.rs`): every relation kind, with and
//! without payload; an acyclic self-referential one-to-many, one-to-one and many-to-many; a
//! many-to-many that forbids self-links only; a polymorphic base `assets` with kinds
//! `image`, `clip` and `blob` (a relation on the base, a one-to-one between two kinds, a
//! many-to-many from a kind to a plain table); a polymorphic parent end
//! (`comments.target`: a doc or an image); rows with `String`, `Vec`, `Option`, enums,
//! tuples, arrays, `char`, `bool` and floats, so that every kind of bincode decoding is
//! reached.
//!
//! Changing anything here changes the schema fingerprint: the committed seeds must then be
//! regenerated (see `README.md`).

use relgraph::{DeleteRule, Kind, ManyToMany, OneToMany, OneToOne, PolyParent, Rules, Schema};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Role {
    Owner,
    Editor { since: u32 },
    Guest(String),
    Banned(Option<String>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    pub aliases: Vec<String>,
    pub karma: Option<i64>,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub bio: String,
    pub links: Vec<(String, u16)>,
    pub initial: char,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Status {
    Draft,
    Published(u64),
    Archived { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub title: String,
    pub body: Option<String>,
    pub revisions: Vec<u32>,
    pub status: Status,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub text: String,
    pub color: Option<[u8; 3]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Folder {
    pub name: String,
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub text: String,
    pub score: i16,
}

/// The polymorphic base; its kinds are `Image`, `Clip` and `Blob`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub uri: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub w: u16,
    pub h: u16,
    pub alt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Codec {
    H264,
    Av1,
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    pub frames: Vec<u16>,
    pub codec: Codec,
    pub fps: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blob(pub Vec<u8>);

/// The payload of `docs.labels <-> labels.docs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub weight: i32,
    pub note: Option<String>,
}

/// The payload of `image.tagged <-> accounts.tagged_in`: a box in the image, if any.
pub type Spot = Option<(u16, u16)>;

#[allow(dead_code)] // each user needs some of the handles
#[derive(Clone, Copy)]
pub struct Handles {
    /// accounts.docs <-> docs.author: cascade
    pub authorship: OneToMany<Account, Doc>,
    /// accounts.profile <-> profiles.owner: delete-orphan at A, restrict at B
    pub profile: OneToOne<Account, Profile>,
    /// docs.labels <-> labels.docs, `Placement` payload: delete-orphan at A
    pub labelling: ManyToMany<Doc, Label, Placement>,
    /// folders.subfolders <-> folders.parent, acyclic: cascade
    pub tree: OneToMany<Folder, Folder>,
    /// folders.see_also <-> folders.seen_from, acyclic
    pub see_also: ManyToMany<Folder, Folder>,
    /// folders.docs <-> docs.folder: nullify
    pub filing: OneToMany<Folder, Doc>,
    /// accounts.follows <-> accounts.followers: self-links forbidden, cycles allowed
    pub follows: ManyToMany<Account, Account>,
    /// docs.next <-> docs.prev, acyclic one-to-one
    pub sequel: OneToOne<Doc, Doc>,
    /// accounts.assets <-> assets.owner, on the base: cascade
    pub owns: OneToMany<Account, Asset>,
    /// clip.poster <-> image.poster_of, between two kinds: restrict at B
    pub poster: OneToOne<Clip, Image>,
    /// docs.comments <-> comments.target, polymorphic: cascade
    pub on_docs: OneToMany<Doc, Comment>,
    /// image.comments <-> comments.target, polymorphic, on a kind: delete-orphan at B
    pub on_images: OneToMany<Image, Comment>,
    /// image.tagged <-> accounts.tagged_in, `Spot` payload, from a kind
    pub tagged: ManyToMany<Image, Account, Spot>,
    pub target: PolyParent<Comment>,
    pub image: Kind<Asset, Image>,
    pub clip: Kind<Asset, Clip>,
    pub blob: Kind<Asset, Blob>,
}

pub fn schema() -> (Schema, Handles) {
    use DeleteRule::*;
    let mut s = Schema::new();
    let accounts = s.table::<Account>("accounts");
    let profiles = s.table::<Profile>("profiles");
    let docs = s.table::<Doc>("docs");
    let labels = s.table::<Label>("labels");
    let folders = s.table::<Folder>("folders");
    let comments = s.table::<Comment>("comments");
    let assets = s.table::<Asset>("assets");
    let image = s.kind::<Asset, Image>(assets, "image");
    let clip = s.kind::<Asset, Clip>(assets, "clip");
    let blob = s.kind::<Asset, Blob>(assets, "blob");
    let target = s.poly_parent(comments, "target");
    let h = Handles {
        authorship: s.one_to_many(accounts, "docs", docs, "author", Cascade),
        profile: s.one_to_one(
            accounts,
            "profile",
            profiles,
            "owner",
            Rules::new().on_delete(DeleteOrphan).on_delete_b(Restrict),
        ),
        labelling: s.many_to_many_with(docs, "labels", labels, "docs", DeleteOrphan),
        tree: s.one_to_many(
            folders,
            "subfolders",
            folders,
            "parent",
            Rules::new().on_delete(Cascade).acyclic(),
        ),
        see_also: s.many_to_many(
            folders,
            "see_also",
            folders,
            "seen_from",
            Rules::new().acyclic(),
        ),
        filing: s.one_to_many(folders, "docs", docs, "folder", Nullify),
        follows: s.many_to_many(
            accounts,
            "follows",
            accounts,
            "followers",
            Rules::new().forbid_self_links(),
        ),
        sequel: s.one_to_one(docs, "next", docs, "prev", Rules::new().acyclic()),
        owns: s.one_to_many(accounts, "assets", assets, "owner", Cascade),
        poster: s.one_to_one(
            clip,
            "poster",
            image,
            "poster_of",
            Rules::new().on_delete_b(Restrict),
        ),
        on_docs: s.one_to_many_poly(docs, "comments", target, Cascade),
        on_images: s.one_to_many_poly(
            image,
            "comments",
            target,
            Rules::new().on_delete_b(DeleteOrphan),
        ),
        tagged: s.many_to_many_with(image, "tagged", accounts, "tagged_in", Nullify),
        target,
        image,
        clip,
        blob,
    };
    (s, h)
}
