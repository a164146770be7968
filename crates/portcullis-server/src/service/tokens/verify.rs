//! Verifying an access token: signature (the algorithm pinned to the key), issuer,
//! audience, `exp` and `nbf` with no leeway, and the denylist; verified claims are
//! cached by the token's digest until the key set changes.

use super::{TokenRejection, TokenService, VerifiedClaims};
use portcullis_core::AccessClaims;
use portcullis_crypto::keys::verify_jws;

impl TokenService {
    /// Verifies an access token: signature with the algorithm pinned to the key,
    /// `iss`, `aud`, `exp` and `nbf` (no leeway: we are the clock that issued it).
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenRejection> {
        let generation = self.keys.generation();
        let digest = portcullis_crypto::sha256(token.as_bytes());
        let claims = match self.verified.get(&digest, generation) {
            Some(c) => c,
            None => {
                let keys = self.keys.get();
                let payload = verify_jws(token, |kid| keys.verifiers.get(kid))?;
                let claims: AccessClaims =
                    serde_json::from_slice(&payload).map_err(|_| TokenRejection::Claims)?;
                if claims.iss != self.issuer {
                    return Err(TokenRejection::Issuer);
                }
                if !claims.aud.contains(&self.audience) {
                    return Err(TokenRejection::Audience);
                }
                self.verified
                    .put(digest, &claims, generation, self.clock.now());
                claims
            }
        };
        let now = self.clock.now();
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        if claims.nbf > now {
            return Err(TokenRejection::NotYetValid);
        }
        if let Some(why) = self.denylist.revoked(&claims) {
            return Err(TokenRejection::Revoked(why));
        }
        Ok(claims)
    }
}
