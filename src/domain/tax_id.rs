//! A customer tax id the service accepts (`{type, value}`), checked before
//! Stripe sees it and written in each kind's usual form: the VAT numbers of the
//! EU (per member state), the UK, Switzerland and Norway, a US EIN and an
//! Australian ABN.

use std::fmt;

/// The tax id kinds the service supports (Stripe knows more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxIdKind {
    EuVat,
    GbVat,
    ChVat,
    NoVat,
    UsEin,
    AuAbn,
}

pub const TAX_ID_KINDS: [TaxIdKind; 6] = [
    TaxIdKind::EuVat,
    TaxIdKind::GbVat,
    TaxIdKind::ChVat,
    TaxIdKind::NoVat,
    TaxIdKind::UsEin,
    TaxIdKind::AuAbn,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be one of eu_vat, gb_vat, ch_vat, no_vat, us_ein, au_abn")]
pub struct UnsupportedTaxIdKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not a well-formed {0} number")]
pub struct InvalidTaxIdNumber(pub &'static str);

impl TaxIdKind {
    pub fn parse(value: &str) -> Result<TaxIdKind, UnsupportedTaxIdKind> {
        TAX_ID_KINDS
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or(UnsupportedTaxIdKind)
    }

    /// Stripe's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaxIdKind::EuVat => "eu_vat",
            TaxIdKind::GbVat => "gb_vat",
            TaxIdKind::ChVat => "ch_vat",
            TaxIdKind::NoVat => "no_vat",
            TaxIdKind::UsEin => "us_ein",
            TaxIdKind::AuAbn => "au_abn",
        }
    }
}

impl fmt::Display for TaxIdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digits/letters after an EU VAT number's prefix, per member state:
/// `9` a digit, `A` a letter, `*` either, anything else itself.
const EU_VAT: [(&str, &[&str]); 28] = [
    ("AT", &["U99999999"]),
    ("BE", &["0999999999", "1999999999"]),
    ("BG", &["999999999", "9999999999"]),
    ("CY", &["99999999A"]),
    ("CZ", &["99999999", "999999999", "9999999999"]),
    ("DE", &["999999999"]),
    ("DK", &["99999999"]),
    ("EE", &["999999999"]),
    ("EL", &["999999999"]),
    ("ES", &["*9999999*"]),
    ("FI", &["99999999"]),
    ("FR", &["**999999999"]),
    ("HR", &["99999999999"]),
    ("HU", &["99999999"]),
    ("IE", &["9999999A", "9999999AA", "9*99999A"]),
    ("IT", &["99999999999"]),
    ("LT", &["999999999", "999999999999"]),
    ("LU", &["99999999"]),
    ("LV", &["99999999999"]),
    ("MT", &["99999999"]),
    ("NL", &["999999999B99"]),
    ("PL", &["9999999999"]),
    ("PT", &["999999999"]),
    (
        "RO",
        &[
            "99",
            "999",
            "9999",
            "99999",
            "999999",
            "9999999",
            "99999999",
            "999999999",
            "9999999999",
        ],
    ),
    ("SE", &["999999999999"]),
    ("SI", &["99999999"]),
    ("SK", &["9999999999"]),
    ("XI", &["999999999", "999999999999"]),
];

fn fits(pattern: &str, value: &str) -> bool {
    pattern.len() == value.len()
        && pattern.bytes().zip(value.bytes()).all(|(p, v)| match p {
            b'9' => v.is_ascii_digit(),
            b'A' => v.is_ascii_uppercase(),
            b'*' => v.is_ascii_uppercase() || v.is_ascii_digit(),
            other => other == v,
        })
}

/// A well-formed tax id: its kind and its number in the kind's usual form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxIdNumber {
    pub kind: TaxIdKind,
    pub value: String,
}

impl TaxIdNumber {
    /// Checks `value` for `kind`; spaces, dots and dashes are ignored, case too.
    pub fn parse(kind: TaxIdKind, value: &str) -> Result<TaxIdNumber, InvalidTaxIdNumber> {
        let bad = InvalidTaxIdNumber(kind.as_str());
        if value.len() > 64 {
            return Err(bad);
        }
        let v: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !v.is_ascii() {
            return Err(bad);
        }
        let canonical = match kind {
            TaxIdKind::EuVat => {
                if v.len() < 4 {
                    return Err(bad);
                }
                let (prefix, rest) = v.split_at(2);
                let patterns = EU_VAT
                    .iter()
                    .find(|(p, _)| *p == prefix)
                    .map(|(_, patterns)| *patterns)
                    .ok_or(bad)?;
                patterns.iter().any(|p| fits(p, rest)).then(|| v.clone())
            }
            TaxIdKind::GbVat => {
                let rest = v.strip_prefix("GB").unwrap_or(&v);
                ["999999999", "999999999999", "GD999", "HA999"]
                    .iter()
                    .any(|p| fits(p, rest))
                    .then(|| format!("GB{rest}"))
            }
            TaxIdKind::ChVat => ["MWST", "TVA", "IVA"].iter().find_map(|suffix| {
                let digits = v.strip_suffix(suffix)?.strip_prefix("CHE")?;
                fits("999999999", digits).then(|| {
                    format!(
                        "CHE-{}.{}.{} {suffix}",
                        &digits[0..3],
                        &digits[3..6],
                        &digits[6..9]
                    )
                })
            }),
            TaxIdKind::NoVat => fits("999999999MVA", &v).then(|| v.clone()),
            TaxIdKind::UsEin => fits("999999999", &v).then(|| format!("{}-{}", &v[..2], &v[2..])),
            TaxIdKind::AuAbn => fits("99999999999", &v).then(|| v.clone()),
        };
        canonical
            .map(|value| TaxIdNumber { kind, value })
            .ok_or(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: &str, value: &str) -> Result<String, InvalidTaxIdNumber> {
        TaxIdNumber::parse(TaxIdKind::parse(kind).unwrap(), value).map(|t| t.value)
    }

    #[test]
    fn numbers_in_their_usual_form() {
        assert_eq!(parse("eu_vat", "de 123 456 789").unwrap(), "DE123456789");
        assert_eq!(parse("eu_vat", "ATU12345678").unwrap(), "ATU12345678");
        assert_eq!(parse("eu_vat", "NL123456789B01").unwrap(), "NL123456789B01");
        assert_eq!(parse("gb_vat", "123456789").unwrap(), "GB123456789");
        assert_eq!(
            parse("ch_vat", "CHE123456789MWST").unwrap(),
            "CHE-123.456.789 MWST"
        );
        assert_eq!(parse("no_vat", "123456789MVA").unwrap(), "123456789MVA");
        assert_eq!(parse("us_ein", "12-3456789").unwrap(), "12-3456789");
        assert_eq!(parse("au_abn", "12 345 678 912").unwrap(), "12345678912");
    }

    #[test]
    fn malformed_numbers_and_kinds_are_refused() {
        for (kind, value) in [
            ("eu_vat", "DE12345678"),
            ("eu_vat", "XX123456789"),
            ("eu_vat", "DE1234567890"),
            ("gb_vat", "GB1234"),
            ("us_ein", "12-345678"),
            ("au_abn", "ABN"),
            ("eu_vat", "DÉ123456789"),
        ] {
            assert!(parse(kind, value).is_err(), "{kind} {value}");
        }
        assert!(TaxIdKind::parse("in_gst").is_err());
        assert!(!InvalidTaxIdNumber("eu_vat").to_string().contains("DE"));
    }
}
