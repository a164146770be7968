//! Issuing: a grant signs an access token (and a refresh token, if the client
//! takes them) and durably records the new family before answering.

use super::{Grant, IssueError, Issued, TokenResponse, TokenService};
use portcullis_crypto::ordered_id_now;
use portcullis_store::NewGrant;

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
        let announced = self.store.announce_grant();
        let now = self.clock.now();
        let client = grant.client;
        let scope = grant.scopes.to_string();
        let (access_token, exp, access_ttl) = self.sign_access(
            client,
            &family_id,
            &grant.subject,
            &grant.scopes,
            grant.label.as_ref().map(|l| l.to_string()),
            now,
        )?;

        let refresh = if client.issue_refresh_token {
            let rexp = now.saturating_add(self.refresh_ttl_for(client).secs_i64());
            Some(self.new_refresh_token(rexp)?)
        } else {
            None
        };
        let family_expires = refresh.as_ref().map_or(exp, |(_, r)| r.expires_at.max(exp));
        drop(announced);
        let recorded = self
            .store
            .record_grant(NewGrant {
                family_id: family_id.clone(),
                client_id: client.id.to_string(),
                label: grant.label.map(|l| l.to_string()),
                subject: grant.subject,
                scopes: grant.scopes.clone(),
                grant_type: grant.grant_type.as_str().into(),
                created_at: now,
                expires_at: family_expires,
                refresh_token: refresh.as_ref().map(|(_, r)| r.clone()),
                actor: grant.actor,
                spends_code,
            })
            .await?;
        if !recorded {
            return Ok(None);
        }
        let alg = self.keys.get().current.alg().as_str();
        crate::metrics::token_issued(grant.grant_type.as_str(), alg);
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
