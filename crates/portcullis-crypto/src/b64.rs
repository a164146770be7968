//! base64url without padding (RFC 7515 §2), the only base64 the protocol uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes base64url without padding.
pub fn encode(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Appends base64url of `data` to `out`.
pub fn encode_into(data: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(data, out);
}

/// Decodes base64url without padding; `None` on any malformation.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}
