//! Signing keys and JWS (RFC 7515) for access tokens.
//!
//! A [`SigningKey`] is parsed from its PKCS#8 form once, at start-up or rotation,
//! and then signs many tokens: parsing an RSA key costs more than signing with it.
//! A [`VerifyingKey`] is built from the public JWK once. Verification pins the
//! algorithm to the key (RFC 8725 §3.1): the token header's `alg` must equal the
//! key's, so `alg: none` and RS256→HS256 confusion are refused by construction.

use crate::{CryptoError, b64};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A JWS algorithm Portcullis signs with (RFC 7518 §3.1, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            other => Err(format!(
                "unsupported signing algorithm {other:?} (expected RS256, ES256 or EdDSA)"
            )),
        }
    }
}

/// A public JWK (RFC 7517) as served in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Key id: the RFC 7638 thumbprint.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// The algorithm the key is for.
    pub alg: String,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve (`P-256`, `Ed25519`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x / OKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    fn new(alg: Algorithm) -> Self {
        let kty = match alg {
            Algorithm::RS256 => "RSA",
            Algorithm::ES256 => "EC",
            Algorithm::EdDSA => "OKP",
        };
        Self {
            kty: kty.into(),
            kid: String::new(),
            use_: "sig".into(),
            alg: alg.as_str().into(),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        }
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        let canonical = match self.kty.as_str() {
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                s(&self.e),
                s(&self.n)
            ),
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                s(&self.crv),
                s(&self.x),
                s(&self.y)
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                s(&self.crv),
                s(&self.x)
            ),
        };
        b64::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }
}

enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key, parsed once.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    pair: KeyPair,
    jwk: Jwk,
    /// base64url of `{"alg","kid","typ":"at+jwt"}`: the same for every token.
    header_b64: String,
    rng: SystemRandom,
    /// ES256 and EdDSA, once [`SigningKey::presign_in_background`] was called.
    presigner: Option<crate::presign::Presigner>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} {}, <private>)", self.alg, self.kid)
    }
}

fn key_err(what: &str) -> impl Fn(aws_lc_rs::error::KeyRejected) -> CryptoError + '_ {
    move |e| CryptoError::Key(format!("{what}: {e}"))
}

impl SigningKey {
    /// Generates a new key; returns its PKCS#8 DER (to encrypt and store) and the parsed key.
    pub fn generate(alg: Algorithm) -> Result<(Vec<u8>, Self), CryptoError> {
        let unspecified = |_| CryptoError::Key(format!("{alg} key generation failed"));
        let der = match alg {
            Algorithm::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(unspecified)?
                .as_ref()
                .to_vec(),
            Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(unspecified)?
            .as_ref()
            .to_vec(),
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(unspecified)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(alg, &der)?;
        Ok((der, key))
    }

    /// Parses a PKCS#8 private key.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Self, CryptoError> {
        let mut jwk = Jwk::new(alg);
        let pair = match alg {
            Algorithm::RS256 => {
                let k = RsaKeyPair::from_pkcs8(der).map_err(key_err("RSA key"))?;
                if k.public_modulus_len() < 256 {
                    return Err(CryptoError::Key(
                        "RSA keys must be at least 2048 bits".into(),
                    ));
                }
                let p = k.public_key();
                jwk.n = Some(b64::encode(p.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(b64::encode(p.exponent().big_endian_without_leading_zero()));
                KeyPair::Rsa(k)
            }
            Algorithm::ES256 => {
                let k = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(key_err("P-256 key"))?;
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let point = k.public_key().as_ref();
                if point.len() != 65 {
                    return Err(CryptoError::Key("unexpected P-256 public key".into()));
                }
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64::encode(&point[1..33]));
                jwk.y = Some(b64::encode(&point[33..65]));
                KeyPair::Ec(k)
            }
            Algorithm::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(key_err("Ed25519 key"))?;
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64::encode(k.public_key().as_ref()));
                KeyPair::Ed(k)
            }
        };
        jwk.kid = jwk.thumbprint();
        let header = serde_json::json!({"alg": alg.as_str(), "kid": jwk.kid, "typ": "at+jwt"});
        Ok(Self {
            alg,
            kid: jwk.kid.clone(),
            pair,
            header_b64: b64::encode(header.to_string()),
            jwk,
            rng: SystemRandom::new(),
            presigner: None,
        })
    }

    /// For an ES256 or EdDSA key: from its first signature on, a low-priority
    /// thread computes the message-independent half of future signatures ahead of
    /// time (see [`crate::presign`]), so that a signature on a request's path
    /// costs a hash and a few scalar operations while presigned halves are ready.
    /// The server's current key does this; other keys (and RS256) sign whole.
    /// Fails only if the key's private scalar cannot be read.
    pub fn presign_in_background(&mut self) -> Result<(), CryptoError> {
        use aws_lc_rs::encoding::AsBigEndian as _;
        let presigner = match &self.pair {
            KeyPair::Rsa(_) => return Ok(()),
            KeyPair::Ec(k) => {
                let d = k
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| CryptoError::Key("cannot read the P-256 private key".into()))?;
                crate::presign::Presigner::es256(d.as_ref())
            }
            KeyPair::Ed(k) => {
                let unreadable = |_| CryptoError::Key("cannot read the Ed25519 private key".into());
                let seed = k.seed().map_err(unreadable)?;
                let seed = seed.as_be_bytes().map_err(unreadable)?;
                crate::presign::Presigner::eddsa(seed.as_ref(), k.public_key().as_ref())
            }
        };
        self.presigner = Some(
            presigner
                .ok_or_else(|| CryptoError::Key(format!("unexpected {} private key", self.alg)))?,
        );
        Ok(())
    }

    /// Whether a signature now costs only its message-dependent part: an ES256
    /// or EdDSA key that presigns and has presigned halves ready (1 to 2 µs,
    /// against 10 to 300 µs for a whole signature). Callers that overlap signing
    /// with other waits can skip that when it is so.
    pub fn signs_at_once(&self) -> bool {
        self.presigner.as_ref().is_some_and(|p| p.ready() > 0)
    }

    /// The presigner, for benchmarks: how many presigned halves are ready, and
    /// filling them on the calling thread.
    pub fn presigner(&self) -> Option<&crate::presign::Presigner> {
        self.presigner.as_ref()
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
    /// The public JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // A presigning key (ES256, EdDSA) with a half ready; else a whole signature.
        if let Some(sig) = self.presigner.as_ref().and_then(|p| p.sign(msg)) {
            return Ok(sig.to_vec());
        }
        let fail = |_| CryptoError::Key("signing failed".into());
        match &self.pair {
            KeyPair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(fail)?;
                Ok(sig)
            }
            KeyPair::Ec(k) => Ok(k.sign(&self.rng, msg).map_err(fail)?.as_ref().to_vec()),
            KeyPair::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }

    /// Signs `claims` as a compact JWS with header `{"alg","kid","typ":"at+jwt"}`.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, CryptoError> {
        // Room for a token's claims at once, instead of growing from 8 bytes.
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, claims)
            .map_err(|e| CryptoError::Key(format!("cannot encode claims: {e}")))?;
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 400);
        out.push_str(&self.header_b64);
        out.push('.');
        b64::encode_into(&payload, &mut out);
        let sig = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        b64::encode_into(sig, &mut out);
        Ok(out)
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_jwk(&self.jwk)
    }
}

/// A public key for verification, parsed once from its JWK.
pub struct VerifyingKey {
    alg: Algorithm,
    kid: String,
    key: ParsedPublicKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({} {})", self.alg, self.kid)
    }
}

impl VerifyingKey {
    /// Builds the key from a public JWK, checking that `kty`/`crv` fit `alg`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, CryptoError> {
        let alg: Algorithm = jwk.alg.parse().map_err(CryptoError::Key)?;
        let field = |o: &Option<String>, name: &str| {
            o.as_deref()
                .and_then(b64::decode)
                .ok_or_else(|| CryptoError::Key(format!("JWK without a valid {name}")))
        };
        let key = match (alg, jwk.kty.as_str(), jwk.crv.as_deref()) {
            (Algorithm::RS256, "RSA", _) => PublicKeyComponents {
                n: field(&jwk.n, "n")?,
                e: field(&jwk.e, "e")?,
            }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(key_err("RSA public key"))?,
            (Algorithm::ES256, "EC", Some("P-256")) => {
                let mut point = vec![4u8];
                point.extend(field(&jwk.x, "x")?);
                point.extend(field(&jwk.y, "y")?);
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .map_err(key_err("P-256 public key"))?
            }
            (Algorithm::EdDSA, "OKP", Some("Ed25519")) => {
                ParsedPublicKey::new(&signature::ED25519, field(&jwk.x, "x")?)
                    .map_err(key_err("Ed25519 public key"))?
            }
            _ => return Err(CryptoError::Key("JWK type does not match its alg".into())),
        };
        Ok(Self {
            alg,
            kid: jwk.kid.clone(),
            key,
        })
    }
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The only algorithm this key verifies.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
    fn verify_signature(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(msg, sig).is_ok()
    }
}

/// Why a JWS was refused. The server turns every one into `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts with a JSON header.
    #[error("the token is malformed")]
    Malformed,
    /// The header's `typ` is not `at+jwt` (RFC 9068 §4).
    #[error("the token is not an access token (typ)")]
    WrongType,
    /// A `crit` header we do not understand (RFC 7515 §4.1.11).
    #[error("the token has critical headers we do not understand")]
    Critical,
    /// No `kid`, or one we do not know.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The header's `alg` differs from the key's.
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default)]
    kid: Option<&'a str>,
    #[serde(default)]
    typ: Option<&'a str>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Verifies a compact JWS access token and returns its payload bytes.
///
/// `find_key` maps a `kid` to the key that signed it. The order of checks puts the
/// cheap structural ones first and the signature last.
pub fn verify_jws<'k>(
    token: &str,
    find_key: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header_bytes = b64::decode(h).ok_or(JwsError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_bytes).map_err(|_| JwsError::Malformed)?;
    if header.crit.is_some() {
        return Err(JwsError::Critical);
    }
    if !matches!(header.typ, Some("at+jwt" | "application/at+jwt")) {
        return Err(JwsError::WrongType);
    }
    let key = header.kid.and_then(find_key).ok_or(JwsError::UnknownKey)?;
    if header.alg != key.alg().as_str() {
        return Err(JwsError::AlgorithmMismatch);
    }
    let sig = b64::decode(s).ok_or(JwsError::Malformed)?;
    let signing_input_len = h.len() + 1 + p.len();
    if !key.verify_signature(&token.as_bytes()[..signing_input_len], &sig) {
        return Err(JwsError::BadSignature);
    }
    b64::decode(p).ok_or(JwsError::Malformed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk as JwtJwk};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct C {
        sub: String,
        exp: i64,
    }

    fn claims() -> C {
        C {
            sub: "pc_x".into(),
            exp: 4_000_000_000,
        }
    }

    #[test]
    fn every_algorithm_signs_tokens_an_independent_library_verifies() {
        for (alg, presign) in [
            (Algorithm::RS256, false),
            (Algorithm::ES256, false),
            (Algorithm::ES256, true),
            (Algorithm::EdDSA, false),
            (Algorithm::EdDSA, true),
        ] {
            let (der, mut key) = SigningKey::generate(alg).unwrap();
            if presign {
                key.presign_in_background().unwrap();
                let presigner = key.presigner().unwrap();
                assert_eq!(presigner.fill(), crate::presign::STOCK);
            }
            let token = key.sign_jwt(&claims()).unwrap();
            if presign {
                let left = key.presigner().unwrap().ready();
                assert_eq!(left, crate::presign::STOCK - 1, "{alg}: presigned");
            }
            let jwk: JwtJwk =
                serde_json::from_value(serde_json::to_value(key.jwk()).unwrap()).unwrap();
            let dk = DecodingKey::from_jwk(&jwk).unwrap();
            let jalg: jsonwebtoken::Algorithm = alg.as_str().parse().unwrap();
            let mut v = Validation::new(jalg);
            v.required_spec_claims.clear();
            let got = jsonwebtoken::decode::<C>(&token, &dk, &v).unwrap();
            assert_eq!(got.claims, claims());
            assert_eq!(got.header.kid.as_deref(), Some(key.kid()));
            // The stored form parses back to the same key.
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(again.kid(), key.kid());
            // And our own verifier accepts it.
            let vk = key.verifying_key().unwrap();
            let payload = verify_jws(&token, |kid| (kid == vk.kid()).then_some(&vk)).unwrap();
            assert_eq!(serde_json::from_slice::<C>(&payload).unwrap(), claims());
        }
    }

    #[test]
    fn verification_pins_the_algorithm_and_refuses_forgeries() {
        let (_, key) = SigningKey::generate(Algorithm::ES256).unwrap();
        let vk = key.verifying_key().unwrap();
        let token = key.sign_jwt(&claims()).unwrap();
        let find = |kid: &str| (kid == vk.kid()).then_some(&vk);
        let (h, rest) = token.split_once('.').unwrap();
        let (p, _s) = rest.split_once('.').unwrap();

        let none_header = b64::encode(format!(
            r#"{{"alg":"none","kid":"{}","typ":"at+jwt"}}"#,
            vk.kid()
        ));
        assert_eq!(
            verify_jws(&format!("{none_header}.{p}."), find),
            Err(JwsError::AlgorithmMismatch)
        );

        let tampered = format!(
            "{h}.{}.{}",
            b64::encode(r#"{"sub":"admin","exp":4000000000}"#),
            _s
        );
        assert_eq!(verify_jws(&tampered, find), Err(JwsError::BadSignature));

        let (_, other) = SigningKey::generate(Algorithm::ES256).unwrap();
        let foreign = other.sign_jwt(&claims()).unwrap();
        assert_eq!(verify_jws(&foreign, find), Err(JwsError::UnknownKey));

        let jwt_typ = b64::encode(format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#,
            vk.kid()
        ));
        assert_eq!(
            verify_jws(&format!("{jwt_typ}.{p}.{_s}"), find),
            Err(JwsError::WrongType)
        );

        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            assert!(verify_jws(bad, find).is_err(), "{bad}");
        }
    }

    #[test]
    fn rsa_keys_are_2048_bits() {
        let (_, key) = SigningKey::generate(Algorithm::RS256).unwrap();
        let n = b64::decode(key.jwk().n.as_deref().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert_eq!(key.jwk().e.as_deref(), Some("AQAB"));
    }
}
