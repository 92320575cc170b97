//! Encrypting and opening an attachment's bytes: AES-256-GCM under a fresh random key per file,
//! the ciphertext `nonce || ciphertext || tag`, and SHA-256 of the file and of the ciphertext
//! (both travel in the MLS message with the key). Pure functions over bytes; randomness from the
//! platform (getrandom: the OS, or the browser's `crypto.getRandomValues`). Builds for wasm32.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::payload::AttachmentRef;

/// Associated data: binds every attachment ciphertext to this format.
const AAD: &[u8] = b"confidant.attachment.v1";

/// Why an attachment could not be opened. Each leaves the conversation as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The downloaded bytes are not what the sender uploaded (their SHA-256 differs from the
    /// message's): altered or substituted on the way or at rest.
    #[error("the attachment was altered or substituted: its digest does not match the message")]
    CiphertextDigest,
    /// The bytes do not decrypt under the message's key.
    #[error("the attachment does not decrypt under its key")]
    Decrypt,
    /// The decrypted file is not the one the sender attached (size or SHA-256 differ).
    #[error("the decrypted attachment is not the file the sender attached")]
    FileDigest,
    /// The platform gave no randomness or the cipher refused (never seen in practice).
    #[error("could not encrypt the attachment")]
    Encrypt,
}

/// A file encrypted for upload, with what its message must carry.
pub struct SealedAttachment {
    /// What to upload.
    pub ciphertext: Vec<u8>,
    /// The fresh key.
    pub key: Zeroizing<[u8; 32]>,
    /// SHA-256 of the file.
    pub sha256: Zeroizing<[u8; 32]>,
    /// SHA-256 of `ciphertext`.
    pub ciphertext_sha256: Zeroizing<[u8; 32]>,
    /// The file's size.
    pub size: u64,
}

impl SealedAttachment {
    /// The reference a message carries, once the server named the upload `id`.
    pub fn reference(&self, id: uuid::Uuid, name: &str, media_type: &str) -> AttachmentRef {
        AttachmentRef {
            id,
            name: name.to_owned(),
            media_type: media_type.to_owned(),
            size: self.size,
            key: self.key.clone(),
            sha256: self.sha256.clone(),
            ciphertext_sha256: self.ciphertext_sha256.clone(),
        }
    }
}

fn sha256(bytes: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(Sha256::digest(bytes).into())
}

/// Encrypts `file` under a fresh random key and nonce.
pub fn seal_attachment(file: &[u8]) -> Result<SealedAttachment, AttachmentError> {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    OsRng.try_fill_bytes(key.as_mut_slice()).map_err(|_| AttachmentError::Encrypt)?;
    OsRng.try_fill_bytes(&mut nonce).map_err(|_| AttachmentError::Encrypt)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), aes_gcm::aead::Payload { msg: file, aad: AAD })
        .map_err(|_| AttachmentError::Encrypt)?;
    let mut ciphertext = Vec::with_capacity(nonce.len() + sealed.len());
    ciphertext.extend_from_slice(&nonce);
    ciphertext.extend_from_slice(&sealed);
    Ok(SealedAttachment {
        ciphertext_sha256: sha256(&ciphertext),
        ciphertext,
        key,
        sha256: sha256(file),
        size: file.len() as u64,
    })
}

/// Opens downloaded `ciphertext` for `reference`: its digest must be the message's, it must
/// decrypt under the message's key, and the file must have the message's size and digest.
pub fn open_attachment(reference: &AttachmentRef, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    if *sha256(ciphertext) != *reference.ciphertext_sha256 {
        return Err(AttachmentError::CiphertextDigest);
    }
    let (nonce, sealed) = ciphertext.split_first_chunk::<12>().ok_or(AttachmentError::Decrypt)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*reference.key));
    let file = cipher
        .decrypt(&Nonce::from(*nonce), aes_gcm::aead::Payload { msg: sealed, aad: AAD })
        .map(Zeroizing::new)
        .map_err(|_| AttachmentError::Decrypt)?;
    if file.len() as u64 != reference.size || *sha256(&file) != *reference.sha256 {
        return Err(AttachmentError::FileDigest);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_ref(file: &[u8]) -> (SealedAttachment, AttachmentRef) {
        let sealed = seal_attachment(file).unwrap();
        let reference = sealed.reference(uuid::Uuid::from_u128(1), "a.png", "image/png");
        (sealed, reference)
    }

    #[test]
    fn a_sealed_file_opens_to_the_same_bytes_and_is_not_in_its_ciphertext() {
        let file = b"a canary sentence in a scanned letter".repeat(10);
        let (sealed, reference) = sealed_ref(&file);
        assert_eq!(sealed.ciphertext.len(), file.len() + confidant_protocol::attachments::CIPHERTEXT_OVERHEAD);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"canary"));
        assert_eq!(open_attachment(&reference, &sealed.ciphertext).unwrap().as_slice(), file.as_slice());
        let again = seal_attachment(&file).unwrap();
        assert_ne!(*again.key, *sealed.key, "a fresh key per file");
    }

    #[test]
    fn an_altered_or_substituted_ciphertext_is_refused() {
        let (sealed, reference) = sealed_ref(b"the file");
        let mut altered = sealed.ciphertext.clone();
        altered[14] ^= 1;
        assert_eq!(open_attachment(&reference, &altered).unwrap_err(), AttachmentError::CiphertextDigest);
        let (other, _) = sealed_ref(b"another file");
        assert_eq!(open_attachment(&reference, &other.ciphertext).unwrap_err(), AttachmentError::CiphertextDigest);
        // A forged reference whose digest matches altered bytes still fails the cipher's tag.
        let mut forged = reference.clone();
        *forged.ciphertext_sha256 = Sha256::digest(&altered).into();
        assert_eq!(open_attachment(&forged, &altered).unwrap_err(), AttachmentError::Decrypt);
        let mut wrong_size = reference.clone();
        wrong_size.size += 1;
        assert_eq!(open_attachment(&wrong_size, &sealed.ciphertext).unwrap_err(), AttachmentError::FileDigest);
    }
}
