//! The REST half: sign-in (OAuth 2.0 authorization code with PKCE, as the portal does it) and
//! the messaging endpoints, each body a typed struct. TLS only, trusting the roots the caller
//! gives (a practice's own certificate, or a development server's).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ClientError;
use crate::device::ConversationKind;

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

/// `POST /oauth/authorize`: the first sign-in step.
#[derive(Serialize)]
struct Authorize<'a> {
    response_type: &'static str,
    client_id: &'static str,
    redirect_uri: &'static str,
    code_challenge: &'a str,
    code_challenge_method: &'static str,
    state: &'a str,
    email: &'a str,
    password: &'a str,
}

/// `POST /oauth/authorize/mfa`: the second factor.
#[derive(Serialize)]
struct Mfa<'a> {
    mfa_token: &'a str,
    totp_code: &'a str,
    state: &'a str,
}

/// The answer to a sign-in step.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Authorization {
    /// Exchange `code` at `POST /oauth/token`.
    Authorized { code: String, state: Option<String> },
    /// Send a TOTP code with this token.
    MfaRequired { mfa_token: String },
}

/// `POST /oauth/token`'s answer (the parts this client uses).
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

/// An error body: `{"error": "...", "code": "...", "request_id": "..."}`.
#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    code: String,
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
        let authorize = Authorize {
            response_type: "code",
            client_id: CLIENT_ID,
            redirect_uri: REDIRECT_URI,
            code_challenge: &challenge,
            code_challenge_method: "S256",
            state: &state,
            email,
            password,
        };
        let mut answer: Authorization = json_of(self.post("/oauth/authorize", None, &authorize).await?).await?;
        if let Authorization::MfaRequired { mfa_token } = &answer {
            let totp_code = totp.ok_or(ClientError::MfaRequired)?;
            let mfa = Mfa { mfa_token, totp_code, state: &state };
            answer = json_of(self.post("/oauth/authorize/mfa", None, &mfa).await?).await?;
        }
        let Authorization::Authorized { code, state: Some(returned) } = answer else {
            return Err(ClientError::Protocol("sign-in did not authorize"));
        };
        if returned != state {
            return Err(ClientError::Protocol("sign-in did not authorize"));
        }
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let response = self.http.post(format!("{}/oauth/token", self.base)).form(&form).send().await?;
        let tokens: Tokens = json_of(succeeded(response).await?).await?;
        Ok(self.with_token(&tokens.access_token))
    }

    /// An API handle for an access token obtained elsewhere.
    pub fn with_token(&self, token: &str) -> Api {
        Api { server: self.clone(), token: token.to_owned() }
    }

    /// POSTs `body` as JSON to `path`; the response, when it succeeded.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        succeeded(request.send().await?).await
    }
}

/// The response when it succeeded, or the server's refusal with its error code.
async fn succeeded(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = response.json::<Refusal>().await.map(|refusal| refusal.code).unwrap_or_default();
    Err(ClientError::Refused { status: status.as_u16(), code })
}

/// The JSON body of a response that succeeded.
async fn json_of<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    response.json().await.map_err(|_| ClientError::Protocol("the answer is not the expected JSON"))
}

/// A signed-in API handle.
#[derive(Clone)]
pub struct Api {
    pub(crate) server: Server,
    pub(crate) token: String,
}

/// `GET /api/v1/me` (the part this client uses).
#[derive(Deserialize)]
struct Me {
    user_id: Uuid,
}

/// `POST /api/v1/devices`.
#[derive(Serialize)]
struct RegisterDevice<'a> {
    /// Base64 of the Ed25519 public key.
    signature_key: &'a str,
}

/// A registered device (the part this client uses).
#[derive(Deserialize)]
struct Registered {
    device_id: Uuid,
}

/// `POST /api/v1/devices/{id}/key-packages`.
#[derive(Serialize)]
struct UploadKeyPackages<'a> {
    /// Base64 of each TLS-encoded KeyPackage.
    key_packages: &'a [String],
}

/// How many one-time KeyPackages a device has left.
#[derive(Deserialize)]
struct Stock {
    remaining: u64,
}

/// How a body names the conversation it is about: `patient_id`, or `kind: "staff"`.
#[derive(Serialize)]
struct Kind {
    #[serde(skip_serializing_if = "Option::is_none")]
    patient_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

impl From<ConversationKind> for Kind {
    fn from(kind: ConversationKind) -> Self {
        match kind {
            ConversationKind::Care(patient) => Kind { patient_id: Some(patient), kind: None },
            ConversationKind::Staff => Kind { patient_id: None, kind: Some("staff") },
        }
    }
}

/// `POST /api/v1/conversations`.
#[derive(Serialize)]
struct CreateConversation<'a> {
    device_id: Uuid,
    #[serde(flatten)]
    kind: Kind,
    /// Base64 of the GroupInfo `MlsMessageOut`.
    group_info: &'a str,
    /// Base64 of the ratchet tree.
    ratchet_tree: &'a str,
}

/// `POST /api/v1/conversations/{id}/attachments`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadedAttachment {
    /// The attachment's id (the message that carries it names it).
    pub attachment_id: Uuid,
    /// Its size in bytes of ciphertext.
    pub size: u64,
    /// The server's SHA-256 of the ciphertext, lowercase hex.
    pub sha256: String,
}

/// `POST /api/v1/key-packages/claim`.
#[derive(Serialize)]
struct Claim {
    user_id: Uuid,
    #[serde(flatten)]
    kind: Kind,
}

/// A KeyPackage claimed for one of the account's devices.
#[derive(Deserialize)]
pub(crate) struct Claimed {
    /// The device it adds.
    pub(crate) device_id: Uuid,
    /// Base64 of the TLS-encoded KeyPackage.
    pub(crate) key_package: String,
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

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response =
            self.server.http.get(format!("{}{path}", self.server.base)).bearer_auth(&self.token).send().await?;
        json_of(succeeded(response).await?).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ClientError> {
        json_of(self.server.post(path, Some(&self.token), body).await?).await
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        let request = self.server.http.delete(format!("{}{path}", self.server.base)).bearer_auth(&self.token);
        succeeded(request.send().await?).await.map(|_| ())
    }

    /// The signed-in account's id.
    pub async fn user_id(&self) -> Result<Uuid, ClientError> {
        Ok(self.get::<Me>("/api/v1/me").await?.user_id)
    }

    /// Registers a device of this account with its signature key (base64): its id.
    pub(crate) async fn register_device(&self, signature_key: &str) -> Result<Uuid, ClientError> {
        let registered: Registered = self.post("/api/v1/devices", &RegisterDevice { signature_key }).await?;
        Ok(registered.device_id)
    }

    /// Removes a device of this account.
    pub(crate) async fn remove_device(&self, device: Uuid) -> Result<(), ClientError> {
        self.delete(&format!("/api/v1/devices/{device}")).await
    }

    /// Uploads KeyPackages (base64) of `device`: how many one-time ones it now has.
    pub(crate) async fn upload_key_packages(&self, device: Uuid, key_packages: &[String]) -> Result<u64, ClientError> {
        let path = format!("/api/v1/devices/{device}/key-packages");
        let stock: Stock = self.post(&path, &UploadKeyPackages { key_packages }).await?;
        Ok(stock.remaining)
    }

    /// Registers the conversation `device` created, of `kind`, with its GroupInfo and ratchet
    /// tree (base64).
    pub(crate) async fn create_conversation(
        &self,
        device: Uuid,
        kind: ConversationKind,
        group_info: &str,
        ratchet_tree: &str,
    ) -> Result<(), ClientError> {
        let body = CreateConversation { device_id: device, kind: kind.into(), group_info, ratchet_tree };
        self.server.post("/api/v1/conversations", Some(&self.token), &body).await.map(|_| ())
    }

    /// Uploads an attachment's `ciphertext` to `conversation` (this account must have a device in
    /// it), under a fresh `Idempotency-Key`.
    pub async fn upload_attachment(
        &self,
        conversation: Uuid,
        ciphertext: Vec<u8>,
    ) -> Result<UploadedAttachment, ClientError> {
        let url = format!("{}/api/v1/conversations/{conversation}/attachments", self.server.base);
        let request = self
            .server
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header(confidant_protocol::retry::IDEMPOTENCY_KEY, Uuid::new_v4().to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(ciphertext);
        json_of(succeeded(request.send().await?).await?).await
    }

    /// The ciphertext of attachment `id`, as the server holds it.
    pub async fn download_attachment(&self, id: Uuid) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/api/v1/attachments/{id}", self.server.base);
        let response = succeeded(self.server.http.get(url).bearer_auth(&self.token).send().await?).await?;
        Ok(response.bytes().await?.to_vec())
    }

    /// Claims a KeyPackage of each active device of `user`, for a conversation of `kind`.
    pub(crate) async fn claim_key_packages(
        &self,
        user: Uuid,
        kind: ConversationKind,
    ) -> Result<Vec<Claimed>, ClientError> {
        self.post("/api/v1/key-packages/claim", &Claim { user_id: user, kind: kind.into() }).await
    }
}
