//! A tenant's billing address: its tax location, shown on invoices. Checked
//! before anything reaches Stripe: ISO 3166-1 alpha-2 countries, bounded
//! lengths, no control characters. A country table (249 codes and the
//! currency each one pays in by default) is kept here rather than pulled in
//! as a crate: it is data that changes once a decade, and the service needs
//! exactly the codes and a currency per code.

use std::fmt;

/// Every officially assigned ISO 3166-1 alpha-2 code, sorted.
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

/// The currency a country pays in by default, where a plan is likely to be
/// priced in it; anywhere else the plan's own currency is used.
const DEFAULT_CURRENCIES: [(&str, &str); 45] = [
    ("AD", "eur"),
    ("AT", "eur"),
    ("BE", "eur"),
    ("BG", "eur"),
    ("CY", "eur"),
    ("DE", "eur"),
    ("EE", "eur"),
    ("ES", "eur"),
    ("FI", "eur"),
    ("FR", "eur"),
    ("GR", "eur"),
    ("HR", "eur"),
    ("IE", "eur"),
    ("IT", "eur"),
    ("LT", "eur"),
    ("LU", "eur"),
    ("LV", "eur"),
    ("MC", "eur"),
    ("ME", "eur"),
    ("MT", "eur"),
    ("NL", "eur"),
    ("PT", "eur"),
    ("SI", "eur"),
    ("SK", "eur"),
    ("SM", "eur"),
    ("VA", "eur"),
    ("GB", "gbp"),
    ("US", "usd"),
    ("CH", "chf"),
    ("LI", "chf"),
    ("NO", "nok"),
    ("SE", "sek"),
    ("DK", "dkk"),
    ("PL", "pln"),
    ("CZ", "czk"),
    ("HU", "huf"),
    ("RO", "ron"),
    ("CA", "cad"),
    ("AU", "aud"),
    ("NZ", "nzd"),
    ("JP", "jpy"),
    ("IN", "inr"),
    ("BR", "brl"),
    ("MX", "mxn"),
    ("SG", "sgd"),
];

/// An ISO 3166-1 alpha-2 country code (upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 3166-1 alpha-2 country code, such as DE, GB or US")]
pub struct UnknownCountry;

impl Country {
    /// Accepts the code in any case (`de` is `DE`).
    pub fn parse(value: &str) -> Result<Country, UnknownCountry> {
        let upper = value.trim().to_ascii_uppercase();
        COUNTRIES
            .binary_search(&upper.as_str())
            .map(|i| Country(COUNTRIES[i]))
            .map_err(|_| UnknownCountry)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The currency this country pays in by default (`eur` for Germany).
    pub fn default_currency(&self) -> Option<&'static str> {
        DEFAULT_CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, cur)| *cur)
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An ISO 4217 currency code as Stripe writes it (three lower-case letters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a three-letter ISO 4217 currency code, such as eur or usd")]
pub struct InvalidCurrency;

impl Currency {
    /// Accepts the code in any case (`EUR` is `eur`).
    pub fn parse(value: &str) -> Result<Currency, InvalidCurrency> {
        let v = value.trim();
        if v.len() == 3 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(v.to_ascii_lowercase()))
        } else {
            Err(InvalidCurrency)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted value per address field (characters).
pub const ADDRESS_LIMITS: [(&str, usize); 5] = [
    ("line1", 200),
    ("line2", 200),
    ("city", 100),
    ("postal_code", 20),
    ("state", 100),
];

/// One invalid address field; `field` is the address's own key (`city`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressProblem {
    pub field: &'static str,
    pub message: String,
}

/// A billing address as entered, each part optional, checked and trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingAddress {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub state: Option<String>,
    pub country: Option<Country>,
}

/// The raw parts of an address, as a request carries them.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressInput<'a> {
    pub line1: Option<&'a str>,
    pub line2: Option<&'a str>,
    pub city: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub country: Option<&'a str>,
}

fn text(field: &'static str, value: Option<&str>) -> Result<Option<String>, AddressProblem> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let max = ADDRESS_LIMITS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(200, |(_, max)| *max);
    if value.chars().count() > max {
        return Err(AddressProblem {
            field,
            message: format!("must be at most {max} characters"),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(AddressProblem {
            field,
            message: "must not contain control characters".into(),
        });
    }
    Ok(Some(value.to_owned()))
}

impl BillingAddress {
    /// Checks every part; all problems are reported, none echoes a value.
    pub fn parse(input: AddressInput<'_>) -> Result<BillingAddress, Vec<AddressProblem>> {
        let mut problems = Vec::new();
        let mut take = |field, value| match text(field, value) {
            Ok(v) => v,
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let line1 = take("line1", input.line1);
        let line2 = take("line2", input.line2);
        let city = take("city", input.city);
        let postal_code = take("postal_code", input.postal_code);
        let state = take("state", input.state);
        let country = match input.country.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match Country::parse(c) {
                Ok(country) => Some(country),
                Err(e) => {
                    problems.push(AddressProblem {
                        field: "country",
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(BillingAddress {
            line1,
            line2,
            city,
            postal_code,
            state,
            country,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == BillingAddress::default()
    }

    /// The country automatic tax locates the tenant by, or the first part
    /// missing for it: the country everywhere, and a ZIP code in the US or a
    /// postal code in Canada (Stripe Tax cannot place those without one).
    pub fn tax_location(&self) -> Result<Country, AddressProblem> {
        let Some(country) = self.country else {
            return Err(AddressProblem {
                field: "country",
                message: "is required to calculate tax".into(),
            });
        };
        let postal = self.postal_code.as_deref().unwrap_or("");
        let ok = match country.as_str() {
            "US" => {
                let mut parts = postal.split('-');
                let zip = parts.next().unwrap_or("");
                let plus4 = parts.next();
                zip.len() == 5
                    && zip.bytes().all(|b| b.is_ascii_digit())
                    && plus4.is_none_or(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()))
                    && parts.next().is_none()
            }
            "CA" => postal.chars().filter(|c| c.is_ascii_alphanumeric()).count() == 6,
            _ => true,
        };
        if ok {
            Ok(country)
        } else {
            Err(AddressProblem {
                field: "postal_code",
                message: format!("is required to calculate tax in {country}: a valid one"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_iso_codes_in_any_case() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Country::parse("de").unwrap().as_str(), "DE");
        assert!(Country::parse("UK").is_err(), "the UK is GB");
        assert!(Country::parse("Germany").is_err());
        assert_eq!(
            Country::parse("FR").unwrap().default_currency(),
            Some("eur")
        );
        assert_eq!(Country::parse("JM").unwrap().default_currency(), None);
        assert!(DEFAULT_CURRENCIES
            .iter()
            .all(|(c, _)| Country::parse(c).is_ok()));
    }

    #[test]
    fn addresses_are_bounded_and_clean() {
        let long = "x".repeat(2048);
        let problems = BillingAddress::parse(AddressInput {
            city: Some(&long),
            country: Some("XX"),
            line1: Some("Main St\u{0}"),
            ..AddressInput::default()
        })
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["line1", "city", "country"]);
        assert!(problems.iter().all(|p| !p.message.contains('x')), "no echo");
        let ok = BillingAddress::parse(AddressInput {
            city: Some(" Berlin "),
            country: Some("de"),
            line2: Some(""),
            ..AddressInput::default()
        })
        .unwrap();
        assert_eq!(ok.city.as_deref(), Some("Berlin"));
        assert_eq!(ok.line2, None);
        assert_eq!(ok.tax_location().unwrap().as_str(), "DE");
    }

    #[test]
    fn tax_locations_need_a_country_and_american_zip_codes() {
        assert_eq!(
            BillingAddress::default().tax_location().unwrap_err().field,
            "country"
        );
        let us = |zip: Option<&str>| BillingAddress {
            postal_code: zip.map(str::to_owned),
            country: Some(Country::parse("US").unwrap()),
            ..BillingAddress::default()
        };
        assert_eq!(us(None).tax_location().unwrap_err().field, "postal_code");
        assert!(us(Some("94107")).tax_location().is_ok());
        assert!(us(Some("94107-1234")).tax_location().is_ok());
        assert!(us(Some("9410")).tax_location().is_err());
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "eur");
        assert!(Currency::parse("euro").is_err());
    }
}
