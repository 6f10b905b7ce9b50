//! SQL values to JSON (source records) and JSON to SQL values (sink rows),
//! with the type mapping docs/connectors/database.md documents:
//! integers and floats are numbers, decimals strings (exact), booleans
//! booleans, text strings, bytes base64 strings (as Kafka Connect's
//! JsonConverter writes them), dates, times and timestamps ISO 8601 strings,
//! JSON columns embedded JSON.

use crate::dialect::{ColumnInfo, Kind};
use base64::Engine;
use serde_json::Value as Json;
use tributary_sdk::sql::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A cell as JSON.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(n) => Json::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.to_string())),
        Value::Text(s)
        | Value::Decimal(s)
        | Value::Date(s)
        | Value::Time(s)
        | Value::Timestamp(s)
        | Value::Timestamptz(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(B64.encode(b)),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
    }
}

/// Days since the Unix epoch as `YYYY-MM-DD` (Kafka Connect's Date).
fn date_from_days(days: i64) -> String {
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y })
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmm` (Kafka
/// Connect's Timestamp).
fn timestamp_from_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}",
        date_from_days(days),
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A JSON field as a value for `column`, or why it does not fit.
pub fn from_json(v: &Json, column: &ColumnInfo) -> Result<Value, String> {
    let wrong = |what: &str| {
        format!(
            "field `{}`: {} does not fit column type {} ({what})",
            column.name,
            short(v),
            column.type_name
        )
    };
    Ok(match (column.kind, v) {
        (_, Json::Null) => Value::Null,
        (Kind::Int, Json::Number(n)) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Integer(f as i64),
                _ => return Err(wrong("expected an integer")),
            },
        },
        (Kind::Int, Json::String(s)) => {
            Value::Integer(s.trim().parse().map_err(|_| wrong("expected an integer"))?)
        }
        (Kind::Int, Json::Bool(b)) => Value::Integer(*b as i64),
        (Kind::Float, Json::Number(n)) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        (Kind::Float, Json::String(s)) => {
            Value::Float(s.trim().parse().map_err(|_| wrong("expected a number"))?)
        }
        (Kind::Decimal, Json::Number(n)) => Value::Decimal(n.to_string()),
        (Kind::Decimal, Json::String(s)) => {
            if s.trim().parse::<f64>().is_err() {
                return Err(wrong("expected a decimal number"));
            }
            Value::Decimal(s.trim().to_owned())
        }
        (Kind::Bool, Json::Bool(b)) => Value::Boolean(*b),
        (Kind::Bool, Json::Number(n)) if n.as_i64().is_some() => {
            Value::Boolean(n.as_i64() != Some(0))
        }
        (Kind::Bool, Json::String(s)) => match s.trim() {
            "true" | "t" | "1" => Value::Boolean(true),
            "false" | "f" | "0" => Value::Boolean(false),
            _ => return Err(wrong("expected a boolean")),
        },
        (Kind::Bytes, Json::String(s)) => {
            Value::Bytes(B64.decode(s).map_err(|_| wrong("expected base64"))?)
        }
        (Kind::Date, Json::String(s)) => Value::Date(s.clone()),
        (Kind::Date, Json::Number(n)) if n.as_i64().is_some() => {
            Value::Date(date_from_days(n.as_i64().unwrap_or(0)))
        }
        (Kind::Time, Json::String(s)) => Value::Time(s.clone()),
        (Kind::Time, Json::Number(n)) if n.as_i64().is_some() => {
            let t = timestamp_from_millis(n.as_i64().unwrap_or(0));
            Value::Time(t[11..].to_owned())
        }
        (Kind::Timestamp, Json::String(s)) => Value::Timestamp(s.clone()),
        (Kind::Timestamptz, Json::String(s)) => Value::Timestamptz(s.clone()),
        (Kind::Timestamp, Json::Number(n)) if n.as_i64().is_some() => {
            Value::Timestamp(timestamp_from_millis(n.as_i64().unwrap_or(0)))
        }
        (Kind::Timestamptz, Json::Number(n)) if n.as_i64().is_some() => Value::Timestamptz(
            format!("{}Z", timestamp_from_millis(n.as_i64().unwrap_or(0))),
        ),
        (Kind::Json, v) => Value::Json(v.to_string()),
        (Kind::Text | Kind::Other, Json::String(s)) => Value::Text(s.clone()),
        (Kind::Text | Kind::Other, Json::Number(n)) => Value::Text(n.to_string()),
        (Kind::Text | Kind::Other, Json::Bool(b)) => Value::Text(b.to_string()),
        (Kind::Text | Kind::Other, v @ (Json::Object(_) | Json::Array(_))) => {
            Value::Text(v.to_string())
        }
        _ => return Err(wrong("no conversion")),
    })
}

fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let mut end = 60;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_connect_logical_types() {
        assert_eq!(date_from_days(0), "1970-01-01");
        assert_eq!(date_from_days(19_844), "2024-05-01");
        assert_eq!(
            timestamp_from_millis(1_714_567_500_250),
            "2024-05-01T12:45:00.250"
        );
        assert_eq!(date_from_days(-1), "1969-12-31");
    }
}
