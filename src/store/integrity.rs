//! The integrity check of every invariant.

use super::*;

impl Store {
    /// Verifies every invariant of the whole store and reports the first violation: each
    /// table's free slots listed exactly once (no key can be issued twice), every link's
    /// endpoints alive, both sides of every relation in agreement, stored counts
    /// true, cardinalities held, no self-link where forbidden, no cycle where declared
    /// acyclic. O(entities + links).
    ///
    /// # Errors
    ///
    /// The first violation found, as an [`IntegrityError`] naming the table, relation and key.
    /// A store changed only through this API never reports one.
    #[track_caller]
    pub fn check_integrity(&self) -> Result<(), IntegrityError> {
        for (def, arena) in self.schema.tables.iter().zip(&self.tables) {
            arena
                .check_free_list()
                .map_err(|detail| IntegrityError::FreeList {
                    table: def.name,
                    detail,
                })?;
            let keys = arena.keys().len();
            if keys != arena.len() {
                return Err(IntegrityError::CountMismatch {
                    what: format!("table {}", def.name),
                    stored: arena.len(),
                    actual: keys,
                });
            }
        }
        self.check_kinds()?;
        for (def, store) in self.schema.relations.iter().zip(&self.relations) {
            let alive = |end: End, k: RawKey| self.tables[def.table(end) as usize].contains(k);
            store.check(def, &alive)?;
        }
        self.check_poly_parents()
    }

    /// Every row of a base has exactly one kind; every kind row has its base row.
    pub(crate) fn check_kinds(&self) -> Result<(), IntegrityError> {
        for (t, def) in self.schema.tables.iter().enumerate() {
            if let Some(base) = def.base {
                for key in self.tables[t].keys() {
                    if !self.tables[base as usize].contains(key) {
                        return Err(IntegrityError::Kind {
                            table: def.name,
                            key,
                            detail: "kind row without a base row",
                        });
                    }
                }
            }
            if def.kinds.is_empty() {
                continue;
            }
            for key in self.tables[t].keys() {
                let kinds = def
                    .kinds
                    .iter()
                    .filter(|&&k| self.tables[k as usize].contains(key))
                    .count();
                if kinds != 1 {
                    return Err(IntegrityError::Kind {
                        table: def.name,
                        key,
                        detail: if kinds == 0 {
                            "row without a kind"
                        } else {
                            "row of two kinds"
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// A child has a parent in at most one relation of a polymorphic parent end.
    pub(crate) fn check_poly_parents(&self) -> Result<(), IntegrityError> {
        for group in &self.schema.groups {
            let mut seen = KeySet::default();
            for &m in &group.members {
                let RelationStore::OneToMany(r) = self.rel_store(m) else {
                    continue;
                };
                for child in r.linked_children() {
                    if !seen.insert(child) {
                        return Err(IntegrityError::TwoParents {
                            table: self.schema.tables[group.child_table as usize].name,
                            end: group.end,
                            key: child,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
