//! The device's state on disk: the MLS storage (signature key pair, group secrets, KeyPackage
//! private keys) and the cursors, sealed with AES-256-GCM under a 32-byte key the application keeps (for
//! instance in the OS keychain). File: 12-byte nonce, then the ciphertext of a JSON document.
//!
//! A device that keeps its state in a file ([`Device::load`], [`Device::use_state_file`]) saves
//! it before every acknowledgement: the server stops replaying what is acknowledged, so what is
//! acknowledged must survive a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::acks::Acks;
use crate::cursors::Cursors;
use crate::device::Device;
use crate::sealed::write_state;

/// Associated data: binds the ciphertext to this format.
const AAD: &[u8] = b"confidant.client.state.v1";

/// Where a device keeps its state, and the key it is sealed under.
pub(crate) struct StateFile {
    pub(crate) path: PathBuf,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    device_id: Uuid,
    user_id: Uuid,
    /// The signature public key; the key pair itself is in `storage`.
    signature_public: String,
    /// Per conversation, the seq through which everything was processed.
    cursors: BTreeMap<Uuid, u64>,
    /// Per conversation, seqs processed beyond a missing one (absent in older files).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    beyond: BTreeMap<Uuid, Vec<u64>>,
    /// The MLS storage's key/value pairs, base64.
    storage: Vec<(String, String)>,
}

impl Device {
    /// Writes the device's state to `path`, sealed under `key`, readable by its owner only. It
    /// is written to a temporary file, flushed to disk, renamed over the old one and the rename
    /// flushed too, so a crash leaves the old state or the new, never half of one, and once this
    /// returns the new state survives a crash (it precedes acknowledgements). The state is sealed
    /// here; the file work, two flushes that can take milliseconds, runs on tokio's blocking
    /// threads, so the caller's runtime goes on reading its socket meanwhile.
    pub async fn save(&self, path: &Path, key: &[u8; 32]) -> Result<(), ClientError> {
        let sealed = self.sealed(key)?;
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || write_state(&path, &sealed))
            .await
            .map_err(|_| ClientError::State("write"))?
    }

    /// The device's state sealed under `key`: nonce, then ciphertext.
    fn sealed(&self, key: &[u8; 32]) -> Result<Vec<u8>, ClientError> {
        let storage = {
            let values = self.provider.storage().values.read().map_err(|_| ClientError::State("storage lock"))?;
            values.iter().map(|(k, v)| (B64.encode(k), B64.encode(v))).collect()
        };
        let (cursors, beyond) = self.cursors.to_parts();
        let saved = Saved {
            device_id: self.device_id,
            user_id: self.user_id,
            signature_public: B64.encode(self.signer.public()),
            cursors,
            beyond,
            storage,
        };
        let plain = Zeroizing::new(serde_json::to_vec(&saved).map_err(|_| ClientError::State("encode"))?);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: &plain, aad: AAD })
            .map_err(|_| ClientError::State("seal"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Keeps this device's state in `path`, sealed under `key`: it is saved there before each
    /// acknowledgement (and whenever the application calls [`Device::save`]).
    pub fn use_state_file(&mut self, path: &Path, key: &[u8; 32]) {
        self.state_file = Some(StateFile { path: path.to_owned(), key: Zeroizing::new(*key) });
    }

    /// Reads a state written by [`Device::save`]. A wrong key or a changed file is refused.
    /// The device goes on keeping its state there (see [`Device::use_state_file`]).
    pub fn load(path: &Path, key: &[u8; 32]) -> Result<Self, ClientError> {
        let bytes = std::fs::read(path).map_err(|_| ClientError::State("read"))?;
        let (nonce, sealed) = bytes.split_first_chunk::<12>().ok_or(ClientError::State("truncated"))?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
        let plain = Zeroizing::new(
            cipher
                .decrypt(&Nonce::from(*nonce), aes_gcm::aead::Payload { msg: sealed, aad: AAD })
                .map_err(|_| ClientError::State("wrong key or altered file"))?,
        );
        let saved: Saved = serde_json::from_slice(&plain).map_err(|_| ClientError::State("decode"))?;
        let decode = |text: &str| B64.decode(text).map_err(|_| ClientError::State("decode"));
        let provider = OpenMlsRustCrypto::default();
        {
            let mut values = provider.storage().values.write().map_err(|_| ClientError::State("storage lock"))?;
            for (k, v) in &saved.storage {
                values.insert(decode(k)?, decode(v)?);
            }
        }
        let signer =
            SignatureKeyPair::read(provider.storage(), &decode(&saved.signature_public)?, SignatureScheme::ED25519)
                .ok_or(ClientError::State("no signature key"))?;
        Ok(Device {
            provider,
            signer,
            device_id: saved.device_id,
            user_id: saved.user_id,
            cursors: Cursors::from_parts(saved.cursors, saved.beyond),
            acks: Acks::default(),
            state_file: Some(StateFile { path: path.to_owned(), key: Zeroizing::new(*key) }),
        })
    }
}
