//! Time-based directories (`path.format`) from a record's timestamp, in
//! UTC, like Confluent's `TimeBasedPartitioner`.
//!
//! A format is a sequence of tokens `YYYY` (year), `MM` (month), `dd`
//! (day), `HH` (hour), `mm` (minute), literal text in single quotes
//! (`'dt'`), and the characters `/ = - _ .` as they are. Example:
//! `'dt'=YYYY-MM-dd/'hour'=HH` gives `dt=2024-05-01/hour=13`.

/// One piece of a parsed format.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

/// A parsed `path.format`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathFormat(Vec<Piece>);

impl PathFormat {
    /// Parses a format; an error names what is wrong and where.
    pub fn parse(s: &str) -> Result<PathFormat, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let token = [
                ("YYYY", Piece::Year),
                ("MM", Piece::Month),
                ("dd", Piece::Day),
                ("HH", Piece::Hour),
                ("mm", Piece::Minute),
            ]
            .into_iter()
            .find(|(t, _)| rest.starts_with(t));
            if let Some((t, piece)) = token {
                pieces.push(piece);
                rest = &rest[t.len()..];
            } else if let Some(quoted) = rest.strip_prefix('\'') {
                let end = quoted
                    .find('\'')
                    .ok_or_else(|| format!("unclosed quote in {s:?}"))?;
                pieces.push(Piece::Text(quoted[..end].to_owned()));
                rest = &quoted[end + 1..];
            } else {
                let c = rest.chars().next().expect("not empty");
                if !matches!(c, '/' | '=' | '-' | '_' | '.') {
                    return Err(format!(
                        "unexpected {c:?} in {s:?}: use YYYY, MM, dd, HH, mm, text in single quotes, and / = - _ ."
                    ));
                }
                pieces.push(Piece::Text(c.to_string()));
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(PathFormat(pieces))
    }

    /// The directory for `millis` since the epoch (UTC).
    pub fn render(&self, millis: i64) -> String {
        let secs = millis.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Year => out.push_str(&format!("{y:04}")),
                Piece::Month => out.push_str(&format!("{m:02}")),
                Piece::Day => out.push_str(&format!("{d:02}")),
                Piece::Hour => out.push_str(&format!("{:02}", of_day / 3600)),
                Piece::Minute => out.push_str(&format!("{:02}", of_day % 3600 / 60)),
            }
        }
        out
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dates_in_utc() {
        let f = PathFormat::parse("'dt'=YYYY-MM-dd/'hour'=HH").unwrap();
        // 2024-02-29T13:05:00Z
        assert_eq!(f.render(1_709_211_900_000), "dt=2024-02-29/hour=13");
        assert_eq!(f.render(0), "dt=1970-01-01/hour=00");
        assert!(PathFormat::parse("year=YYYY").is_err());
        assert!(PathFormat::parse("'dt=YYYY").is_err());
    }
}
