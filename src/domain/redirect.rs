use std::fmt;

use url::Url;

/// An absolute http(s) URL whose origin is on the allow-list: Checkout and the
/// portal redirect the user's browser here, so an open redirect would let anyone
/// bounce our users to a phishing page with Stripe's reputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUrl(Url);

impl RedirectUrl {
    pub fn parse<'a>(
        value: &str,
        allowed_origins: impl IntoIterator<Item = &'a str>,
    ) -> Result<RedirectUrl, DisallowedRedirect> {
        let url = Url::parse(value).map_err(|_| DisallowedRedirect)?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(DisallowedRedirect);
        }
        let origin = url.origin();
        let allowed = allowed_origins
            .into_iter()
            .filter_map(|o| Url::parse(o).ok())
            .any(|o| o.origin() == origin);
        if allowed {
            Ok(RedirectUrl(url))
        } else {
            Err(DisallowedRedirect)
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RedirectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an absolute http(s) URL on an allowed origin")]
pub struct DisallowedRedirect;

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: [&str; 1] = ["https://app.example.com"];

    #[test]
    fn same_origin_is_accepted() {
        assert!(RedirectUrl::parse("https://app.example.com/settings?x=1", ALLOWED).is_ok());
    }

    #[test]
    fn other_origins_are_rejected() {
        for bad in [
            "https://evil.example.com/",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.com/",
            "javascript:alert(1)",
            "/relative",
            "https://app.example.com@evil.com/",
        ] {
            assert!(RedirectUrl::parse(bad, ALLOWED).is_err(), "{bad} accepted");
        }
    }
}
