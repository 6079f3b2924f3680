//! Countries and the simulator's tax table: ISO 3166-1 alpha-2 codes (what Stripe
//! accepts in `address[country]`), EU membership, and the standard VAT/GST rate of
//! every country the simulated seller is registered in. Pure data, no state.
//!
//! Rates are in basis points (1900 = 19 %), so a tax is exact integer arithmetic.

/// Every officially assigned ISO 3166-1 alpha-2 code (249).
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The 27 member states of the European Union.
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Standard rates (basis points) where the simulated seller collects tax: the EU
/// (VAT, through the One-Stop Shop), the UK, Switzerland and Norway (VAT),
/// Australia and New Zealand (GST). Anywhere else the seller is not registered and
/// collects nothing (`not_collecting`), as Stripe Tax does without a registration.
const STANDARD_RATES: [(&str, i64, &str, &str); 33] = [
    ("AT", 2000, "VAT", "Austria"),
    ("BE", 2100, "VAT", "Belgium"),
    ("BG", 2000, "VAT", "Bulgaria"),
    ("CY", 1900, "VAT", "Cyprus"),
    ("CZ", 2100, "VAT", "Czechia"),
    ("DE", 1900, "VAT", "Germany"),
    ("DK", 2500, "VAT", "Denmark"),
    ("EE", 2400, "VAT", "Estonia"),
    ("ES", 2100, "VAT", "Spain"),
    ("FI", 2550, "VAT", "Finland"),
    ("FR", 2000, "VAT", "France"),
    ("GR", 2400, "VAT", "Greece"),
    ("HR", 2500, "VAT", "Croatia"),
    ("HU", 2700, "VAT", "Hungary"),
    ("IE", 2300, "VAT", "Ireland"),
    ("IT", 2200, "VAT", "Italy"),
    ("LT", 2100, "VAT", "Lithuania"),
    ("LU", 1700, "VAT", "Luxembourg"),
    ("LV", 2100, "VAT", "Latvia"),
    ("MT", 1800, "VAT", "Malta"),
    ("NL", 2100, "VAT", "Netherlands"),
    ("PL", 2300, "VAT", "Poland"),
    ("PT", 2300, "VAT", "Portugal"),
    ("RO", 2100, "VAT", "Romania"),
    ("SE", 2500, "VAT", "Sweden"),
    ("SI", 2200, "VAT", "Slovenia"),
    ("SK", 2300, "VAT", "Slovakia"),
    ("GB", 2000, "VAT", "United Kingdom"),
    ("CH", 810, "VAT", "Switzerland"),
    ("NO", 2500, "VAT", "Norway"),
    ("AU", 1000, "GST", "Australia"),
    ("NZ", 1500, "GST", "New Zealand"),
    // Listed so a US sale has a named 0 % rate; the seller is not registered there.
    ("US", 0, "Sales tax", "United States"),
];

/// Whether `code` is an ISO 3166-1 alpha-2 country code (upper case, as Stripe wants).
pub(crate) fn is_country(code: &str) -> bool {
    COUNTRIES.binary_search(&code).is_ok()
}

pub(crate) fn is_eu(code: &str) -> bool {
    EU.contains(&code)
}

/// `(basis points, tax name)` of the standard rate, if the seller collects there.
pub(crate) fn standard_rate(country: &str) -> Option<(i64, &'static str)> {
    STANDARD_RATES
        .iter()
        .find(|(c, bp, _, _)| *c == country && *bp > 0)
        .map(|(_, bp, name, _)| (*bp, *name))
}

/// The tax's name in a country (`VAT`, `GST`, `Sales tax`), for 0 % rates too.
pub(crate) fn tax_name(country: &str) -> &'static str {
    STANDARD_RATES
        .iter()
        .find(|(c, _, _, _)| *c == country)
        .map(|(_, _, name, _)| *name)
        .unwrap_or("Tax")
}

/// The country's English name for tax rate descriptions (`VAT Germany`); the code
/// itself for countries outside the table.
pub(crate) fn country_name(country: &str) -> &str {
    STANDARD_RATES
        .iter()
        .find(|(c, _, _, _)| *c == country)
        .map(|(_, _, _, name)| *name)
        .unwrap_or(country)
}

/// `amount × bp / 10 000`, rounded half away from zero (per line, like Stripe).
pub(crate) fn apply_rate(amount: i64, basis_points: i64) -> i64 {
    let num = i128::from(amount) * i128::from(basis_points);
    let rounded = (2 * num.abs() + 10_000) / 20_000;
    (if num < 0 { -rounded } else { rounded }) as i64
}

/// `19.0`, `25.5`: a rate as Stripe's `percentage`.
pub(crate) fn percentage(basis_points: i64) -> f64 {
    basis_points as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_table_is_sorted_and_complete() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        assert!(is_country("DE") && is_country("GB") && is_country("US"));
        assert!(!is_country("XX") && !is_country("de") && !is_country("UK"));
        assert!(EU.iter().all(|c| is_country(c)));
        assert!(STANDARD_RATES.iter().all(|(c, _, _, _)| is_country(c)));
        assert!(
            EU.iter().all(|c| standard_rate(c).is_some()),
            "every EU rate"
        );
    }

    #[test]
    fn rates_round_per_line() {
        assert_eq!(apply_rate(2900, 1900), 551);
        assert_eq!(apply_rate(2320, 1900), 441); // 440.8
        assert_eq!(apply_rate(250, 1900), 48); // 47.5 → 48
        assert_eq!(apply_rate(-250, 1900), -48);
        assert_eq!(apply_rate(1000, 2550), 255);
        assert_eq!(standard_rate("US"), None);
        assert_eq!(standard_rate("DE"), Some((1900, "VAT")));
        assert_eq!(percentage(810), 8.1);
    }
}
