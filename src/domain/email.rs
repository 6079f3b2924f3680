use validator::ValidateEmail;

/// An email address as Stripe will accept it: trimmed, at most 254 characters,
/// and valid per the HTML5 rules the validator crate implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Email, InvalidEmail> {
        let trimmed = value.trim();
        if trimmed.len() <= 254 && trimmed.validate_email() {
            Ok(Email(trimmed.to_owned()))
        } else {
            Err(InvalidEmail)
        }
    }
}

validated_text!(Email);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a valid email address")]
pub struct InvalidEmail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        assert_eq!(
            Email::parse(" ada@example.com ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
