//! Type shapes: a fingerprint of what a type's `Deserialize` reads, so that a snapshot can
//! tell a row or payload type that changed without a version raise.
//!
//! The shape is found by tracing: the type deserializes itself from a [`Tracer`], a
//! deserializer that records each request (`u32`, a sequence of..., a struct of n fields,
//! an enum) and answers with a small placeholder value. It is the serde data model as
//! bincode sees it: primitives are tokens (`u32` is not `i64`); structs, tuples and tuple
//! structs are their field sequences; a newtype is its inner type; options, sequences and
//! maps are their element shapes; an enum is the shape of every variant. Names of fields,
//! structs, enums and variants are left out (bincode does not write them, so renames stay
//! compatible). A type deserializes once per choice of variants: each run takes variants
//! not traced yet, until every variant of every enum reached is known (as serde-reflection
//! does). A recursive type is cut where a container repeats inside itself (its value there
//! is made with empty sequences, `None` options and a variant that ends the recursion),
//! and a depth and a step limit stop the rest.
//!
//! The placeholders are tried in sets (integers 1, then integers whose every byte is 1,
//! then 0), the first set the type accepts giving the shape. A type whose `Deserialize`
//! cannot be traced (it asks for `deserialize_any` or an identifier, refuses every set of
//! placeholders, panics, or exceeds the limits) has no shape and is not checked.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

use crate::checksum::checksum;

/// The shape fingerprint of `T`: the format's checksum of its shape text, or `None` if
/// its `Deserialize` cannot be traced. Computed once per type and process (a trace costs
/// microseconds for common types), then cached.
pub(crate) fn fingerprint<T: DeserializeOwned + 'static>() -> Option<u64> {
    static CACHE: Mutex<BTreeMap<TypeId, Option<u64>>> = Mutex::new(BTreeMap::new());
    let id = TypeId::of::<T>();
    if let Some(&known) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return known;
    }
    let shape = catch_unwind(AssertUnwindSafe(shape_text::<T>))
        .ok()
        .flatten()
        .map(|text| checksum(text.as_bytes()));
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, shape);
    shape
}

/// The shape text of `T` (see the module docs), or `None` if it cannot be traced. The
/// placeholders are tried in turn: integers 1, then integers whose every byte is 1 (a
/// type that splits an integer into parts, such as a key, may refuse a zero part), then 0.
pub(crate) fn shape_text<T: DeserializeOwned>() -> Option<String> {
    (0..PROFILES).find_map(shape_text_with::<T>)
}

/// Placeholder sets.
const PROFILES: u8 = 3;

fn shape_text_with<T: DeserializeOwned>(profile: u8) -> Option<String> {
    let (t, root) = trace::<T>(profile)?;
    let mut out = String::new();
    t.print(&root, &mut Vec::new(), &mut out).ok()?;
    Some(out)
}

/// The serde data model of a row or payload type as the snapshot encoding reads it, with
/// the names a shape fingerprint leaves out (structs, fields, variants): what a program
/// needs to lay rows out elsewhere (typed columns in SQL) and to decode and encode their
/// snapshot bytes ([`Encoded::bytes`](crate::Encoded::bytes), snapshot rows) without
/// the Rust type. Made by [`Schema::describe_tables`](crate::Schema::describe_tables)
/// and [`Schema::describe_relations`](crate::Schema::describe_relations).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeShape {
    /// `bool`: one byte, 0 or 1.
    Bool,
    /// `i8`: one byte.
    I8,
    /// `i16`: zigzag varint.
    I16,
    /// `i32`: zigzag varint.
    I32,
    /// `i64`: zigzag varint.
    I64,
    /// `i128`: zigzag varint.
    I128,
    /// `u8`: one byte.
    U8,
    /// `u16`: varint.
    U16,
    /// `u32`: varint.
    U32,
    /// `u64`: varint.
    U64,
    /// `u128`: varint.
    U128,
    /// `f32`: 4 bytes little-endian.
    F32,
    /// `f64`: 8 bytes little-endian.
    F64,
    /// `char`: its UTF-8 bytes.
    Char,
    /// A string: varint length, UTF-8 bytes.
    Str,
    /// A byte buffer: varint length, bytes.
    Bytes,
    /// `()`, a unit struct or a unit variant's content: no bytes.
    Unit,
    /// An option: a byte 0 (`None`) or 1 followed by the value.
    Option(Box<TypeShape>),
    /// A sequence: varint length, the elements.
    Seq(Box<TypeShape>),
    /// A map: varint length, the entries (key, value).
    Map(Box<TypeShape>, Box<TypeShape>),
    /// A tuple (and the fields of a tuple or struct variant): the elements in order.
    Tuple(Vec<TypeShape>),
    /// A struct: its fields in order, with their serde names.
    Struct {
        /// The struct's serde name.
        name: &'static str,
        /// Each field's serde name and shape, in order.
        fields: Vec<(&'static str, TypeShape)>,
    },
    /// A tuple struct: its fields in order.
    TupleStruct {
        /// The struct's serde name.
        name: &'static str,
        /// Each field's shape, in order.
        fields: Vec<TypeShape>,
    },
    /// A newtype struct: its inner value.
    Newtype {
        /// The struct's serde name.
        name: &'static str,
        /// The inner value's shape.
        inner: Box<TypeShape>,
    },
    /// An enum: the variant's index as a varint, then its content.
    Enum {
        /// The enum's serde name.
        name: &'static str,
        /// Each variant's serde name and content (`Unit`, the inner value of a newtype
        /// variant, or a `Tuple` of the fields of a tuple or struct variant).
        variants: Vec<(&'static str, TypeShape)>,
    },
    /// A recursive type where it repeats: the value has the shape of the `n`-th enclosing
    /// struct, tuple struct, newtype or enum (1: the innermost).
    Recursive(usize),
}

impl TypeShape {
    /// Whether the shape is a single SQL-like scalar: an integer, float, `bool`, `char`,
    /// string or byte buffer.
    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            TypeShape::Bool
                | TypeShape::I8
                | TypeShape::I16
                | TypeShape::I32
                | TypeShape::I64
                | TypeShape::I128
                | TypeShape::U8
                | TypeShape::U16
                | TypeShape::U32
                | TypeShape::U64
                | TypeShape::U128
                | TypeShape::F32
                | TypeShape::F64
                | TypeShape::Char
                | TypeShape::Str
                | TypeShape::Bytes
        )
    }
}

/// The named shape of `T` (see [`TypeShape`]), or `None` if its `Deserialize` cannot be
/// traced. Traces the type each call (microseconds for common types).
pub(crate) fn describe<T: DeserializeOwned>() -> Option<TypeShape> {
    (0..PROFILES).find_map(|profile| {
        let (t, root) = trace::<T>(profile)?;
        t.named(&root, &mut Vec::new())
    })
}

/// Traces `T` with a placeholder set: the tracer and the root shape.
fn trace<T: DeserializeOwned>(profile: u8) -> Option<(Tracer, Fmt)> {
    let mut t = Tracer {
        profile,
        ..Tracer::default()
    };
    for _ in 0..MAX_RUNS {
        t.progress = false;
        t.stack.clear();
        t.value_mode = 0;
        t.depth = 0;
        t.last = Fmt::Unknown;
        drop(T::deserialize(&mut t).ok()?);
        let root = std::mem::replace(&mut t.last, Fmt::Unknown);
        if !t.incomplete() {
            return Some((t, root));
        }
        if !t.progress {
            return None;
        }
    }
    None
}

/// Deserializations of the type at most (one per variant explored).
const MAX_RUNS: usize = 1024;
/// Requests to the tracer at most, over all runs.
const MAX_STEPS: usize = 1 << 20;
/// Nesting at most.
const MAX_DEPTH: usize = 128;
/// Length of the shape text at most.
const MAX_TEXT: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq)]
enum Fmt {
    Prim(&'static str),
    Unit,
    Option(Box<Fmt>),
    Seq(Box<Fmt>),
    Map(Box<Fmt>, Box<Fmt>),
    Tuple(Vec<Fmt>),
    /// A named container (struct, tuple struct, newtype, enum), by id.
    Ref(usize),
    /// Not recorded (a value made only to go on).
    #[default]
    Unknown,
}

#[derive(Debug)]
enum Body {
    Newtype(Option<Fmt>),
    Fields(Option<Fmt>),
    Enum(Vec<Option<Fmt>>),
}

/// How the tracer tells containers apart: their kind, serde name and field or variant
/// names (never part of the shape).
type Key = (u8, &'static str, &'static [&'static str], usize);

struct Container {
    key: Key,
    body: Body,
    /// Traced outside a recursive repetition at least once.
    seen: bool,
}

#[derive(Default)]
struct Tracer {
    containers: Vec<Container>,
    /// Containers being traced, with the variant chosen for an enum.
    stack: Vec<(usize, usize)>,
    /// Above 0 inside a repeated container: values are made, nothing is recorded.
    value_mode: usize,
    /// Shapes of the elements of the sequences being traced.
    frames: Vec<Vec<Fmt>>,
    /// The shape of the last value traced.
    last: Fmt,
    depth: usize,
    steps: usize,
    /// Whether this run traced a variant not traced before.
    progress: bool,
    /// Which placeholder values to answer with.
    profile: u8,
}

/// Why a type cannot be traced.
#[derive(Debug)]
struct Untraceable(String);

impl fmt::Display for Untraceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untraceable {}

impl de::Error for Untraceable {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Untraceable(msg.to_string())
    }
}

type Res<T> = Result<T, Untraceable>;

impl Tracer {
    /// Traces one element of a sequence, tuple, struct or map: its shape joins the
    /// innermost frame.
    fn element<'de, S: DeserializeSeed<'de>>(&mut self, seed: S) -> Res<S::Value> {
        self.last = Fmt::Unknown;
        let v = seed.deserialize(&mut *self)?;
        let fmt = std::mem::take(&mut self.last);
        if let Some(frame) = self.frames.last_mut() {
            frame.push(fmt);
        }
        Ok(v)
    }

    fn enter(&mut self) -> Res<()> {
        self.steps += 1;
        self.depth += 1;
        if self.steps > MAX_STEPS || self.depth > MAX_DEPTH {
            return Err(Untraceable("too deep or too large".into()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn prim(&mut self, name: &'static str) -> Res<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Untraceable("too large".into()));
        }
        self.last = Fmt::Prim(name);
        Ok(())
    }

    fn id_of(&mut self, key: Key, body: impl FnOnce() -> Body) -> usize {
        match self.containers.iter().position(|c| c.key == key) {
            Some(id) => id,
            None => {
                self.containers.push(Container {
                    key,
                    body: body(),
                    seen: false,
                });
                self.containers.len() - 1
            }
        }
    }

    /// Whether an enum reached in a normal trace has a variant not traced yet.
    fn incomplete(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.seen && matches!(&c.body, Body::Enum(vs) if vs.iter().any(Option::is_none)))
    }

    /// Whether `fmt` leads to an enum with a variant not traced yet.
    fn reaches_incomplete(&self, fmt: &Fmt, visited: &mut Vec<bool>) -> bool {
        match fmt {
            Fmt::Prim(_) | Fmt::Unit | Fmt::Unknown => false,
            Fmt::Option(f) | Fmt::Seq(f) => self.reaches_incomplete(f, visited),
            Fmt::Map(k, v) => {
                self.reaches_incomplete(k, visited) || self.reaches_incomplete(v, visited)
            }
            Fmt::Tuple(fs) => fs.iter().any(|f| self.reaches_incomplete(f, visited)),
            Fmt::Ref(id) => {
                if std::mem::replace(&mut visited[*id], true) {
                    return false;
                }
                match &self.containers[*id].body {
                    Body::Newtype(f) | Body::Fields(f) => f
                        .as_ref()
                        .is_some_and(|f| self.reaches_incomplete(f, visited)),
                    Body::Enum(vs) => vs.iter().any(|v| match v {
                        None => true,
                        Some(f) => self.reaches_incomplete(f, visited),
                    }),
                }
            }
        }
    }

    /// Containers on the stack `fmt` reaches without passing through an option, sequence
    /// or map (which are empty when a value is only made): a measure of how far making its
    /// value would recurse.
    fn strong_refs(&self, fmt: &Fmt) -> usize {
        match fmt {
            Fmt::Tuple(fs) => fs.iter().map(|f| self.strong_refs(f)).sum(),
            Fmt::Ref(id) => usize::from(self.stack.iter().any(|&(s, _)| s == *id)),
            _ => 0,
        }
    }

    /// The variant of enum `id` to take: in a normal trace one not traced yet, else one
    /// leading to such a variant; when only a value is made, the one least likely to
    /// recurse.
    fn choose(&self, id: usize, value: bool) -> usize {
        let Body::Enum(vs) = &self.containers[id].body else {
            unreachable!("an enum container")
        };
        let in_progress = |v: usize| self.stack.iter().any(|&(s, c)| s == id && c == v);
        if !value {
            if let Some(v) = (0..vs.len()).find(|&v| vs[v].is_none()) {
                return v;
            }
            let mut visited = vec![false; self.containers.len()];
            return (0..vs.len())
                .find(|&v| {
                    vs[v]
                        .as_ref()
                        .is_some_and(|f| self.reaches_incomplete(f, &mut visited))
                })
                .unwrap_or(0);
        }
        (0..vs.len())
            .min_by_key(|&v| match &vs[v] {
                Some(f) => self.strong_refs(f) * 2,
                None if in_progress(v) => usize::MAX,
                None => 1,
            })
            .unwrap_or(0)
    }

    /// Records a traced shape of container `id` (or of its variant `variant`); a
    /// different shape for the same container means two types share a name and fields.
    fn record(&mut self, id: usize, variant: Option<usize>, fmt: Fmt) -> Res<()> {
        let c = &mut self.containers[id];
        c.seen = true;
        let slot = match (&mut c.body, variant) {
            (Body::Newtype(f), None) | (Body::Fields(f), None) => f,
            (Body::Enum(vs), Some(v)) => {
                if vs[v].is_none() {
                    self.progress = true;
                }
                &mut vs[v]
            }
            _ => return Err(Untraceable("container kinds disagree".into())),
        };
        match slot {
            Some(old) if *old != fmt => Err(Untraceable("two types share a name".into())),
            _ => {
                *slot = Some(fmt);
                Ok(())
            }
        }
    }

    /// Traces a named container: `run` makes its value, leaving its shape in `last`.
    fn container<R>(
        &mut self,
        key: Key,
        body: impl FnOnce() -> Body,
        run: impl FnOnce(&mut Self, usize) -> Res<R>,
    ) -> Res<R> {
        self.enter()?;
        let id = self.id_of(key, body);
        let recursive = self.stack.iter().any(|&(s, _)| s == id);
        let value = recursive || self.value_mode > 0;
        let variant = match self.containers[id].body {
            Body::Enum(_) => Some(self.choose(id, value)),
            _ => None,
        };
        if value {
            self.value_mode += 1;
        }
        self.stack.push((id, variant.unwrap_or(0)));
        self.last = Fmt::Unknown;
        let r = run(self, variant.unwrap_or(0))?;
        let fmt = std::mem::take(&mut self.last);
        self.stack.pop();
        if value {
            self.value_mode -= 1;
        } else {
            self.record(id, variant, fmt)?;
        }
        self.last = Fmt::Ref(id);
        self.leave();
        Ok(r)
    }

    /// Visits a sequence of `len` elements; their shapes are returned.
    fn elements<'de, V: Visitor<'de>>(
        &mut self,
        len: usize,
        visitor: V,
    ) -> Res<(V::Value, Vec<Fmt>)> {
        self.frames.push(Vec::new());
        let r = visitor.visit_seq(Elements {
            tracer: self,
            left: len,
        });
        let fmts = self.frames.pop().unwrap_or_default();
        Ok((r?, fmts))
    }

    /// The named shape of `fmt`; `None` where something is unknown.
    fn named(&self, fmt: &Fmt, stack: &mut Vec<usize>) -> Option<TypeShape> {
        if stack.len() > MAX_DEPTH {
            return None;
        }
        let boxed = |s: Option<TypeShape>| s.map(Box::new);
        Some(match fmt {
            Fmt::Prim(p) => match *p {
                "bool" => TypeShape::Bool,
                "i8" => TypeShape::I8,
                "i16" => TypeShape::I16,
                "i32" => TypeShape::I32,
                "i64" => TypeShape::I64,
                "i128" => TypeShape::I128,
                "u8" => TypeShape::U8,
                "u16" => TypeShape::U16,
                "u32" => TypeShape::U32,
                "u64" => TypeShape::U64,
                "u128" => TypeShape::U128,
                "f32" => TypeShape::F32,
                "f64" => TypeShape::F64,
                "char" => TypeShape::Char,
                "str" => TypeShape::Str,
                "bytes" => TypeShape::Bytes,
                "()" => TypeShape::Unit,
                _ => return None,
            },
            Fmt::Unit => TypeShape::Unit,
            Fmt::Unknown => return None,
            Fmt::Option(f) => TypeShape::Option(boxed(self.named(f, stack))?),
            Fmt::Seq(f) => TypeShape::Seq(boxed(self.named(f, stack))?),
            Fmt::Map(k, v) => {
                TypeShape::Map(boxed(self.named(k, stack))?, boxed(self.named(v, stack))?)
            }
            Fmt::Tuple(fs) => TypeShape::Tuple(
                fs.iter()
                    .map(|f| self.named(f, stack))
                    .collect::<Option<_>>()?,
            ),
            Fmt::Ref(id) => {
                if let Some(pos) = stack.iter().rposition(|s| s == id) {
                    return Some(TypeShape::Recursive(stack.len() - pos));
                }
                stack.push(*id);
                let c = &self.containers[*id];
                let (kind, name, names, _) = c.key;
                let fields = |f: &Option<Fmt>, stack: &mut Vec<usize>| match f {
                    Some(Fmt::Tuple(fs)) => fs
                        .iter()
                        .map(|f| self.named(f, stack))
                        .collect::<Option<Vec<_>>>(),
                    _ => None,
                };
                let shape = match (&c.body, kind) {
                    (Body::Newtype(f), _) => TypeShape::Newtype {
                        name,
                        inner: Box::new(self.named(f.as_ref()?, stack)?),
                    },
                    (Body::Fields(f), 1) => TypeShape::Struct {
                        name,
                        fields: names.iter().copied().zip(fields(f, stack)?).collect(),
                    },
                    (Body::Fields(f), _) => TypeShape::TupleStruct {
                        name,
                        fields: fields(f, stack)?,
                    },
                    (Body::Enum(vs), _) => TypeShape::Enum {
                        name,
                        variants: names
                            .iter()
                            .copied()
                            .zip(vs.iter())
                            .map(|(n, v)| Some((n, self.named(v.as_ref()?, stack)?)))
                            .collect::<Option<_>>()?,
                    },
                };
                stack.pop();
                shape
            }
        })
    }

    fn print(&self, fmt: &Fmt, stack: &mut Vec<usize>, out: &mut String) -> Result<(), ()> {
        if out.len() > MAX_TEXT {
            return Err(());
        }
        match fmt {
            Fmt::Prim(p) => out.push_str(p),
            Fmt::Unit => out.push_str("()"),
            Fmt::Unknown => out.push('?'),
            Fmt::Option(f) => {
                out.push_str("option<");
                self.print(f, stack, out)?;
                out.push('>');
            }
            Fmt::Seq(f) => {
                out.push_str("seq<");
                self.print(f, stack, out)?;
                out.push('>');
            }
            Fmt::Map(k, v) => {
                out.push_str("map<");
                self.print(k, stack, out)?;
                out.push(',');
                self.print(v, stack, out)?;
                out.push('>');
            }
            // one element is written as the element alone
            Fmt::Tuple(fs) if fs.len() == 1 => self.print(&fs[0], stack, out)?,
            Fmt::Tuple(fs) => {
                out.push('(');
                for (i, f) in fs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.print(f, stack, out)?;
                }
                out.push(')');
            }
            Fmt::Ref(id) => {
                if let Some(pos) = stack.iter().rposition(|s| s == id) {
                    out.push_str(&format!("rec{}", stack.len() - pos));
                    return Ok(());
                }
                stack.push(*id);
                match &self.containers[*id].body {
                    Body::Newtype(f) | Body::Fields(f) => {
                        self.print(f.as_ref().unwrap_or(&Fmt::Unknown), stack, out)?
                    }
                    Body::Enum(vs) => {
                        out.push_str("enum{");
                        for (i, v) in vs.iter().enumerate() {
                            if i > 0 {
                                out.push('|');
                            }
                            self.print(v.as_ref().unwrap_or(&Fmt::Unknown), stack, out)?;
                        }
                        out.push('}');
                    }
                }
                stack.pop();
            }
        }
        Ok(())
    }
}

struct Elements<'t> {
    tracer: &'t mut Tracer,
    left: usize,
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Untraceable;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Res<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.tracer.element(seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Entries<'t> {
    tracer: &'t mut Tracer,
    left: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Untraceable;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Res<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.tracer.element(seed).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Res<V::Value> {
        self.tracer.element(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Variant<'t> {
    tracer: &'t mut Tracer,
    choice: usize,
}

impl<'de, 't> EnumAccess<'de> for Variant<'t> {
    type Error = Untraceable;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Res<(S::Value, Self)> {
        let index = u32::try_from(self.choice).map_err(|_| Untraceable("variants".into()))?;
        let v = seed.deserialize(IntoDeserializer::<Untraceable>::into_deserializer(index))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = Untraceable;

    fn unit_variant(self) -> Res<()> {
        self.tracer.last = Fmt::Unit;
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Res<S::Value> {
        self.tracer.last = Fmt::Unknown;
        seed.deserialize(&mut *self.tracer)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Res<V::Value> {
        let (v, fmts) = self.tracer.elements(len, visitor)?;
        self.tracer.last = Fmt::Tuple(fmts);
        Ok(v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        let (v, fmts) = self.tracer.elements(fields.len(), visitor)?;
        self.tracer.last = Fmt::Tuple(fmts);
        Ok(v)
    }
}

macro_rules! primitives {
    ($($method:ident $visit:ident $name:literal $value:expr,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
            self.prim($name)?;
            visitor.$visit($value)
        }
    )*};
}

macro_rules! integers {
    ($($method:ident $visit:ident $name:literal $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
            self.prim($name)?;
            let value = match self.profile {
                0 => 1,
                1 => <$ty>::from_le_bytes([1; std::mem::size_of::<$ty>()]),
                _ => 0,
            };
            visitor.$visit(value)
        }
    )*};
}

impl<'de> Deserializer<'de> for &mut Tracer {
    type Error = Untraceable;

    integers! {
        deserialize_i8 visit_i8 "i8" i8,
        deserialize_i16 visit_i16 "i16" i16,
        deserialize_i32 visit_i32 "i32" i32,
        deserialize_i64 visit_i64 "i64" i64,
        deserialize_i128 visit_i128 "i128" i128,
        deserialize_u8 visit_u8 "u8" u8,
        deserialize_u16 visit_u16 "u16" u16,
        deserialize_u32 visit_u32 "u32" u32,
        deserialize_u64 visit_u64 "u64" u64,
        deserialize_u128 visit_u128 "u128" u128,
    }

    primitives! {
        deserialize_bool visit_bool "bool" false,
        deserialize_f32 visit_f32 "f32" 0.0,
        deserialize_f64 visit_f64 "f64" 0.0,
        deserialize_char visit_char "char" 'a',
        deserialize_str visit_str "str" "",
        deserialize_string visit_string "str" String::new(),
        deserialize_bytes visit_bytes "bytes" &[],
        deserialize_byte_buf visit_byte_buf "bytes" Vec::new(),
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
        Err(Untraceable("the type asks for deserialize_any".into()))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
        Err(Untraceable("the type asks for an identifier".into()))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
        Err(Untraceable("the type skips a value".into()))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.enter()?;
        let r = if self.value_mode > 0 {
            visitor.visit_none()?
        } else {
            self.last = Fmt::Unknown;
            let r = visitor.visit_some(&mut *self)?;
            let inner = std::mem::take(&mut self.last);
            self.last = Fmt::Option(Box::new(inner));
            r
        };
        self.leave();
        Ok(r)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.prim("()")?;
        self.last = Fmt::Unit;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        let key = (3, name, &[][..], 1);
        self.container(
            key,
            || Body::Newtype(None),
            |t, _| visitor.visit_newtype_struct(&mut *t),
        )
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.enter()?;
        let len = usize::from(self.value_mode == 0);
        let (r, mut fmts) = self.elements(len, visitor)?;
        self.last = Fmt::Seq(Box::new(fmts.pop().unwrap_or_default()));
        self.leave();
        Ok(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Res<V::Value> {
        self.enter()?;
        let (r, fmts) = self.elements(len, visitor)?;
        self.last = Fmt::Tuple(fmts);
        self.leave();
        Ok(r)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Res<V::Value> {
        self.container(
            (2, name, &[], len),
            || Body::Fields(None),
            |t, _| {
                let (r, fmts) = t.elements(len, visitor)?;
                t.last = Fmt::Tuple(fmts);
                Ok(r)
            },
        )
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.enter()?;
        self.frames.push(Vec::new());
        let left = usize::from(self.value_mode == 0);
        let r = visitor.visit_map(Entries {
            tracer: &mut *self,
            left,
        });
        let mut fmts = self.frames.pop().unwrap_or_default().into_iter();
        let r = r?;
        let k = fmts.next().unwrap_or_default();
        let v = fmts.next().unwrap_or_default();
        self.last = Fmt::Map(Box::new(k), Box::new(v));
        self.leave();
        Ok(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.container(
            (1, name, fields, fields.len()),
            || Body::Fields(None),
            |t, _| {
                let (r, fmts) = t.elements(fields.len(), visitor)?;
                t.last = Fmt::Tuple(fmts);
                Ok(r)
            },
        )
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.container(
            (4, name, variants, variants.len()),
            || Body::Enum(vec![None; variants.len()]),
            |t, choice| {
                visitor.visit_enum(Variant {
                    tracer: &mut *t,
                    choice,
                })
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::{BTreeMap, HashMap};

    fn text<T: DeserializeOwned>() -> String {
        shape_text::<T>().expect("traceable")
    }

    #[test]
    fn primitives_options_sequences_and_maps_have_their_own_tokens() {
        assert_eq!(text::<u32>(), "u32");
        assert_ne!(text::<u32>(), text::<i64>());
        assert_eq!(text::<Option<String>>(), "option<str>");
        assert_eq!(text::<Vec<(u8, bool)>>(), "seq<(u8,bool)>");
        assert_eq!(text::<BTreeMap<String, f64>>(), "map<str,f64>");
        assert_eq!(
            text::<HashMap<String, f64>>(),
            text::<BTreeMap<String, f64>>()
        );
        assert_eq!(text::<[u16; 3]>(), "(u16,u16,u16)");
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct A {
        x: u32,
        y: Option<String>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Renamed {
        first: u32,
        second: Option<String>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wider {
        x: u32,
        y: Option<String>,
        z: bool,
    }

    #[test]
    fn names_are_left_out_and_fields_count() {
        assert_eq!(text::<A>(), "(u32,option<str>)");
        assert_eq!(text::<A>(), text::<Renamed>());
        assert_ne!(text::<A>(), text::<Wider>());
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum E {
        Unit,
        New(u8),
        Tuple(u16, u32),
        Struct { a: String, b: Inner },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Inner {
        P(i8),
        Q(i16),
    }

    #[test]
    fn every_variant_of_every_enum_is_traced() {
        assert_eq!(text::<E>(), "enum{()|u8|(u16,u32)|(str,enum{i8|i16})}");
        assert_eq!(text::<Vec<E>>(), format!("seq<{}>", text::<E>()));
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Tree {
        Node(Box<Tree>, Box<Tree>),
        Leaf(u8),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Dir {
        name: String,
        children: Vec<Dir>,
        parent: Option<Box<Dir>>,
    }

    #[test]
    fn recursive_types_are_cut_where_they_repeat() {
        assert_eq!(text::<Tree>(), "enum{(rec1,rec1)|u8}");
        assert_eq!(text::<Dir>(), "(str,seq<rec1>,option<rec1>)");
    }

    struct Any;
    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(de::IgnoredAny).map(|_| Any)
        }
    }

    struct Panics;
    impl<'de> Deserialize<'de> for Panics {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            panic!("no")
        }
    }

    #[test]
    fn a_type_that_refuses_the_first_placeholder_is_traced_with_the_next() {
        // a key's version (its high half) must not be zero
        assert_eq!(text::<crate::RawKey>(), "u64");
        assert_eq!(text::<(crate::Key<A>, u8)>(), "(u64,u8)");
    }

    #[test]
    fn an_untraceable_type_has_no_fingerprint() {
        assert_eq!(shape_text::<Any>(), None);
        assert_eq!(fingerprint::<(u8, Any)>(), None);
        assert_eq!(fingerprint::<Panics>(), None);
        assert!(fingerprint::<A>().is_some());
        assert_eq!(fingerprint::<A>(), fingerprint::<Renamed>());
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Status {
        Open,
        Moved(u8),
        Closed { at: i64 },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrapped(u16);

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Row {
        name: String,
        status: Status,
        level: Wrapped,
        tags: Vec<Option<char>>,
    }

    #[test]
    fn a_named_shape_keeps_the_names_of_structs_fields_and_variants() {
        let shape = describe::<Row>().expect("traceable");
        let TypeShape::Struct { name, fields } = shape else {
            panic!("a struct: {shape:?}")
        };
        assert_eq!(name, "Row");
        let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
        assert_eq!(names, ["name", "status", "level", "tags"]);
        assert_eq!(fields[0].1, TypeShape::Str);
        assert_eq!(
            fields[1].1,
            TypeShape::Enum {
                name: "Status",
                variants: vec![
                    ("Open", TypeShape::Unit),
                    ("Moved", TypeShape::U8),
                    ("Closed", TypeShape::Tuple(vec![TypeShape::I64])),
                ],
            }
        );
        assert_eq!(
            fields[2].1,
            TypeShape::Newtype {
                name: "Wrapped",
                inner: Box::new(TypeShape::U16)
            }
        );
        assert_eq!(
            fields[3].1,
            TypeShape::Seq(Box::new(TypeShape::Option(Box::new(TypeShape::Char))))
        );
    }

    #[test]
    fn a_recursive_type_names_the_container_it_repeats() {
        let shape = describe::<Tree>().expect("traceable");
        let TypeShape::Enum { variants, .. } = &shape else {
            panic!("an enum: {shape:?}")
        };
        assert!(
            format!("{variants:?}").contains("Recursive(1)"),
            "{variants:?}"
        );
    }

    #[test]
    fn an_untraceable_type_has_no_named_shape() {
        assert_eq!(describe::<Any>(), None);
    }
}
