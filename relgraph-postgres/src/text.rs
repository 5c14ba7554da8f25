//! SQL values as text: PostgreSQL's `COPY` text format (and the text of statement
//! parameters, cast to the column's type by the statement).

use std::fmt::Write as _;

use crate::codec::{ColType, Val};

/// The text of a value (no `COPY` escaping); `None` for NULL.
///
/// # Errors
///
/// A string with a NUL character (PostgreSQL's `text` and `jsonb` cannot hold one).
pub(crate) fn val_text(v: &Val) -> Result<Option<String>, String> {
    Ok(Some(match v {
        Val::Null => return Ok(None),
        Val::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Big(s) => s.clone(),
        Val::Float(f) => float_text(*f),
        Val::Text(s) => {
            if s.contains('\0') {
                return Err(format!("the string {s:?} holds a NUL character"));
            }
            s.clone()
        }
        Val::Bytes(b) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("\\x");
            for x in b {
                let _ = write!(s, "{x:02x}");
            }
            s
        }
        Val::Json(j) => {
            let s = j.to_string();
            if s.contains("\\u0000") {
                return Err(format!("the JSON value {s} holds a NUL character"));
            }
            s
        }
    }))
}

pub(crate) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f:?}")
    }
}

/// Appends a value to a `COPY` text row.
pub(crate) fn copy_field(out: &mut Vec<u8>, v: &Val) -> Result<(), String> {
    match val_text(v)? {
        None => out.extend_from_slice(b"\\N"),
        Some(s) => escape(out, &s),
    }
    Ok(())
}

pub(crate) fn escape(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// Splits `COPY ... TO STDOUT` text output into rows of unescaped fields (`None`: NULL).
pub(crate) fn copy_rows(data: &[u8]) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut rows = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let mut row = Vec::new();
        for field in line.split(|&b| b == b'\t') {
            if field == b"\\N" {
                row.push(None);
                continue;
            }
            let mut out = Vec::with_capacity(field.len());
            let mut i = 0;
            while i < field.len() {
                let b = field[i];
                if b == b'\\' && i + 1 < field.len() {
                    i += 1;
                    out.push(match field[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'f' => 12,
                        b'v' => 11,
                        other => other,
                    });
                } else {
                    out.push(b);
                }
                i += 1;
            }
            row.push(Some(
                String::from_utf8(out).map_err(|_| "COPY output is not UTF-8".to_string())?,
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A column's value from its text (`None`: NULL).
pub(crate) fn parse_val(s: Option<&str>, ty: &ColType) -> Result<Val, String> {
    let Some(s) = s else { return Ok(Val::Null) };
    Ok(match ty {
        ColType::Bool => Val::Bool(matches!(s, "t" | "true" | "1")),
        ColType::Small | ColType::Int | ColType::Big => {
            Val::Int(s.parse().map_err(|_| format!("not an integer: {s}"))?)
        }
        ColType::Numeric20 | ColType::Numeric39 => Val::Big(s.to_string()),
        ColType::Real | ColType::Double => Val::Float(match s {
            "NaN" => f64::NAN,
            "Infinity" | "inf" => f64::INFINITY,
            "-Infinity" | "-inf" => f64::NEG_INFINITY,
            _ => s.parse().map_err(|_| format!("not a float: {s}"))?,
        }),
        ColType::Char | ColType::Text | ColType::Variant(_) => Val::Text(s.to_string()),
        ColType::Bytes => {
            let hex = s
                .strip_prefix("\\x")
                .ok_or_else(|| format!("not hex bytes: {s}"))?;
            let mut b = Vec::with_capacity(hex.len() / 2);
            for i in (0..hex.len()).step_by(2) {
                b.push(
                    u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16)
                        .map_err(|_| format!("not hex bytes: {s}"))?,
                );
            }
            Val::Bytes(b)
        }
        ColType::Json => Val::Json(serde_json::from_str(s).map_err(|e| format!("{e}: {s}"))?),
    })
}
