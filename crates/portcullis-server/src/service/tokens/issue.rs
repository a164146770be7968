//! Issuing: a grant signs an access token (and a refresh token, if the client
//! takes them) and durably records the new family before answering.

use super::{Grant, IssueError, Issued, TokenResponse, TokenService};
use portcullis_crypto::{Algorithm, ordered_id_now};
use portcullis_store::NewGrant;
use std::future::Future as _;

impl TokenService {
    /// Signs an access token and, if the client takes them, a refresh token, and
    /// durably records the new family before returning.
    pub async fn issue(&self, grant: Grant<'_>) -> Result<Issued, IssueError> {
        let family_id = ordered_id_now("fam_")?;
        self.issue_recorded(grant, family_id, None)
            .await?
            .ok_or(IssueError::ClientInactive)
    }

    /// [`Self::issue`], spending the authorization code with hash `spends_code`
    /// (if any) in the write that records the grant. `None`: nothing was
    /// recorded (the client is not active, or the code could not be spent), and
    /// the tokens signed are thrown away.
    pub(super) async fn issue_recorded(
        &self,
        grant: Grant<'_>,
        family_id: String,
        spends_code: Option<[u8; 32]>,
    ) -> Result<Option<Issued>, IssueError> {
        let now = self.clock.now();
        let client = grant.client;
        let scope = grant.scopes.to_string();
        let exp = self.access_expiry(client, now);
        let refresh = if client.issue_refresh_token {
            Some(self.new_refresh_token(self.refresh_expiry(client, now))?)
        } else {
            None
        };
        let family_expires = refresh.as_ref().map_or(exp, |(_, r)| r.expires_at.max(exp));
        let label = grant.label.map(|l| l.to_string());
        let sign = || {
            self.sign_access(
                client,
                &family_id,
                &grant.subject,
                &grant.scopes,
                label.clone(),
                now,
            )
        };
        // A slow signature (RS256: 300 µs of CPU) comes first, announced, so that
        // the writer can gather the grants being signed into one commit
        // (`TokenStore::announce_grant`); handed over first, they came one or two
        // a commit and each wrote 28 KiB instead of 11 (8% fewer tokens).
        let alg = self.keys.get().current.alg();
        let sign_first = alg == Algorithm::RS256;
        let announced = sign_first.then(|| self.store.announce_grant());
        let signed_first = if sign_first { Some(sign()?) } else { None };
        drop(announced);
        let record = self.store.record_grant(NewGrant {
            family_id: family_id.clone(),
            client_id: client.id.to_string(),
            label: label.clone(),
            subject: grant.subject.clone(),
            scopes: grant.scopes.clone(),
            grant_type: grant.grant_type.as_str().into(),
            created_at: now,
            expires_at: family_expires,
            refresh_token: refresh.as_ref().map(|(_, r)| r.clone()),
            actor: grant.actor,
            spends_code,
        });
        tokio::pin!(record);
        // Otherwise the grant goes to the writer first (one poll hands it over)
        // and the token is signed while the grant commits, out of the time this
        // request waits for the commit anyway (EdDSA +4%). The answer still waits
        // for the commit; a token signed for a grant not recorded is thrown away.
        let mut early = None;
        if signed_first.is_none() {
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(r) = record.as_mut().poll(cx) {
                    early = Some(r);
                }
                std::task::Poll::Ready(())
            })
            .await;
        }
        let signed = match signed_first {
            Some(signed) => signed,
            None => sign()?,
        };
        let recorded = match early {
            Some(r) => r,
            None => record.await,
        }?;
        if !recorded {
            return Ok(None);
        }
        let (access_token, access_ttl) = signed;
        crate::metrics::token_issued(grant.grant_type.as_str(), alg.as_str());
        Ok(Some(Issued {
            family_id,
            response: TokenResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: access_ttl.secs(),
                refresh_token: refresh.map(|(t, _)| t.expose().to_owned()),
                scope,
            },
        }))
    }
}
