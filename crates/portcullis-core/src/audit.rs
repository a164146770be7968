//! What the audit log records (SPEC §7): every kind of event, by name.

use std::fmt;
use std::str::FromStr;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The kind of an audit event; its name (`token.issue`, …) is what is stored
        /// and shown.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $($(#[$doc])* $variant,)*
        }

        impl AuditKind {
            /// Every kind, in the order the audit page offers them.
            pub const ALL: &'static [AuditKind] = &[$(AuditKind::$variant,)*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditKind::$variant => $name,)*
                }
            }
        }

        impl FromStr for AuditKind {
            type Err = UnknownAuditKind;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(AuditKind::$variant),)*
                    _ => Err(UnknownAuditKind(s.chars().take(64).collect())),
                }
            }
        }
    };
}

kinds! {
    /// A grant: a new token family.
    TokenIssue => "token.issue",
    /// A refresh token rotated.
    TokenRefresh => "token.refresh",
    /// A family or an access token revoked.
    TokenRevoke => "token.revoke",
    /// A spent refresh token presented again: its family revoked.
    TokenReuseDetected => "token.reuse_detected",
    /// A client created.
    ClientCreate => "client.create",
    /// A client's settings changed.
    ClientUpdate => "client.update",
    /// A client disabled (and its tokens revoked).
    ClientDisable => "client.disable",
    /// A client enabled again.
    ClientEnable => "client.enable",
    /// A client deleted.
    ClientDelete => "client.delete",
    /// A client given a new secret.
    ClientRotateSecret => "client.rotate_secret",
    /// A source reached its limit of failed client authentications.
    ClientAuthFailedBurst => "client.auth_failed_burst",
    /// A scope registered.
    ScopeCreate => "scope.create",
    /// A new signing key made current.
    KeyRotate => "key.rotate",
    /// An admin signed in.
    AdminLogin => "admin.login",
    /// A source reached a limit of failed admin sign-ins.
    AdminLoginFailedBurst => "admin.login_failed_burst",
    /// Failed sign-ins for one admin from many sources: its sign-ins are delayed.
    AdminLoginFlood => "admin.login_flood",
    /// An end user created.
    UserCreate => "user.create",
    /// An end user disabled (every token issued on their behalf revoked).
    UserDisable => "user.disable",
    /// An end user enabled.
    UserEnable => "user.enable",
    /// An end user's password set (by an admin or by the user).
    UserPassword => "user.password",
    /// An end user signed in.
    UserLogin => "user.login",
    /// A sign-in as an end user failed (wrong name or password, or a disabled user).
    UserLoginFailed => "user.login_failed",
    /// A source reached a limit of failed end-user sign-ins.
    UserLoginFailedBurst => "user.login_failed_burst",
    /// Failed sign-ins for one end user from many sources: their sign-ins are delayed.
    UserLoginFlood => "user.login_flood",
    /// An end user allowed an application scopes.
    ConsentGive => "consent.give",
    /// An end user (or an admin) ended an application's access.
    ConsentRevoke => "consent.revoke",
    /// An end user (or an admin) removed scopes from an application's access.
    ConsentNarrow => "consent.narrow",
    /// An authorization code presented a second time: its tokens are revoked.
    CodeReuseDetected => "code.reuse_detected",
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an audit kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit event kind {0:?}")]
pub struct UnknownAuditKind(pub String);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in AuditKind::ALL {
            assert_eq!(k.as_str().parse::<AuditKind>().unwrap(), *k);
        }
        assert!("token.nope".parse::<AuditKind>().is_err());
    }
}
