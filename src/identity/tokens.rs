//! Bearer secrets (access and refresh tokens, authorization codes, sign-in flow and invitation
//! tokens): 256 random bits, handed to the client once and stored only as their SHA-256. A
//! database dump therefore holds nothing a client could present.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a secret is for; its prefix makes a leaked value recognizable (and a token of one kind
/// useless as another, since the prefix is hashed with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Bearer token of API requests.
    Access,
    /// Exchanged for a new access token (and a new refresh token).
    Refresh,
    /// OAuth 2.0 authorization code.
    Code,
    /// A sign-in waiting for its second factor.
    SignInFlow,
    /// A one-time invitation to open an account.
    Invitation,
}

impl TokenKind {
    const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "cfa_",
            TokenKind::Refresh => "cfr_",
            TokenKind::Code => "cfc_",
            TokenKind::SignInFlow => "cff_",
            TokenKind::Invitation => "cfi_",
        }
    }
}

/// A freshly made secret. No `Debug` and no `Display`: it leaves only through [`Token::expose`]
/// into the one response that hands it over.
pub struct Token(Zeroizing<String>);

impl Token {
    /// 32 random bytes, base64url, behind the kind's prefix.
    pub fn generate(kind: TokenKind) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes.as_ref()))))
    }

    /// The value to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored.
    pub fn hash(&self) -> Vec<u8> {
        hash(&self.0)
    }
}

/// The stored form of a presented secret. A value of the wrong kind or shape hashes to
/// something that matches no row; callers need not pre-validate.
pub fn hash(presented: &str) -> Vec<u8> {
    Sha256::digest(presented.as_bytes()).to_vec()
}

/// Whether `presented` looks like a secret of `kind` (prefix and length), so garbage is
/// refused before it costs a query.
pub fn looks_like(kind: TokenKind, presented: &str) -> bool {
    presented.len() == kind.prefix().len() + 43
        && presented.starts_with(kind.prefix())
        && presented[kind.prefix().len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_recognizable() {
        let (a, b) = (Token::generate(TokenKind::Access), Token::generate(TokenKind::Access));
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("cfa_"));
        assert!(looks_like(TokenKind::Access, a.expose()));
        assert!(!looks_like(TokenKind::Refresh, a.expose()));
        assert!(!looks_like(TokenKind::Access, "cfa_short"));
    }

    #[test]
    fn only_the_hash_is_stored_and_it_is_stable() {
        let token = Token::generate(TokenKind::Code);
        assert_eq!(token.hash(), hash(token.expose()));
        assert_eq!(token.hash().len(), 32);
    }
}
