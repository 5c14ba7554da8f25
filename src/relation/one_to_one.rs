//! One-to-one: at most one partner on each side.

use crate::error::IntegrityError;
use crate::key::RawKey;
use crate::schema::{End, RelationDef};

use super::{grow, reserve_to, Alive};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mate {
    owner_version: u32,
    partner: RawKey,
}

/// Both sides of a one-to-one: `b_of` by A slot, `a_of` by B slot.
#[derive(Default)]
pub(crate) struct OneToOneStore {
    b_of: Vec<Option<Mate>>,
    a_of: Vec<Option<Mate>>,
    links: usize,
}

impl OneToOneStore {
    pub fn link_count(&self) -> usize {
        self.links
    }

    fn side(&self, end: End) -> &Vec<Option<Mate>> {
        match end {
            End::A => &self.b_of,
            End::B => &self.a_of,
        }
    }

    /// The partner of `key`, which sits at `end`.
    #[inline]
    pub fn partner(&self, end: End, key: RawKey) -> Option<RawKey> {
        match self.side(end).get(key.idx()) {
            Some(Some(m)) if m.owner_version == key.version() => Some(m.partner),
            _ => None,
        }
    }

    /// Makes room for `slots` entities at `end` in all.
    pub fn reserve_slots(&mut self, end: End, slots: usize) {
        match end {
            End::A => reserve_to(&mut self.b_of, slots),
            End::B => reserve_to(&mut self.a_of, slots),
        }
    }

    /// Links `a` and `b`, both without a partner.
    pub fn attach(&mut self, a: RawKey, b: RawKey) {
        *grow(&mut self.b_of, a.idx()) = Some(Mate {
            owner_version: a.version(),
            partner: b,
        });
        *grow(&mut self.a_of, b.idx()) = Some(Mate {
            owner_version: b.version(),
            partner: a,
        });
        self.links += 1;
    }

    /// Unlinks `a` and `b` if they are partners.
    pub fn detach(&mut self, a: RawKey, b: RawKey) -> bool {
        if self.partner(End::A, a) != Some(b) {
            return false;
        }
        self.b_of[a.idx()] = None;
        self.a_of[b.idx()] = None;
        self.links -= 1;
        true
    }

    /// An entity on a cycle of a self-referential relation, if there is one. O(slots).
    pub fn find_cycle(&self) -> Option<RawKey> {
        let i = super::find_functional_cycle(self.a_of.len(), |i| {
            self.a_of[i].map(|m| m.partner.idx())
        })?;
        self.a_of[i].map(|m| m.partner)
    }

    /// The pairs (first end, second end), in the first end's slot order.
    pub fn pairs(&self) -> impl Iterator<Item = (RawKey, RawKey)> + '_ {
        self.b_of.iter().enumerate().filter_map(|(i, m)| {
            let m = (*m)?;
            Some((RawKey::at(i, m.owner_version)?, m.partner))
        })
    }

    pub fn check(&self, def: &RelationDef, alive: Alive<'_>) -> Result<(), IntegrityError> {
        let relation = def.name;
        let mut counts = [0usize; 2];
        for (end, count) in [End::A, End::B].into_iter().zip(&mut counts) {
            for (i, m) in self.side(end).iter().enumerate() {
                let Some(m) = m else { continue };
                *count += 1;
                let key = RawKey::at(i, m.owner_version);
                let Some(key) = key.filter(|&k| alive(end, k)) else {
                    return Err(IntegrityError::DeadEndpoint {
                        relation,
                        end,
                        key: m.partner,
                    });
                };
                if !alive(end.other(), m.partner) {
                    return Err(IntegrityError::DeadEndpoint {
                        relation,
                        end: end.other(),
                        key: m.partner,
                    });
                }
                if self.partner(end.other(), m.partner) != Some(key) {
                    return Err(IntegrityError::Disagree {
                        relation,
                        key,
                        detail: "partner does not point back",
                    });
                }
                if def.rules.forbid_self_links && m.partner == key {
                    return Err(IntegrityError::SelfLink { relation, key });
                }
            }
        }
        if counts != [self.links, self.links] {
            return Err(IntegrityError::CountMismatch {
                what: format!("links of {relation}"),
                stored: self.links,
                actual: counts[0].max(counts[1]),
            });
        }
        if def.rules.acyclic {
            if let Some(key) = self.find_cycle() {
                return Err(IntegrityError::Cycle { relation, key });
            }
        }
        Ok(())
    }
}
