//! One-to-one relations: partners.

use super::*;

impl Store {
    /// The partner of `a` (the first-end entity) in a one-to-one. O(1).
    #[track_caller]
    pub fn partner<A: Entity, B: Entity>(&self, rel: OneToOne<A, B>, a: Key<A>) -> Option<Key<B>> {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::OneToOne(r) => r.partner(End::A, a.raw()).map(Key::from_raw),
            _ => unreachable!("a OneToOne handle names a one-to-one"),
        }
    }

    /// The partner of `b` (the second-end entity) in a one-to-one. O(1).
    #[track_caller]
    pub fn partner_of<A: Entity, B: Entity>(
        &self,
        rel: OneToOne<A, B>,
        b: Key<B>,
    ) -> Option<Key<A>> {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::OneToOne(r) => r.partner(End::B, b.raw()).map(Key::from_raw),
            _ => unreachable!("a OneToOne handle names a one-to-one"),
        }
    }
}
