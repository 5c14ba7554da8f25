//! Rows and payloads between their snapshot encoding (bincode, standard configuration:
//! varint integers, zigzag for signed ones) and SQL values, driven by the named
//! [`TypeShape`] of their type: no Rust type is needed.

use relgraph::TypeShape;
use serde_json::{Map, Number, Value as Json};

/// One SQL value of a typed column, or a nested value as JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64` (`u64`, `i128`, `u128`), in decimal.
    Big(String),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Json(Json),
}

impl Val {
    /// The integer, or -1 (for messages).
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            _ => -1,
        }
    }
}

pub(crate) type Res<T> = Result<T, String>;

/// Reads bincode bytes.
pub(crate) struct Bin<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Bin<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Bin { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| "the encoded value ends early".to_string())?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Res<u128> {
        let b = self.u8()?;
        Ok(match b {
            0..=250 => u128::from(b),
            251 => u128::from(u16::from_le_bytes(
                self.take(2)?.try_into().unwrap_or_default(),
            )),
            252 => u128::from(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            253 => u128::from(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            )),
            254 => u128::from_le_bytes(self.take(16)?.try_into().unwrap_or_default()),
            _ => return Err("invalid varint".into()),
        })
    }

    fn signed(&mut self) -> Res<i128> {
        let z = self.varint()?;
        Ok(((z >> 1) as i128) ^ -((z & 1) as i128))
    }

    fn len(&mut self) -> Res<usize> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| "length out of range".to_string())?;
        if n > self.bytes.len() - self.pos + (1 << 20) {
            return Err("length out of range".into());
        }
        Ok(n)
    }

    fn str(&mut self) -> Res<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }

    fn char(&mut self) -> Res<char> {
        let first = *self
            .bytes
            .get(self.pos)
            .ok_or("the encoded value ends early")?;
        let n = match first {
            0..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| "invalid char".to_string())?;
        s.chars().next().ok_or_else(|| "invalid char".to_string())
    }
}

/// Writes bincode bytes (minimal varints, as the snapshot loader requires).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u128) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u128::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u128::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else if v <= u128::from(u64::MAX) {
        out.push(253);
        out.extend_from_slice(&(v as u64).to_le_bytes());
    } else {
        out.push(254);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_signed(out: &mut Vec<u8>, v: i128) {
    put_varint(out, ((v << 1) ^ (v >> 127)) as u128);
}

/// The shape without newtype wrappers (they add no bytes).
pub(crate) fn peel(mut s: &TypeShape) -> &TypeShape {
    while let TypeShape::Newtype { inner, .. } = s {
        s = inner;
    }
    s
}

/// How a column stores its field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ColType {
    Bool,
    Small,
    Int,
    Big,
    /// `u64`: numeric(20,0).
    Numeric20,
    /// `i128`, `u128`: numeric(39,0).
    Numeric39,
    Real,
    Double,
    Char,
    Text,
    Bytes,
    /// An enum of unit variants: its variant's name.
    Variant(Vec<&'static str>),
    Json,
}

/// The column type of a field shape and whether it is nullable (an option of a scalar).
pub(crate) fn col_type(shape: &TypeShape) -> (ColType, bool) {
    let s = peel(shape);
    if let TypeShape::Option(inner) = s {
        let t = scalar_type(peel(inner));
        if t != ColType::Json {
            return (t, true);
        }
        return (ColType::Json, true);
    }
    (scalar_type(s), false)
}

fn scalar_type(s: &TypeShape) -> ColType {
    match s {
        TypeShape::Bool => ColType::Bool,
        TypeShape::I8 | TypeShape::I16 | TypeShape::U8 => ColType::Small,
        TypeShape::I32 | TypeShape::U16 => ColType::Int,
        TypeShape::I64 | TypeShape::U32 => ColType::Big,
        TypeShape::U64 => ColType::Numeric20,
        TypeShape::I128 | TypeShape::U128 => ColType::Numeric39,
        TypeShape::F32 => ColType::Real,
        TypeShape::F64 => ColType::Double,
        TypeShape::Char => ColType::Char,
        TypeShape::Str => ColType::Text,
        TypeShape::Bytes => ColType::Bytes,
        TypeShape::Enum { variants, .. }
            if !variants.is_empty() && variants.iter().all(|(_, v)| *v == TypeShape::Unit) =>
        {
            ColType::Variant(variants.iter().map(|(n, _)| *n).collect())
        }
        _ => ColType::Json,
    }
}

/// Decodes one column's value of shape `shape` typed `ty`.
pub(crate) fn decode_col(bin: &mut Bin<'_>, shape: &TypeShape, ty: &ColType) -> Res<Val> {
    let s = peel(shape);
    if let (TypeShape::Option(inner), false) = (s, *ty == ColType::Json) {
        return match bin.u8()? {
            0 => Ok(Val::Null),
            1 => decode_scalar(bin, peel(inner), ty),
            _ => Err("invalid option tag".into()),
        };
    }
    if *ty == ColType::Json {
        return Ok(match to_json(bin, shape, &mut Vec::new())? {
            Json::Null => Val::Null,
            j => Val::Json(j),
        });
    }
    decode_scalar(bin, s, ty)
}

fn decode_scalar(bin: &mut Bin<'_>, s: &TypeShape, ty: &ColType) -> Res<Val> {
    Ok(match s {
        TypeShape::Bool => Val::Bool(match bin.u8()? {
            0 => false,
            1 => true,
            _ => return Err("invalid bool".into()),
        }),
        TypeShape::I8 => Val::Int(i64::from(bin.u8()? as i8)),
        TypeShape::U8 => Val::Int(i64::from(bin.u8()?)),
        TypeShape::I16 | TypeShape::I32 | TypeShape::I64 => Val::Int(bin.signed()? as i64),
        TypeShape::U16 | TypeShape::U32 => Val::Int(bin.varint()? as i64),
        TypeShape::U64 | TypeShape::U128 => Val::Big(bin.varint()?.to_string()),
        TypeShape::I128 => Val::Big(bin.signed()?.to_string()),
        TypeShape::F32 => Val::Float(f64::from(f32::from_le_bytes(
            bin.take(4)?.try_into().unwrap_or_default(),
        ))),
        TypeShape::F64 => Val::Float(f64::from_le_bytes(
            bin.take(8)?.try_into().unwrap_or_default(),
        )),
        TypeShape::Char => Val::Text(bin.char()?.to_string()),
        TypeShape::Str => Val::Text(bin.str()?),
        TypeShape::Bytes => {
            let n = bin.len()?;
            Val::Bytes(bin.take(n)?.to_vec())
        }
        TypeShape::Enum { variants, .. } => {
            let i = bin.varint()? as usize;
            let (name, _) = variants.get(i).ok_or("variant index out of range")?;
            Val::Text((*name).to_string())
        }
        _ => return Err(format!("no scalar column for {ty:?}")),
    })
}

/// Encodes one column's value back into bincode.
pub(crate) fn encode_col(out: &mut Vec<u8>, shape: &TypeShape, ty: &ColType, v: &Val) -> Res<()> {
    let s = peel(shape);
    if *ty == ColType::Json {
        let null = Json::Null;
        let j = match v {
            Val::Json(j) => j,
            Val::Null => &null,
            _ => return Err("a JSON value was expected".into()),
        };
        return from_json(out, shape, j, &mut Vec::new());
    }
    if let TypeShape::Option(inner) = s {
        if *v == Val::Null {
            out.push(0);
            return Ok(());
        }
        out.push(1);
        return encode_scalar(out, peel(inner), v);
    }
    encode_scalar(out, s, v)
}

fn int_of(v: &Val) -> Res<i128> {
    match v {
        Val::Int(i) => Ok(i128::from(*i)),
        Val::Big(s) => s.parse().map_err(|_| format!("not an integer: {s}")),
        other => Err(format!("an integer was expected, found {other:?}")),
    }
}

fn uint_of(v: &Val) -> Res<u128> {
    match v {
        Val::Big(s) => s
            .parse()
            .map_err(|_| format!("not an unsigned integer: {s}")),
        _ => u128::try_from(int_of(v)?).map_err(|_| "a negative unsigned integer".into()),
    }
}

fn encode_scalar(out: &mut Vec<u8>, s: &TypeShape, v: &Val) -> Res<()> {
    let range = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("value {v:?} out of range"))
        }
    };
    match (s, v) {
        (TypeShape::Bool, Val::Bool(b)) => out.push(u8::from(*b)),
        (TypeShape::I8, _) => {
            let i = int_of(v)?;
            range(i8::try_from(i).is_ok())?;
            out.push(i as i8 as u8);
        }
        (TypeShape::U8, _) => {
            let i = uint_of(v)?;
            range(u8::try_from(i).is_ok())?;
            out.push(i as u8);
        }
        (TypeShape::I16 | TypeShape::I32 | TypeShape::I64 | TypeShape::I128, _) => {
            let i = int_of(v)?;
            let ok = match s {
                TypeShape::I16 => i16::try_from(i).is_ok(),
                TypeShape::I32 => i32::try_from(i).is_ok(),
                TypeShape::I64 => i64::try_from(i).is_ok(),
                _ => true,
            };
            range(ok)?;
            put_signed(out, i);
        }
        (TypeShape::U16 | TypeShape::U32 | TypeShape::U64 | TypeShape::U128, _) => {
            let i = uint_of(v)?;
            let ok = match s {
                TypeShape::U16 => u16::try_from(i).is_ok(),
                TypeShape::U32 => u32::try_from(i).is_ok(),
                TypeShape::U64 => u64::try_from(i).is_ok(),
                _ => true,
            };
            range(ok)?;
            put_varint(out, i);
        }
        (TypeShape::F32, Val::Float(f)) => out.extend_from_slice(&(*f as f32).to_le_bytes()),
        (TypeShape::F64, Val::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (TypeShape::Char, Val::Text(t)) => {
            let mut it = t.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                _ => return Err(format!("not one character: {t:?}")),
            }
        }
        (TypeShape::Str, Val::Text(t)) => {
            put_varint(out, t.len() as u128);
            out.extend_from_slice(t.as_bytes());
        }
        (TypeShape::Bytes, Val::Bytes(b)) => {
            put_varint(out, b.len() as u128);
            out.extend_from_slice(b);
        }
        (TypeShape::Enum { variants, .. }, Val::Text(t)) => {
            let i = variants
                .iter()
                .position(|(n, _)| n == t)
                .ok_or_else(|| format!("unknown variant {t:?}"))?;
            put_varint(out, i as u128);
        }
        _ => return Err(format!("value {v:?} does not fit the column")),
    }
    Ok(())
}

fn named(s: &TypeShape) -> bool {
    matches!(
        s,
        TypeShape::Struct { .. }
            | TypeShape::TupleStruct { .. }
            | TypeShape::Newtype { .. }
            | TypeShape::Enum { .. }
    )
}

/// Whether a `Some(x)` must be wrapped (`[x]`) to tell it from `None` in JSON.
fn nullable(s: &TypeShape, stack: &[&TypeShape]) -> bool {
    match s {
        TypeShape::Option(_) | TypeShape::Unit => true,
        TypeShape::Newtype { inner, .. } => nullable(inner, stack),
        TypeShape::Recursive(n) => stack
            .len()
            .checked_sub(*n)
            .is_some_and(|i| nullable(stack[i], &stack[..i])),
        _ => false,
    }
}

fn float_json(f: f64) -> Json {
    if f.is_finite() && !(f == 0.0 && f.is_sign_negative()) {
        Number::from_f64(f).map_or(Json::Null, Json::Number)
    } else {
        Json::String(format!("{f}"))
    }
}

fn float_of(j: &Json) -> Res<f64> {
    match j {
        Json::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string()),
        Json::String(s) => s.parse().map_err(|_| format!("not a float: {s}")),
        _ => Err(format!("a float was expected, found {j}")),
    }
}

fn big_json(v: i128) -> Json {
    if let Ok(i) = i64::try_from(v) {
        Json::from(i)
    } else if let Ok(u) = u64::try_from(v) {
        Json::from(u)
    } else {
        Json::String(v.to_string())
    }
}

/// Decodes a nested value into JSON: structs as objects, tuples and sequences as arrays,
/// maps as arrays of `[key, value]`, enums as `"Variant"` or `{"Variant": content}`.
pub(crate) fn to_json<'s>(
    bin: &mut Bin<'_>,
    shape: &'s TypeShape,
    stack: &mut Vec<&'s TypeShape>,
) -> Res<Json> {
    if stack.len() > 256 {
        return Err("nested too deep".into());
    }
    if named(shape) {
        stack.push(shape);
    }
    let out = match shape {
        TypeShape::Bool => Json::Bool(bin.u8()? != 0),
        TypeShape::I8 => Json::from(bin.u8()? as i8),
        TypeShape::U8 => Json::from(bin.u8()?),
        TypeShape::I16 | TypeShape::I32 | TypeShape::I64 | TypeShape::I128 => {
            big_json(bin.signed()?)
        }
        TypeShape::U16 | TypeShape::U32 | TypeShape::U64 => Json::from(bin.varint()? as u64),
        TypeShape::U128 => {
            let v = bin.varint()?;
            u64::try_from(v).map_or_else(|_| Json::String(v.to_string()), Json::from)
        }
        TypeShape::F32 => float_json(f64::from(f32::from_le_bytes(
            bin.take(4)?.try_into().unwrap_or_default(),
        ))),
        TypeShape::F64 => float_json(f64::from_le_bytes(
            bin.take(8)?.try_into().unwrap_or_default(),
        )),
        TypeShape::Char => Json::String(bin.char()?.to_string()),
        TypeShape::Str => Json::String(bin.str()?),
        TypeShape::Bytes => {
            let n = bin.len()?;
            Json::Array(bin.take(n)?.iter().map(|&b| Json::from(b)).collect())
        }
        TypeShape::Unit => Json::Null,
        TypeShape::Option(inner) => match bin.u8()? {
            0 => Json::Null,
            1 => {
                let v = to_json(bin, inner, stack)?;
                if nullable(inner, stack) {
                    Json::Array(vec![v])
                } else {
                    v
                }
            }
            _ => return Err("invalid option tag".into()),
        },
        TypeShape::Seq(e) => {
            let n = bin.len()?;
            let mut a = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                a.push(to_json(bin, e, stack)?);
            }
            Json::Array(a)
        }
        TypeShape::Map(k, v) => {
            let n = bin.len()?;
            let mut a = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let kj = to_json(bin, k, stack)?;
                let vj = to_json(bin, v, stack)?;
                a.push(Json::Array(vec![kj, vj]));
            }
            Json::Array(a)
        }
        TypeShape::Tuple(fs) | TypeShape::TupleStruct { fields: fs, .. } => Json::Array(
            fs.iter()
                .map(|f| to_json(bin, f, stack))
                .collect::<Res<_>>()?,
        ),
        TypeShape::Struct { fields, .. } => {
            let mut m = Map::new();
            for (name, f) in fields {
                m.insert((*name).to_string(), to_json(bin, f, stack)?);
            }
            Json::Object(m)
        }
        TypeShape::Newtype { inner, .. } => to_json(bin, inner, stack)?,
        TypeShape::Enum { variants, .. } => {
            let i = bin.varint()? as usize;
            let (name, content) = variants.get(i).ok_or("variant index out of range")?;
            if *content == TypeShape::Unit {
                Json::String((*name).to_string())
            } else {
                let mut m = Map::new();
                m.insert((*name).to_string(), to_json(bin, content, stack)?);
                Json::Object(m)
            }
        }
        TypeShape::Recursive(n) => {
            let i = stack.len().checked_sub(*n).ok_or("bad recursion")?;
            let target = stack[i];
            // the target pushes itself again
            to_json(bin, target, stack)?
        }
        _ => return Err("unsupported shape".into()),
    };
    if named(shape) {
        stack.pop();
    }
    Ok(out)
}

/// Encodes JSON made by [`to_json`] (or edited by hand in the same form) back into bincode.
pub(crate) fn from_json<'s>(
    out: &mut Vec<u8>,
    shape: &'s TypeShape,
    j: &Json,
    stack: &mut Vec<&'s TypeShape>,
) -> Res<()> {
    if stack.len() > 256 {
        return Err("nested too deep".into());
    }
    if named(shape) {
        stack.push(shape);
    }
    let arr = |j: &'_ Json| -> Res<Vec<Json>> {
        j.as_array()
            .cloned()
            .ok_or_else(|| format!("an array was expected, found {j}"))
    };
    let int = |j: &Json| -> Res<i128> {
        match j {
            Json::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .ok_or_else(|| format!("not an integer: {n}")),
            Json::String(s) => s.parse().map_err(|_| format!("not an integer: {s}")),
            _ => Err(format!("an integer was expected, found {j}")),
        }
    };
    match shape {
        TypeShape::Bool => out.push(u8::from(
            j.as_bool()
                .ok_or_else(|| format!("a bool was expected, found {j}"))?,
        )),
        TypeShape::I8
        | TypeShape::I16
        | TypeShape::I32
        | TypeShape::I64
        | TypeShape::I128
        | TypeShape::U8
        | TypeShape::U16
        | TypeShape::U32
        | TypeShape::U64 => encode_scalar(out, shape, &Val::Big(int(j)?.to_string()))?,
        TypeShape::U128 => {
            let v: u128 = match j {
                Json::String(s) => s.parse().map_err(|_| format!("not an integer: {s}"))?,
                _ => u128::try_from(int(j)?).map_err(|_| "negative".to_string())?,
            };
            put_varint(out, v);
        }
        TypeShape::F32 => out.extend_from_slice(&(float_of(j)? as f32).to_le_bytes()),
        TypeShape::F64 => out.extend_from_slice(&float_of(j)?.to_le_bytes()),
        TypeShape::Char | TypeShape::Str => {
            let s = j
                .as_str()
                .ok_or_else(|| format!("a string was expected, found {j}"))?;
            encode_scalar(out, shape, &Val::Text(s.to_string()))?;
        }
        TypeShape::Bytes => {
            let a = arr(j)?;
            put_varint(out, a.len() as u128);
            for b in a {
                let b = b
                    .as_u64()
                    .filter(|&b| b < 256)
                    .ok_or("a byte was expected")?;
                out.push(b as u8);
            }
        }
        TypeShape::Unit => {}
        TypeShape::Option(inner) => {
            if j.is_null() {
                out.push(0);
            } else {
                out.push(1);
                if nullable(inner, stack) {
                    let a = arr(j)?;
                    let v = a.first().ok_or("an option's value is missing")?;
                    from_json(out, inner, v, stack)?;
                } else {
                    from_json(out, inner, j, stack)?;
                }
            }
        }
        TypeShape::Seq(e) => {
            let a = arr(j)?;
            put_varint(out, a.len() as u128);
            for v in &a {
                from_json(out, e, v, stack)?;
            }
        }
        TypeShape::Map(k, v) => {
            let a = arr(j)?;
            put_varint(out, a.len() as u128);
            for entry in &a {
                let kv = arr(entry)?;
                let [kj, vj] = kv.as_slice() else {
                    return Err("a map entry must be [key, value]".into());
                };
                from_json(out, k, kj, stack)?;
                from_json(out, v, vj, stack)?;
            }
        }
        TypeShape::Tuple(fs) | TypeShape::TupleStruct { fields: fs, .. } => {
            let a = arr(j)?;
            if a.len() != fs.len() {
                return Err(format!("{} elements expected, found {}", fs.len(), a.len()));
            }
            for (f, v) in fs.iter().zip(&a) {
                from_json(out, f, v, stack)?;
            }
        }
        TypeShape::Struct { fields, .. } => {
            let m = j
                .as_object()
                .ok_or_else(|| format!("an object was expected, found {j}"))?;
            for (name, f) in fields {
                let v = m
                    .get(*name)
                    .ok_or_else(|| format!("field {name} is missing"))?;
                from_json(out, f, v, stack)?;
            }
        }
        TypeShape::Newtype { inner, .. } => from_json(out, inner, j, stack)?,
        TypeShape::Enum { variants, .. } => {
            let (name, content) = match j {
                Json::String(s) => (s.as_str(), None),
                Json::Object(m) if m.len() == 1 => {
                    let (k, v) = m.iter().next().ok_or("an empty variant object")?;
                    (k.as_str(), Some(v))
                }
                _ => return Err(format!("a variant was expected, found {j}")),
            };
            let i = variants
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| format!("unknown variant {name:?}"))?;
            put_varint(out, i as u128);
            let shape = &variants[i].1;
            match content {
                None if *shape == TypeShape::Unit => {}
                Some(c) => from_json(out, shape, c, stack)?,
                None => return Err(format!("variant {name} needs content")),
            }
        }
        TypeShape::Recursive(n) => {
            let i = stack.len().checked_sub(*n).ok_or("bad recursion")?;
            let target = stack[i];
            from_json(out, target, j, stack)?;
        }
        _ => return Err("unsupported shape".into()),
    }
    if named(shape) {
        stack.pop();
    }
    Ok(())
}
