//! The REST half: sign-in (OAuth 2.0 authorization code with PKCE, as the portal does it) and
//! the messaging endpoints. TLS only, trusting the roots the caller gives (a practice's own
//! certificate, or a development server's).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ClientError;

/// The OAuth client this SDK signs in as, and its registered redirect URI.
pub const CLIENT_ID: &str = "confidant-client";
/// The redirect URI registered for [`CLIENT_ID`] (the code comes back in the JSON body).
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// A server: its base URL and the TLS roots to trust.
#[derive(Clone)]
pub struct Server {
    /// `https://host:port`.
    pub base: String,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
}

impl Server {
    /// A server at `base` (`https://...`) whose certificate chains to the PEM certificate in
    /// `ca_pem` (for a development server, its self-signed certificate).
    pub fn new(base: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificate = CertificateDer::from_pem_slice(ca_pem).map_err(|_| ClientError::Certificate)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate.clone()).map_err(|_| ClientError::Certificate)?;
        let tls = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .https_only(true)
            .build()
            .map_err(|_| ClientError::Certificate)?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), tls, http })
    }

    /// Signs in with email and password (and a TOTP code when the account asks for one).
    pub async fn sign_in(&self, email: &str, password: &str, totp: Option<&str>) -> Result<Api, ClientError> {
        let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = Uuid::new_v4().simple().to_string();
        let mut answer = self
            .post_json(
                "/oauth/authorize",
                None,
                &json!({
                    "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                    "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
                    "email": email, "password": password,
                }),
            )
            .await?;
        if answer["status"] == "mfa_required" {
            let code = totp.ok_or(ClientError::MfaRequired)?;
            answer = self
                .post_json(
                    "/oauth/authorize/mfa",
                    None,
                    &json!({ "mfa_token": answer["mfa_token"], "totp_code": code, "state": state }),
                )
                .await?;
        }
        if answer["status"] != "authorized" || answer["state"] != state.as_str() {
            return Err(ClientError::Protocol("sign-in did not authorize"));
        }
        let code = answer["code"].as_str().ok_or(ClientError::Protocol("no authorization code"))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("code", code),
            ("code_verifier", verifier.as_str()),
        ];
        let response = self.http.post(format!("{}/oauth/token", self.base)).form(&form).send().await?;
        let tokens = checked(response).await?;
        let token = tokens["access_token"].as_str().ok_or(ClientError::Protocol("no access token"))?;
        Ok(self.with_token(token))
    }

    /// An API handle for an access token obtained elsewhere.
    pub fn with_token(&self, token: &str) -> Api {
        Api { server: self.clone(), token: token.to_owned() }
    }

    async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value, ClientError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        checked(request.send().await?).await
    }
}

/// The server's answer, or its error code.
async fn checked(response: reqwest::Response) -> Result<Value, ClientError> {
    let status = response.status();
    let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
        Value::Null
    } else {
        response.json().await.unwrap_or(Value::Null)
    };
    if status.is_success() {
        Ok(body)
    } else {
        Err(ClientError::Refused { status: status.as_u16(), code: body["code"].as_str().unwrap_or("").to_owned() })
    }
}

/// A signed-in API handle.
#[derive(Clone)]
pub struct Api {
    pub(crate) server: Server,
    pub(crate) token: String,
}

impl Api {
    /// The access token (for the socket's first frame).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let response =
            self.server.http.get(format!("{}{path}", self.server.base)).bearer_auth(&self.token).send().await?;
        checked(response).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.server.post_json(path, Some(&self.token), body).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), ClientError> {
        let request = self.server.http.delete(format!("{}{path}", self.server.base)).bearer_auth(&self.token);
        checked(request.send().await?).await.map(|_| ())
    }

    /// The signed-in account's id.
    pub async fn user_id(&self) -> Result<Uuid, ClientError> {
        let me = self.get("/api/v1/me").await?;
        me["user_id"].as_str().and_then(|s| s.parse().ok()).ok_or(ClientError::Protocol("no user id"))
    }
}
