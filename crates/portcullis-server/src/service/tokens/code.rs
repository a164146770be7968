//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5): a code is spent
//! once, by the client it was issued to, with the redirect URI it was sent to and
//! the verifier of its PKCE challenge. A code presented again is reuse
//! (`code_presented_again`): refused, and every token its first use yielded is
//! revoked (RFC 6749 §4.1.2).

use super::{Grant, IssueError, RefreshError, TokenResponse, TokenService};
use portcullis_core::pkce::check_verifier;
use portcullis_core::{AuditKind, Client, GrantType, OAuthError};
use portcullis_crypto::{TokenKind, ordered_id_now, pkce_matches};
use portcullis_store::{Actor, NewAuditEvent, RevokeScope, StoredCode};

/// What the token request carries besides the client.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchange<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`, if sent.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub verifier: &'a str,
}

fn invalid_grant(why: &str) -> RefreshError {
    OAuthError::invalid_grant(why).into()
}

fn expired() -> RefreshError {
    invalid_grant("the authorization code is invalid or expired")
}

impl TokenService {
    /// Exchanges an authorization code for tokens (`sub`: the user who allowed it).
    ///
    /// The code is read and checked first; it is spent by the write that records
    /// the grant (one group-committed write, as a refresh is), so a refused
    /// request leaves it as it was, and of two exchanges racing with one code
    /// only the first to commit issues anything.
    pub async fn exchange_code(
        &self,
        client: &Client,
        ex: CodeExchange<'_>,
        actor: Actor,
    ) -> Result<TokenResponse, RefreshError> {
        check_verifier(ex.verifier).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        if ex.code.len() > 512 {
            return Err(invalid_grant("the authorization code is invalid"));
        }
        let hash = self.hasher.hash(TokenKind::AuthorizationCode, ex.code).0;
        let now = self.clock.now();
        let Some(stored) = self.store.find_code(&hash).await? else {
            return Err(expired());
        };
        if stored.spent {
            return self.reused(&stored, &actor).await;
        }
        let code = stored.code;
        if code.expires_at <= now {
            return Err(expired());
        }
        if code.client_id != client.id.as_str() {
            return Err(invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        match ex.redirect_uri {
            Some(uri) if uri != code.redirect_uri => {
                return Err(invalid_grant(
                    "redirect_uri is not the one the authorization request used",
                ));
            }
            None if code.redirect_uri_given => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required: the authorization request named it",
                )
                .into());
            }
            _ => {}
        }
        if !pkce_matches(ex.verifier, &code.code_challenge) {
            return Err(invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        if !stored.user_active {
            return Err(invalid_grant("the user who allowed this is disabled"));
        }
        let family_id = match code.family_id {
            Some(id) => id,
            None => ordered_id_now("fam_")?,
        };
        let grant = Grant {
            client,
            scopes: code.scopes,
            label: None,
            subject: code.user_id,
            grant_type: GrantType::AuthorizationCode,
            actor: actor.clone(),
        };
        if let Some(issued) = self.issue_recorded(grant, family_id, Some(hash)).await? {
            return Ok(issued.response);
        }
        // Not recorded: another exchange spent the code first, it expired on the
        // way, or the client was disabled.
        match self.store.find_code(&hash).await? {
            Some(again) if again.spent => self.reused(&again, &actor).await,
            Some(again) if again.code.expires_at > now => Err(IssueError::ClientInactive.into()),
            _ => Err(expired()),
        }
    }

    /// A spent code presented again: refused, and its tokens revoked.
    async fn reused(
        &self,
        stored: &StoredCode,
        actor: &Actor,
    ) -> Result<TokenResponse, RefreshError> {
        let family = stored.code.family_id.as_deref();
        self.code_presented_again(&stored.code.client_id, family, actor)
            .await?;
        Err(invalid_grant(
            "the authorization code was already used; the tokens it yielded are revoked",
        ))
    }

    /// A spent code came back: revoke the family its first use yielded (if that
    /// first use issued any) and record the reuse.
    async fn code_presented_again(
        &self,
        client_id: &str,
        family: Option<&str>,
        actor: &Actor,
    ) -> Result<(), RefreshError> {
        let now = self.clock.now();
        let event = NewAuditEvent {
            at: now,
            kind: AuditKind::CodeReuseDetected,
            actor: actor.clone(),
            target: family.map(str::to_owned),
            client_id: Some(client_id.to_owned()),
            label: None,
            detail: None,
        };
        tracing::warn!(
            client_id,
            "an authorization code was presented again; revoking its tokens"
        );
        match family {
            Some(id) => {
                let ttl = self
                    .client_access_ttl(client_id)
                    .await?
                    .max(self.access_ttl.secs_i64());
                let until = now.saturating_add(ttl).saturating_add(1);
                let ids = self
                    .store
                    .revoke_families(
                        RevokeScope::Family { id, client: None },
                        now,
                        "code_reuse",
                        until,
                        &event,
                    )
                    .await?;
                for id in &ids {
                    self.denylist.add_family(id, until);
                }
                if ids.is_empty() {
                    // Already revoked: the reuse is still worth recording.
                    self.store.append_audit(&event).await?;
                }
            }
            None => self.store.append_audit(&event).await?,
        }
        Ok(())
    }

    /// The client's own access token lifetime, in seconds (0 when it has none).
    async fn client_access_ttl(&self, client_id: &str) -> Result<i64, RefreshError> {
        let Ok(id) = portcullis_core::ClientId::parse(client_id) else {
            return Ok(0);
        };
        Ok(self
            .store
            .get_client(&id)
            .await?
            .and_then(|c| c.access_token_ttl)
            .map_or(0, |t| t.secs_i64()))
    }
}
