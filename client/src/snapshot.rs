//! A device's whole state as bytes, and back: its ids, its signature key, the MLS storage (group
//! secrets, KeyPackage private keys) and its cursors, as one JSON document. Secret: a state file
//! seals it before it leaves memory.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::ClientError;
use crate::cursors::Cursors;
use crate::device::Device;

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
    /// The device's whole state, secret keys included, in the clear: seal it before it is kept
    /// anywhere (`Device::save` does, into a state file).
    pub fn export_state(&self) -> Result<Zeroizing<Vec<u8>>, ClientError> {
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
        Ok(Zeroizing::new(serde_json::to_vec(&saved).map_err(|_| ClientError::State("encode"))?))
    }

    /// The device whose state [`Device::export_state`] gave.
    pub fn import_state(state: &[u8]) -> Result<Self, ClientError> {
        let saved: Saved = serde_json::from_slice(state).map_err(|_| ClientError::State("decode"))?;
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
        let cursors = Cursors::from_parts(saved.cursors, saved.beyond);
        Ok(Device::assemble(provider, signer, saved.device_id, saved.user_id, cursors))
    }
}
