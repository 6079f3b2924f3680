//! Tax id types Stripe knows and the value formats the simulator checks, as
//! Stripe does on `POST /v1/customers/{id}/tax_ids` (`tax_id_invalid`).
//!
//! Exact formats for the ids billing code meets most (`eu_vat` per member state,
//! `gb_vat`, `ch_vat`, `no_vat`, `us_ein`, `au_abn`, `nz_gst`, `ca_bn`); any other
//! type Stripe knows accepts 1–50 letters, digits and `-./ ` (Stripe checks those
//! too, the simulator does not model each). Spaces, dots and dashes are ignored
//! where the format has none.

/// Every tax id type of the `2026-09-30` API.
pub(crate) const TYPES: [&str; 117] = [
    "ad_nrt",
    "ae_trn",
    "al_tin",
    "am_tin",
    "ao_tin",
    "ar_cuit",
    "au_abn",
    "au_arn",
    "aw_tin",
    "az_tin",
    "ba_tin",
    "bb_tin",
    "bd_bin",
    "bf_ifu",
    "bg_uic",
    "bh_vat",
    "bj_ifu",
    "bo_tin",
    "br_cnpj",
    "br_cpf",
    "bs_tin",
    "by_tin",
    "ca_bn",
    "ca_gst_hst",
    "ca_pst_bc",
    "ca_pst_mb",
    "ca_pst_sk",
    "ca_qst",
    "cd_nif",
    "ch_uid",
    "ch_vat",
    "cl_tin",
    "cm_niu",
    "cn_tin",
    "co_nit",
    "cr_tin",
    "cv_nif",
    "de_stn",
    "do_rcn",
    "ec_ruc",
    "eg_tin",
    "es_cif",
    "et_tin",
    "eu_oss_vat",
    "eu_vat",
    "fo_vat",
    "gb_vat",
    "ge_vat",
    "gi_tin",
    "gn_nif",
    "hk_br",
    "hr_oib",
    "hu_tin",
    "ic_nif",
    "id_npwp",
    "il_vat",
    "in_gst",
    "is_vat",
    "it_cf",
    "jp_cn",
    "jp_rn",
    "jp_trn",
    "ke_pin",
    "kg_tin",
    "kh_tin",
    "kr_brn",
    "kz_bin",
    "la_tin",
    "li_uid",
    "li_vat",
    "lk_vat",
    "ma_vat",
    "md_vat",
    "me_pib",
    "mk_vat",
    "mr_nif",
    "mx_rfc",
    "my_frp",
    "my_itn",
    "my_sst",
    "ng_tin",
    "no_vat",
    "no_voec",
    "np_pan",
    "nz_gst",
    "om_vat",
    "pe_ruc",
    "ph_tin",
    "pl_nip",
    "py_ruc",
    "ro_tin",
    "rs_pib",
    "ru_inn",
    "ru_kpp",
    "sa_vat",
    "sg_gst",
    "sg_uen",
    "si_tin",
    "sn_ninea",
    "sr_fin",
    "sv_nit",
    "th_vat",
    "tj_tin",
    "tr_tin",
    "tw_vat",
    "tz_vat",
    "ua_vat",
    "ug_tin",
    "us_ein",
    "uy_ruc",
    "uz_tin",
    "uz_vat",
    "ve_rif",
    "vn_tin",
    "za_vat",
    "zm_tin",
    "zw_tin",
];

/// Types whose numbers Stripe verifies with the tax authority (VIES, HMRC, ABR):
/// their verification starts `pending`; every other type is `unavailable`.
pub(crate) const VERIFIED_TYPES: [&str; 3] = ["eu_vat", "gb_vat", "au_abn"];

/// `eu_vat` formats after the two-letter prefix: `9` a digit, `A` a letter, `*` a
/// letter or digit, anything else itself.
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
    // Northern Ireland keeps EU VAT for goods.
    ("XI", &["999999999", "999999999999"]),
];

fn matches(pattern: &str, value: &str) -> bool {
    pattern.len() == value.len()
        && pattern.bytes().zip(value.bytes()).all(|(p, v)| match p {
            b'9' => v.is_ascii_digit(),
            b'A' => v.is_ascii_uppercase(),
            b'*' => v.is_ascii_uppercase() || v.is_ascii_digit(),
            other => other == v,
        })
}

fn any(patterns: &[&str], value: &str) -> bool {
    patterns.iter().any(|p| matches(p, value))
}

/// Upper case without spaces, dots and dashes.
fn compact(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Checks `value` for `kind`; returns the country the id belongs to. `Err(())`
/// for a value Stripe would refuse.
pub(crate) fn check(kind: &str, value: &str) -> Result<Option<String>, ()> {
    let v = compact(value);
    let ok = |country: &str, good: bool| {
        if good {
            Ok(Some(country.to_string()))
        } else {
            Err(())
        }
    };
    match kind {
        "eu_vat" => {
            if v.len() < 4 || !v.is_char_boundary(2) {
                return Err(());
            }
            let (prefix, rest) = v.split_at(2);
            let Some((_, patterns)) = EU_VAT.iter().find(|(p, _)| *p == prefix) else {
                return Err(());
            };
            let country = match prefix {
                "EL" => "GR",
                "XI" => "GB",
                p => p,
            };
            ok(country, any(patterns, rest))
        }
        "gb_vat" => {
            let rest = v.strip_prefix("GB").unwrap_or(&v);
            ok(
                "GB",
                any(&["999999999", "999999999999", "GD999", "HA999"], rest),
            )
        }
        "ch_vat" => {
            // CHE-123.456.789 MWST (or TVA, IVA).
            let ok_format = ["MWST", "TVA", "IVA"].iter().any(|suffix| {
                v.strip_suffix(suffix)
                    .is_some_and(|r| matches("CHE999999999", r))
            });
            ok("CH", ok_format)
        }
        "no_vat" => ok("NO", matches("999999999MVA", &v)),
        "us_ein" => ok("US", matches("999999999", &v) && value.trim().len() <= 12),
        "au_abn" => ok("AU", matches("99999999999", &v)),
        "nz_gst" => ok("NZ", any(&["99999999", "999999999"], &v)),
        "ca_bn" => ok("CA", matches("999999999", &v)),
        other if TYPES.contains(&other) => {
            let good = (1..=50).contains(&value.trim().chars().count())
                && value
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | ' '));
            let country = other.split('_').next().unwrap_or("").to_ascii_uppercase();
            if !good {
                Err(())
            } else if other.starts_with("eu_") {
                Ok(None)
            } else {
                Ok(Some(country))
            }
        }
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu_vat_numbers() {
        assert_eq!(check("eu_vat", "DE123456789"), Ok(Some("DE".into())));
        assert_eq!(check("eu_vat", "de 123 456 789"), Ok(Some("DE".into())));
        assert_eq!(check("eu_vat", "ATU12345678"), Ok(Some("AT".into())));
        assert_eq!(check("eu_vat", "FRAB123456789"), Ok(Some("FR".into())));
        assert_eq!(check("eu_vat", "NL123456789B01"), Ok(Some("NL".into())));
        assert_eq!(check("eu_vat", "IE1234567AB"), Ok(Some("IE".into())));
        assert_eq!(check("eu_vat", "EL123456789"), Ok(Some("GR".into())));
        assert_eq!(check("eu_vat", "DE12345678"), Err(()), "one digit short");
        assert_eq!(check("eu_vat", "DE12345678X"), Err(()));
        assert_eq!(
            check("eu_vat", "US123456789"),
            Err(()),
            "not a member state"
        );
        assert_eq!(check("eu_vat", "Ü1"), Err(()));
    }

    #[test]
    fn other_formats() {
        assert_eq!(check("gb_vat", "GB123456789"), Ok(Some("GB".into())));
        assert_eq!(
            check("ch_vat", "CHE-123.456.789 MWST"),
            Ok(Some("CH".into()))
        );
        assert_eq!(check("no_vat", "123456789MVA"), Ok(Some("NO".into())));
        assert_eq!(check("us_ein", "12-3456789"), Ok(Some("US".into())));
        assert_eq!(check("au_abn", "12345678912"), Ok(Some("AU".into())));
        assert_eq!(check("au_abn", "1234"), Err(()));
        assert_eq!(check("jp_cn", "1234567891234"), Ok(Some("JP".into())));
        assert_eq!(check("xx_vat", "123"), Err(()), "not a Stripe type");
        assert!(TYPES.windows(2).all(|w| w[0] < w[1]));
    }
}
