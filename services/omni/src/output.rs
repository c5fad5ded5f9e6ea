//! How results are shown: aligned text tables for people, proto3 JSON (`--json`) for scripts.

use std::io::Write;

use omni_proto::common::v1::Money;
use omni_proto::pbjson_types::Timestamp;
use serde::Serialize;

use crate::error::CliError;

/// Where a command writes, and in which form.
pub struct Output<'a> {
    pub json: bool,
    pub out: &'a mut (dyn Write + Send),
}

impl Output<'_> {
    /// Prints `message` as proto3 JSON with `--json`, otherwise what `human` renders.
    pub fn show<M: Serialize>(
        &mut self,
        message: &M,
        human: impl FnOnce(&M) -> String,
    ) -> Result<(), CliError> {
        if self.json {
            let text = serde_json::to_string_pretty(message)
                .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
            writeln!(self.out, "{text}")?;
        } else {
            let text = human(message);
            write!(self.out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(self.out)?;
            }
        }
        Ok(())
    }
}

/// A table with a header row; columns are as wide as their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        if self.rows.is_empty() {
            return "(none)\n".to_owned();
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let line = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ");
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `label: value` lines, aligned on the colon.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// `128.00 CNY`: two decimals, the minor unit of the currencies Omni is run with; the JSON
/// output carries the exact minor units.
pub fn money(m: Option<&Money>) -> String {
    match m {
        None => "-".to_owned(),
        Some(m) => {
            let sign = if m.minor_units < 0 { "-" } else { "" };
            let abs = m.minor_units.unsigned_abs();
            format!("{sign}{}.{:02} {}", abs / 100, abs % 100, m.currency)
        }
    }
}

pub fn timestamp(t: Option<&Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// An enum value's name without its type prefix (`ORDER_STATUS_PICKED_UP` → `PICKED_UP`);
/// `name` is `Enum::try_from(raw).map(Enum::as_str_name)`. A value this build does not know
/// (a newer server) is shown as its number.
pub fn label<E>(name: Result<&'static str, E>, prefix: &str, raw: i32) -> String {
    match name {
        Ok(full) => full.strip_prefix(prefix).unwrap_or(full).to_owned(),
        Err(_) => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let mut t = Table::new(["ID", "NAME"]);
        t.row(vec!["store-1".into(), "Jing'an".into()]);
        t.row(vec!["wh".into(), "Jiading warehouse".into()]);
        assert_eq!(
            t.render(),
            "ID       NAME\nstore-1  Jing'an\nwh       Jiading warehouse\n"
        );
        assert_eq!(Table::new(["A"]).render(), "(none)\n");
    }

    #[test]
    fn money_shows_two_decimals_and_sign() {
        let m = |minor_units| Money {
            minor_units,
            currency: "CNY".into(),
        };
        assert_eq!(money(Some(&m(12800))), "128.00 CNY");
        assert_eq!(money(Some(&m(-5))), "-0.05 CNY");
        assert_eq!(money(None), "-");
    }
}
